/**
 * Operator views of the edge side (ADR-101 "Pending until acked"):
 * GET /v1/edges (every edge the Core has seen, with its acknowledged event
 * seq), GET /v1/events (the newest key events), GET /v1/events/:seq/acks
 * (which edges applied a revocation or rotation, which have not),
 * GET /v1/leases and GET /v1/tenants/:tenant/leases (live leases: edge,
 * tenant, service, versions, expiry — never key material).
 */
import { KcmError } from '../../../../common/src/errors.ts';
import type { EdgeServer } from '../../edge/edge-server.ts';
import { wireEvent } from '../../edge/event-stream.ts';
import type { IntegrityStore } from '../../store/integrity-store.ts';
import type { Route } from '../router.ts';

const RECENT_EVENTS = 100;

function edgeApi(edge: () => EdgeServer | null): EdgeServer {
  const e = edge();
  if (!e) throw new KcmError('not_found', 'the edge API is not configured on this Core');
  return e;
}

export function edgeRoutes(store: IntegrityStore, edge: () => EdgeServer | null): Route[] {
  return [
    {
      method: 'GET',
      path: '/v1/edges',
      action: 'sys.read',
      handler: async () => {
        const latestSeq = await store.latestEventSeq();
        const edges = (await store.listEdges()).map(({ mac: _mac, ...e }) => ({
          ...e,
          behind: latestSeq - e.ackedSeq,
        }));
        return [200, { latestSeq, edges }];
      },
    },
    {
      method: 'GET',
      path: '/v1/events',
      action: 'sys.read',
      handler: async () => {
        const latest = await store.latestEventSeq();
        const events = await store.listEventsAfter(Math.max(0, latest - RECENT_EVENTS), RECENT_EVENTS);
        return [200, { latestSeq: latest, events: events.map(wireEvent) }];
      },
    },
    {
      method: 'GET',
      path: '/v1/events/:seq/acks',
      action: 'sys.read',
      handler: async ({ params }) => {
        const seq = Number(params.seq);
        if (!Number.isSafeInteger(seq) || seq < 1) throw new KcmError('bad_request', 'seq must be a positive integer');
        return [200, await edgeApi(edge).ackStatus(seq)];
      },
    },
    {
      method: 'GET',
      path: '/v1/leases',
      action: 'tenant.read',
      tenant: () => undefined,
      handler: async () => [200, { leases: edgeApi(edge).leases() }],
    },
    {
      method: 'GET',
      path: '/v1/tenants/:tenant/leases',
      action: 'tenant.read',
      handler: async ({ params }) => [200, { leases: edgeApi(edge).leases(params.tenant) }],
    },
  ];
}
