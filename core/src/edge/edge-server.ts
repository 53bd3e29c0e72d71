/**
 * The Core's edge API (ADR-401/602): node:http2 over TLS only (no HTTP/1.1,
 * no cleartext), TLS 1.2 or newer (1.3 preferred by negotiation), client
 * certificates required and verified against the configured CA. The edge id
 * comes from the peer certificate; a caller that is not an edge (EdgeAccess
 * `isEdge`) is refused 403 `forbidden` on every route, and each request is
 * authorised per tenant (deny by default).
 *
 *   POST /v1/edge/lease  {tenant, service, versions?, ttlSeconds?}  → lease-route.ts
 *   GET  /v1/edge/events?after=SEQ                                  → event-stream.ts (NDJSON)
 *   POST /v1/edge/ack    {seq}         → raises the edge's ackedSeq in the store
 *   POST /v1/edge/usage  {tenant, service, version, count}  → L3LeaseSource.reportEncryptions
 *
 * `ackStatus(seq)` is the operator view for the admin API (ack-status.ts).
 */
import { once } from 'node:events';
import {
  constants,
  createSecureServer,
  type Http2SecureServer,
  type IncomingHttpHeaders,
  type ServerHttp2Session,
  type ServerHttp2Stream,
} from 'node:http2';
import type { AddressInfo, Socket } from 'node:net';
import type { AuditSink } from '../../../common/src/audit/audit-event.ts';
import { KcmError } from '../../../common/src/errors.ts';
import { EDGE_PATHS } from '../../../common/src/format/edge-wire.ts';
import { assertKeyId, assertTenantId, isKeyVersion } from '../../../common/src/format/ids.ts';
import { guardTlsServer } from '../../../common/src/tls/peer-check.ts';
import { ReloadableTls } from '../../../common/src/tls/reloadable-tls.ts';
import type { Crypto } from '../../../native/index.ts';
import type { KeyEventBus } from '../events/key-event-bus.ts';
import type { L3LeaseSource } from '../keys/l3-lease-source.ts';
import { type EdgeAckStatus, edgeAckStatus } from './ack-status.ts';
import type { EdgeAccess } from './edge-access.ts';
import { type EdgeSession, edgeSessionOf } from './edge-session.ts';
import { EdgeState, type EdgeStateSource } from './edge-state.ts';
import { serveEvents } from './event-stream.ts';
import { readStreamJson, requiredInt, sendStreamError, sendStreamJson } from './h2-json.ts';
import { type LeaseEntry, LeaseLedger } from './lease-ledger.ts';
import { checkLeaseTtl, DEFAULT_LEASE_TTL, type LeaseTtlPolicy, lease, parseLeaseRequest } from './lease-route.ts';

/** PEM material of the listener: the Core's server certificate and the CA that issues edge client certificates. */
export interface EdgeTlsMaterial {
  cert: string | Buffer;
  key: string | Buffer;
  ca: string | Buffer | (string | Buffer)[];
}

export interface EdgeServerOptions {
  host: string;
  port: number;
  /** A ReloadableTls (role server, with a caFile) to pick up new certificates without a restart, or fixed PEM. */
  tls: ReloadableTls | EdgeTlsMaterial;
  crypto: Crypto;
  source: L3LeaseSource;
  bus: KeyEventBus;
  store: EdgeStateSource;
  access: EdgeAccess;
  leaseTtl?: LeaseTtlPolicy;
  /** Heartbeat interval of event streams (default 5 s). */
  heartbeatMs?: number;
  /** Unread event-stream output after which an edge is disconnected (default 1 MiB). */
  maxBufferedBytes?: number;
  audit?: AuditSink;
  log?: (msg: string) => void;
  now?: () => number;
  /** Called after an ack is stored (metrics, benchmarks). */
  onAck?: (edgeId: string, seq: number) => void;
}

export interface EdgeServer {
  server: Http2SecureServer;
  url: string;
  port: number;
  /** Which edges acknowledged key event `seq` (ack-status.ts). */
  ackStatus(seq: number): Promise<EdgeAckStatus>;
  /** Live leases (lease-ledger.ts), optionally of one tenant. */
  leases(tenant?: string): LeaseEntry[];
  /** Stops listening and drops every connection (their transport keys are wiped). */
  close(): Promise<void>;
}

