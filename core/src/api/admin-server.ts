/**
 * The Core's admin API over node:http(s): `/v1/sys/*` (status, init, unseal,
 * seal), `/v1/ivk*` (IVK versions), `/healthz` (process alive) and `/readyz`
 * (200 only when active), plus any routes the caller adds.
 *
 * Authentication and authorization (ADR-401/402), before any handler runs:
 * - With TLS (production): mTLS is required (`listen.tls.caFile`) and so is
 *   an identity policy. Clients without a certificate, from another CA,
 *   outside their validity or without EKU clientAuth are disconnected at the
 *   TLS layer with one log line (guardTlsServer) and audited as
 *   `tls.refused`; a request without a verified identity gets 401.
 * - Without TLS: loopback only and development mode only; the caller is
 *   `local-operator` (operator, all tenants).
 * Each route's `action` is then authorized by the one engine
 * (common/src/authz/); a denial is 403 `forbidden` and an audit record
 * (outcome failure, the engine's reason). Certificates and the policy reload
 * without a restart (file watch, and SIGHUP when `reloadOnSighup`).
 */

import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { correlationIdFrom } from '../../../common/src/audit/correlation-id.ts';
import { AuthzEngine } from '../../../common/src/authz/engine.ts';
import { parsePolicy } from '../../../common/src/authz/policy-file.ts';
import { type Authorizer, ReloadableAuthz } from '../../../common/src/authz/reloadable-authz.ts';
import { KcmError } from '../../../common/src/errors.ts';
import { DEV_LOOPBACK_IDENTITY, describeIdentity, type Identity } from '../../../common/src/tls/identity.ts';
import { guardTlsServer, peerIdentity } from '../../../common/src/tls/peer-check.ts';
import { ReloadableTls } from '../../../common/src/tls/reloadable-tls.ts';
import type { AuditSink } from '../audit/audit-sink.ts';
import type { RootOfTrust } from '../root/root-of-trust.ts';
import { readJson, sendError, sendJson } from './http-json.ts';
import { type Route, type RouteContext, Router } from './router.ts';
import { ivkRoutes } from './routes/ivk.ts';
import { sysRoutes } from './routes/sys.ts';

export interface AdminListenConfig {
  host: string;
  port: number;
  tls?: { certFile: string; keyFile: string; caFile?: string };
}

