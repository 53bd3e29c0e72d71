/**
 * What the edge API persists and reads (key events, per-edge acknowledgement
 * state), as a narrow seam over the Core's integrity store: every write goes
 * through `transaction`, so the integrity layer MACs it, and every read is
 * MAC-checked there. Sealed ⇒ these throw `sealed` (503).
 */
import type { EdgeRecord, KeyEventRecord } from '../store/records.ts';

/** An edge row as written (the integrity layer adds the MAC). */
export type EdgeRow = Omit<EdgeRecord, 'mac'>;

/** The transaction methods the edge API uses. */
export interface EdgeStateTx {
  getEdge(edgeId: string): Promise<EdgeRecord | undefined>;
  upsertEdge(r: EdgeRow): Promise<void>;
}

/** The store methods the edge API uses (IntegrityStore satisfies it). */
export interface EdgeStateSource {
  listEventsAfter(afterSeq: number, limit: number): Promise<KeyEventRecord[]>;
  latestEventSeq(): Promise<number>;
  getEdge(edgeId: string): Promise<EdgeRecord | undefined>;
  listEdges(): Promise<EdgeRecord[]>;
  transaction<T>(fn: (tx: EdgeStateTx) => Promise<T>): Promise<T>;
}

/** Per-edge state operations, each one transaction. */
export class EdgeState {
  constructor(readonly store: EdgeStateSource) {}

  /** Records that the edge was seen (creates its row with ackedSeq 0 on first sight). */
  touch(edgeId: string, now: number): Promise<EdgeRow> {
    return this.store.transaction(async (tx) => {
      const old = await tx.getEdge(edgeId);
      const row: EdgeRow = {
        edgeId,
        ackedSeq: old?.ackedSeq ?? 0,
        ackedAt: old?.ackedAt ?? null,
        lastSeenAt: now,
      };
      await tx.upsertEdge(row);
      return row;
    });
  }

  /**
   * Raises the edge's acknowledged seq to `seq` (never lowers it: an ack of an
   * older seq is a no-op that still refreshes lastSeenAt). Returns the row.
   */
  ack(edgeId: string, seq: number, now: number): Promise<EdgeRow> {
    return this.store.transaction(async (tx) => {
      const old = await tx.getEdge(edgeId);
      const raise = seq > (old?.ackedSeq ?? 0);
      const row: EdgeRow = {
        edgeId,
        ackedSeq: raise ? seq : (old?.ackedSeq ?? 0),
        ackedAt: raise ? now : (old?.ackedAt ?? null),
        lastSeenAt: now,
      };
      await tx.upsertEdge(row);
      return row;
    });
  }

  /** The event with this seq, or undefined. */
  async event(seq: number): Promise<KeyEventRecord | undefined> {
    const [e] = await this.store.listEventsAfter(seq - 1, 1);
    return e?.seq === seq ? e : undefined;
  }
}
