/**
 * The operator's view of a key event's propagation (ADR-101 "Pending until
 * acked"): which known edges have acknowledged it, which have not, and which
 * are not concerned (not allowed the event's tenant, so never sent it).
 * Acks are high-water marks: an edge that acked seq N applied every event it
 * was sent up to N, so it counts as acked whatever its tenants. An edge the
 * access cannot judge (not connected since the Core started) is pending.
 */
import { KcmError } from '../../../common/src/errors.ts';
import type { WireEvent } from '../../../common/src/format/edge-wire.ts';
import type { EdgeAccess } from './edge-access.ts';
import type { EdgeState } from './edge-state.ts';
import { wireEvent } from './event-stream.ts';

export interface EdgeAckEntry {
  edgeId: string;
  ackedSeq: number;
  ackedAt: number | null;
  lastSeenAt: number;
}

export interface EdgeAckStatus {
  event: WireEvent;
  acked: EdgeAckEntry[];
  pending: EdgeAckEntry[];
  notConcerned: string[];
}

/**
 * The ack status of event `seq` across every edge the Core has seen, each
 * list ordered by edge id. Throws KcmError `store_not_found` (404) when no
 * event has that seq, `bad_request` for a seq that is not a positive integer.
 */
export async function edgeAckStatus(state: EdgeState, access: EdgeAccess, seq: number): Promise<EdgeAckStatus> {
  if (!Number.isSafeInteger(seq) || seq < 1) throw new KcmError('bad_request', 'seq must be a positive integer');
  const event = await state.event(seq);
  if (!event) throw new KcmError('store_not_found', `no key event ${seq}`);
  const out: EdgeAckStatus = { event: wireEvent(event), acked: [], pending: [], notConcerned: [] };
  const edges = [...(await state.store.listEdges())].sort((a, b) => (a.edgeId < b.edgeId ? -1 : 1));
  for (const e of edges) {
    const entry = { edgeId: e.edgeId, ackedSeq: e.ackedSeq, ackedAt: e.ackedAt, lastSeenAt: e.lastSeenAt };
    if (e.ackedSeq >= seq) out.acked.push(entry);
    else if ((access.knows?.(e.edgeId) ?? true) && !access.mayLease(e.edgeId, event.tenant))
      out.notConcerned.push(e.edgeId);
    // Allowed the tenant, or not judgeable (not connected since start): shown as pending, never hidden.
    else out.pending.push(entry);
  }
  return out;
}