export interface AdminServerOptions {
  /** Development mode: allows plain HTTP on loopback (caller = local-operator). */
  devMode?: boolean;
  /** Identity policy file (policies/README.md); required with TLS. */
  authzPolicy?: string;
  /** An authorizer to use instead of `authzPolicy` (tests, or one shared with the edge API). */
  authz?: Authorizer;
  /** Where refusals (401/403, TLS refusals) are recorded. */
  audit?: AuditSink;
  /** More routes (tenants, keys, approvals …), each with its action. */
  routes?: Route[];
  /** The emergency IVK rotation route (a quorum proposal, see core/src/quorum/high-risk-route.ts); default: direct. */
  ivkRotate?: Route;
  /** Reload certificates and policy on SIGHUP too (the process owns SIGHUP); default false. */
  reloadOnSighup?: boolean;
  /** Debounce of the file watchers (default 200 ms). */
  reloadDebounceMs?: number;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

export interface AdminServer {
  server: Server;
  url: string;
  /** The reloadable certificate set (TLS only). */
  tls?: ReloadableTls;
  authz: Authorizer;
  /** The router's route table (method, path, action); /healthz and /readyz are served outside it. */
  routes: ReturnType<Router['table']>;
  close(): Promise<void>;
}

interface Security {
  authz: Authorizer;
  /** null = plain loopback in development mode. */
  tls: ReloadableTls | null;
  audit: AuditSink | undefined;
  log: (m: string) => void;
  close(): void;
}

function openAuthorizer(
  o: AdminServerOptions,
  plainDev: boolean,
  log: (m: string) => void,
): { authz: Authorizer; owned?: ReloadableAuthz } {
  if (o.authz) return { authz: o.authz };
  if (o.authzPolicy) {
    const owned = new ReloadableAuthz(o.authzPolicy, {
      devLoopbackOperator: plainDev,
      sighup: o.reloadOnSighup === true,
      debounceMs: o.reloadDebounceMs ?? 200,
      log,
    });
    return { authz: owned, owned };
  }
  if (plainDev)
    return {
      authz: new AuthzEngine(parsePolicy({ version: 1, identities: [] }, '(dev)'), { devLoopbackOperator: true }),
    };
  throw new KcmError('invalid_config', 'authzPolicy is required when the admin API uses TLS (policies/README.md)');
}

/**
 * Starts the admin API. Throws `invalid_config` (TLS without a CA file or a
 * policy; plain HTTP off loopback or outside development mode; a route with
 * an unknown action), `invalid_certificate` (a certificate file is bad) or
 * `invalid_policy` (the policy file is bad).
 */
export async function startAdminServer(
  root: RootOfTrust,
  listen: AdminListenConfig,
  log: (msg: string) => void = (m) => console.error(m),
  o: AdminServerOptions = {},
): Promise<AdminServer> {
  if (!listen.tls && !LOOPBACK.has(listen.host)) {
    throw new KcmError('invalid_config', `admin API on ${listen.host} without TLS: bind to loopback or configure tls`);
  }
  if (!listen.tls && o.devMode !== true) {
    throw new KcmError(
      'invalid_config',
      'admin API without TLS is for development mode only (KCM_DEV=1): configure listen.tls {certFile, keyFile, caFile} and authzPolicy',
    );
  }
  if (listen.tls && !listen.tls.caFile) {
    throw new KcmError(
      'invalid_config',
      'listen.tls.caFile is required: the admin API identifies callers by client certificate (mTLS)',
    );
  }
  const router = new Router([...sysRoutes(root), ...ivkRoutes(root, o.ivkRotate), ...(o.routes ?? [])]);
  const hosts = allowedHosts(listen);
  const { authz, owned } = openAuthorizer(o, !listen.tls, log);
  let tls: ReloadableTls | null = null;
  try {
    tls = listen.tls
      ? new ReloadableTls(listen.tls, {
          role: 'server',
          sighup: o.reloadOnSighup === true,
          debounceMs: o.reloadDebounceMs ?? 200,
          log,
        })
      : null;
  } catch (err) {
    owned?.close();
    throw err;
  }
  const sec: Security = {
    authz,
    tls,
    audit: o.audit,
    log,
    close() {
      tls?.close();
      owned?.close();
    },
  };
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    void serve(router, root, req, res, hosts, sec);
  };
  let server: Server;
  if (tls) {
    const https = createHttpsServer(tls.serverOptions(true), handle);
    tls.attach(https);
    guardTlsServer(https, {
      log,
      onRefused: (socket, check) =>
        recordAudit(sec, {
          action: 'tls.refused',
          outcome: 'failure',
          actor: socket.getPeerX509Certificate?.()?.subject.replaceAll('\n', ', ') ?? 'anonymous',
          resource: socket.remoteAddress ?? '?',
          reason: `${check.reason} [${check.code}]`,
        }),
    });
    server = https;
  } else {
    server = createHttpServer(handle);
  }
  server.keepAliveTimeout = 5_000;
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(listen.port, listen.host, () => resolve());
    });
  } catch (err) {
    sec.close();
    throw err;
  }
  const { port } = server.address() as AddressInfo;
  const host = listen.host.includes(':') ? `[${listen.host}]` : listen.host;
  return {
    server,
    url: `${listen.tls ? 'https' : 'http'}://${host}:${port}`,
    ...(tls ? { tls } : {}),
    authz,
    routes: router.table(),
    close: () =>
      new Promise<void>((resolve) => {
        sec.close();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function recordAudit(sec: Security, e: Parameters<AuditSink['record']>[0]): void {
  try {
    sec.audit?.record(e);
  } catch (err) {
    sec.log(`audit: cannot record ${e.action} ${e.outcome}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/**
 * Host names a request may carry on a plain-HTTP loopback listener: the
 * loopback names. Anything else is refused, so a web page cannot reach the
 * API through DNS rebinding. (Over TLS a rebound name fails the certificate
 * check in the browser; null = no Host check.)
 */
function allowedHosts(listen: AdminListenConfig): Set<string> | null {
  return listen.tls ? null : new Set([listen.host.toLowerCase(), ...LOOPBACK]);
}

/** The host part of a Host header ("[::1]:8200" → "::1", "example:80" → "example"). */
function hostOf(header: string | undefined): string {
  const h = (header ?? '').toLowerCase();
  if (h.startsWith('[')) return h.slice(1, h.indexOf(']'));
  return h.replace(/:\d+$/, '');
}

/**
 * Browser-borne requests are refused: a Host other than ours (DNS rebinding),
 * and a mutating request that is not `application/json` (a cross-site form or
 * no-cors fetch cannot send that type without a preflight).
 */
function checkOrigin(req: IncomingMessage, hosts: Set<string> | null): void {
  if (hosts && !hosts.has(hostOf(req.headers.host))) throw new KcmError('bad_request', 'unexpected Host header');
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
    if (type !== 'application/json')
      throw new KcmError('bad_request', 'requests that change state must be application/json');
  }
}

/** The caller: the verified certificate identity (TLS), the dev loopback operator (plain dev), or null. */
function callerOf(req: IncomingMessage, sec: Security): Identity | null {
  if (!sec.tls) return DEV_LOOPBACK_IDENTITY;
  return peerIdentity(req.socket as TLSSocket);
}

/** Authenticates and authorizes `route` for the caller; throws 401/403 after auditing the refusal. */
function authorizeRoute(sec: Security, route: Route, ctx: RouteContext, method: string, path: string): void {
  const identity = ctx.identity ?? null;
  const tenant = route.tenant ? route.tenant(ctx) : ctx.params.tenant;
  const decision = sec.authz.authorize(
    identity,
    tenant === undefined ? { action: route.action } : { action: route.action, tenant },
  );
  if (decision.allowed) return;
  recordAudit(sec, {
    action: route.action,
    outcome: 'failure',
    actor: describeIdentity(identity),
    resource: `${method} ${path}`,
    ...(tenant === undefined ? {} : { tenant }),
    ...(ctx.correlationId === undefined ? {} : { correlationId: ctx.correlationId }),
    reason: identity ? `forbidden: ${decision.reason}` : `unauthenticated: ${decision.reason}`,
  });
  sec.log(
    `authz: ${identity ? 'denied' : 'unauthenticated'} ${describeIdentity(identity)} ${method} ${path} (${route.action}): ${decision.reason}`,
  );
  if (!identity) throw new KcmError('unauthenticated');
  throw new KcmError('forbidden', route.action);
}

async function serve(
  router: Router,
  root: RootOfTrust,
  req: IncomingMessage,
  res: ServerResponse,
  hosts: Set<string> | null,
  sec: Security,
) {
  const correlationId = correlationIdFrom(req.headers);
  res.setHeader('x-correlation-id', correlationId);
  try {
    const path = (req.url ?? '/').split('?')[0] as string;
    checkOrigin(req, hosts);
    const identity = callerOf(req, sec);
    if (path === '/healthz') return sendJson(res, 200, { ok: true });
    if (!identity) {
      recordAudit(sec, {
        action: 'admin.request',
        outcome: 'failure',
        actor: 'anonymous',
        resource: `${req.method} ${path}`,
        correlationId,
        reason: 'unauthenticated: no verified client certificate',
      });
      throw new KcmError('unauthenticated');
    }
    if (path === '/readyz') {
      const s = root.status();
      return sendJson(res, s.state === 'active' ? 200 : 503, { ready: s.state === 'active', state: s.state });
    }
    const method = req.method ?? 'GET';
    const { route, params } = router.match(method, path);
    const ctx: RouteContext = { body: {}, params, identity, correlationId };
    authorizeRoute(sec, route, ctx, method, path);
    ctx.body = route.method === 'GET' ? {} : await readJson(req);
    const [status, out] = await route.handler(ctx);
    sendJson(res, status, out);
  } catch (err) {
    if (!res.headersSent) sendError(res, err, sec.log);
    else res.destroy();
  }
}