/** Starts the edge API; throws `invalid_config` for bad TTL bounds, the listen error otherwise. */
export async function startEdgeServer(o: EdgeServerOptions): Promise<EdgeServer> {
  const ttl = checkLeaseTtl(o.leaseTtl ?? DEFAULT_LEASE_TTL);
  const log = o.log ?? ((m: string) => console.error(`[edge-api] ${m}`));
  const now = o.now ?? Date.now;
  const state = new EdgeState(o.store);
  const material = o.tls instanceof ReloadableTls ? o.tls.serverOptions(true) : o.tls;
  const server = createSecureServer({
    cert: material.cert,
    key: material.key,
    ca: material.ca,
    // Client certificates are required and verified by OpenSSL: a client without one, or with one
    // from another CA, fails the handshake; guardTlsServer logs it and also refuses a peer without
    // EKU clientAuth or outside its validity period.
    requestCert: true,
    // The guard below refuses unverified clients with a log line and an audit record (rejectUnauthorized
    // would drop them silently); every request checks the verified identity again (edgeSessionOf).
    rejectUnauthorized: false,
    allowHTTP1: false,
    minVersion: 'TLSv1.2',
  });
  if (o.tls instanceof ReloadableTls) o.tls.attach(server);
  guardTlsServer(server, {
    log,
    onRefused: (socket, check) => {
      try {
        o.audit?.record({
          action: 'tls.refused',
          outcome: 'failure',
          actor: socket.getPeerX509Certificate?.()?.subject.replaceAll('\n', ', ') ?? 'anonymous',
          resource: `edge-api ${socket.remoteAddress ?? '?'}`,
          reason: `${check.reason} [${check.code}]`,
        });
      } catch {
        // The connection is refused either way; an audit outage is alerted by the sink.
      }
    },
  });
  const sessions = new Set<ServerHttp2Session>();
  // Every socket, also those refused before they became an http2 session: close() must not wait on any.
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  server.on('session', (s: ServerHttp2Session) => {
    sessions.add(s);
    s.once('close', () => sessions.delete(s));
    s.on('error', () => {});
  });
  const ledger = new LeaseLedger(now);
  const unsubscribe = o.bus.subscribe((e) => {
    if (e.type === 'tenant.revoked') ledger.dropTenant(e.tenant);
  });
  const ctx: Ctx = { o, ttl, log, now, state, ledger };
  server.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => {
    stream.on('error', () => {});
    void route(ctx, stream, headers);
  });
  server.listen(o.port, o.host);
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const host = o.host.includes(':') ? `[${o.host}]` : o.host;
  return {
    server,
    port,
    url: `https://${host}:${port}`,
    ackStatus: (seq) => edgeAckStatus(state, o.access, seq),
    leases: (tenant) => ledger.list(tenant),
    close: async () => {
      unsubscribe();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sessions) s.destroy();
      for (const s of sockets) s.destroy();
      await closed;
    },
  };
}

interface Ctx {
  o: EdgeServerOptions;
  ttl: LeaseTtlPolicy;
  log: (msg: string) => void;
  now: () => number;
  state: EdgeState;
  ledger: LeaseLedger;
}

async function route(ctx: Ctx, stream: ServerHttp2Stream, headers: IncomingHttpHeaders): Promise<void> {
  const method = headers[':method'];
  const [path = '', query = ''] = (headers[':path'] ?? '').split('?', 2);
  let session: EdgeSession | undefined;
  let tenant: string | undefined;
  try {
    session = edgeSessionOf(stream.session as ServerHttp2Session, ctx.o.access);
    if (ctx.o.access.isEdge && !ctx.o.access.isEdge(session.edgeId)) {
      ctx.o.audit?.record({
        action: 'edge.request',
        outcome: 'failure',
        actor: session.edgeId,
        resource: `${method} ${path}`,
        reason: 'forbidden: not an edge identity',
      });
      throw new KcmError('forbidden', 'not an edge identity');
    }
    const post = async () => {
      if (method !== 'POST') throw new KcmError('method_not_allowed', `${method} ${path}`);
      return readStreamJson(stream, headers['content-length']);
    };
    switch (path) {
      case EDGE_PATHS.lease: {
        const req = parseLeaseRequest(await post(), ctx.ttl);
        tenant = req.tenant;
        const out = await lease({ ...ctx.o, ttl: ctx.ttl }, session, req);
        audit(ctx, session, 'edge.lease', tenant, `${tenant}/${req.service}`, 'success');
        const issuedAt = ctx.now();
        ctx.ledger.record({
          edgeId: session.edgeId,
          tenant,
          service: req.service,
          activeVersion: out.active?.version ?? null,
          decryptOnlyVersions: out.decryptOnly.map((v) => v.version),
          issuedAt,
          expiresAt: issuedAt + out.ttlSeconds * 1000,
        });
        return sendStreamJson(stream, 200, out);
      }
      case EDGE_PATHS.events: {
        if (method !== 'GET') throw new KcmError('method_not_allowed', `${method} ${path}`);
        const after = new URLSearchParams(query).get('after') ?? '0';
        if (!/^\d{1,15}$/.test(after)) throw new KcmError('bad_request', 'after must be a non-negative integer');
        return await serveEvents(eventDeps(ctx), session, stream, Number(after));
      }
      case EDGE_PATHS.ack: {
        const seq = requiredInt(await post(), 'seq', 0, Number.MAX_SAFE_INTEGER);
        if (seq > (await ctx.state.store.latestEventSeq()))
          throw new KcmError('bad_request', 'seq is past the newest event');
        const row = await ctx.state.ack(session.edgeId, seq, ctx.now());
        ctx.o.onAck?.(session.edgeId, seq);
        return sendStreamJson(stream, 200, { ackedSeq: row.ackedSeq });
      }
      case EDGE_PATHS.usage: {
        const body = await post();
        const { tenant: t, service } = body;
        assertTenantId(t);
        assertKeyId(service);
        tenant = t;
        const version = requiredInt(body, 'version', 1, 0xffff_ffff);
        if (!isKeyVersion(version)) throw new KcmError('invalid_key_version');
        const count = requiredInt(body, 'count', 1, 2 ** 32);
        if (!ctx.o.access.mayLease(session.edgeId, t)) throw new KcmError('lease_refused', `tenant ${t}`);
        await ctx.o.source.reportEncryptions(t, service, version, count);
        return sendStreamJson(stream, 200, { ok: true });
      }
      default:
        throw new KcmError('not_found', path);
    }
  } catch (err) {
    let failure = err;
    if (session && tenant && path === EDGE_PATHS.lease) {
      const code = err instanceof KcmError ? err.code : 'internal_error';
      try {
        audit(ctx, session, 'edge.lease', tenant, tenant, 'failure', code);
      } catch (auditErr) {
        failure = auditErr;
      }
    }
    if (!stream.headersSent) sendStreamError(stream, failure, ctx.log);
    else stream.close(constants.NGHTTP2_INTERNAL_ERROR);
  }
}

function eventDeps(ctx: Ctx) {
  return {
    bus: ctx.o.bus,
    state: ctx.state,
    access: ctx.o.access,
    heartbeatMs: ctx.o.heartbeatMs ?? 5_000,
    maxBufferedBytes: ctx.o.maxBufferedBytes ?? 1024 * 1024,
    now: ctx.now,
    log: ctx.log,
  };
}

/** Records a lease decision; a sink that cannot write throws `audit_unavailable` and the lease is refused. */
function audit(
  ctx: Ctx,
  session: EdgeSession,
  action: string,
  tenant: string,
  resource: string,
  outcome: 'success' | 'failure',
  reason?: string,
): void {
  ctx.o.audit?.record({
    action,
    outcome,
    actor: session.edgeId,
    tenant,
    resource,
    ...(reason ? { reason } : {}),
  });
}
