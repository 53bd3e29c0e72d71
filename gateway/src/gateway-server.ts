/**
 * `kcm gateway`: one pipeline, started behind the front adapters the config
 * names (uWS fast path; node:http2 mTLS port; h2c + HTTP/1.1 plaintext port),
 * closed cleanly. The keys come from a {@link GatewayKeys} (the Core edge
 * client in production, LocalGatewayKeys in development and tests).
 */
import { KcmError } from '../../common/src/errors.ts';
import { directApiRoutes } from './api/routes.ts';
import type { AuditAppender } from './audit/request-audit.ts';
import type { GatewayKeys } from './gateway-keys.ts';
import type { HsmBackend } from './hsm/hsm-backend.ts';
import { HsmGatewayKeys } from './hsm/hsm-gateway-keys.ts';
import { type H2PlainOptions, type H2TlsOptions, startH2PlainAdapter, startH2TlsAdapter } from './http/h2-adapter.ts';
import { startUwsAdapter, type UwsAdapterOptions } from './http/uws-adapter.ts';
import { GatewayMetrics } from './metrics/gateway-metrics.ts';
import { CallbackMetric } from './metrics/registry.ts';
import { frontTable } from './native-front/front-table.ts';
import {
  type NativeFrontListener,
  type NativeFrontOptions,
  RouteNames,
  startNativeFront,
} from './native-front/native-front.ts';
import { cnIsTenant, loopbackOnly, type PeerTrust } from './pipeline/caller.ts';
import type { CertificateTenants, PeerCertificate } from './pipeline/context.ts';
import { Pipeline } from './pipeline/pipeline.ts';
import { MatcherChain, type Route, type RouteMatcher, Router, SwappableMatcher } from './pipeline/router.ts';
import type { PipelineLog } from './pipeline/run.ts';
import { type AuditSink, buildStages, type TransformHook } from './pipeline/stages.ts';
import { PolicySet } from './policy/policy-loader.ts';
import { type CallerHeaders, proxyMatcher } from './proxy/proxy-routes.ts';
import { type UpstreamOptions, UpstreamPools, upstreamOptions } from './upstream/upstream-pools.ts';

/** The policy reverse proxy (routes of the policy files, forwarded by upstream/h1-client.ts). */
export interface ProxyConfig {
  policies: PolicySet;
  /** Upstream name → URL, replacing the policy's URL for that name. */
  upstreamUrls?: ReadonlyMap<string, URL>;
  /** Timeouts, pool size, response cap, CA (upstream/upstream-pools.ts defaults). */
  upstream?: Partial<UpstreamOptions>;
  /** Reader identity/roles headers believed from trusted peers (no certificate). */
  callerHeaders?: CallerHeaders;
  /** Roles of a certificate caller for response readers (default none). */
  rolesForCertificate?: (cert: PeerCertificate) => readonly string[];
}

export interface GatewayConfig {
  keys: GatewayKeys;
  /** The uWS fast path (HTTP/1.1, optional server TLS). */
  uws?: UwsAdapterOptions;
  /** The mTLS port: h2 and HTTP/1.1 by ALPN. */
  h2Tls?: H2TlsOptions;
  /** The native front: HTTP/1.1 served by the native module's loop, the rest tunnelled to the pipeline. */
  native?: NativeFrontOptions;
  /** The plaintext port: h2c and HTTP/1.1. */
  h2Plain?: H2PlainOptions;
  /** Body limit of the direct API (default 2 MiB: a 1 MiB plaintext in base64 plus JSON). */
  maxBodyBytes?: number;
  /** Items per batch (default 1,000). */
  maxBatchItems?: number;
  /** Peers that may name their tenant without a certificate (default: loopback only). */
  trust?: PeerTrust;
  /** Tenants a client certificate may act for: a list or 'any' (default: its CN, ADR-402). */
  tenantsForCertificate?: (cert: PeerCertificate) => CertificateTenants;
  /** Routes tried before the direct API. */
  extraRoutes?: readonly Route[];
  /** The policy reverse proxy, matched after the direct API (whose paths it cannot shadow). */
  proxy?: ProxyConfig;
  /**
   * The `pkcs11` field backend (HSM offload): used by proxy routes with
   * `backend: "pkcs11"` and by direct API requests for its `directKeys`.
   * Its owner closes it (after this server).
   */
  hsm?: HsmBackend;
  requestTransform?: TransformHook;
  responseTransform?: TransformHook;
  /** Observes each request after it was answered (tests). */
  audit?: AuditSink;
  /** The tamper-evident audit log: one record per request of a route that uses keys, before it is answered. */
  auditLog?: AuditAppender;
  /** Internal-error log (never receives request data); default console.error. */
  log?: PipelineLog;
}

export interface GatewayServer {
  readonly ports: { uws?: number; h2Tls?: number; h2Plain?: number; native?: number };
  /** The native front, when it runs (its counters). */
  readonly nativeFront?: NativeFrontListener;
  readonly metrics: GatewayMetrics;
  readonly pipeline: Pipeline;
  /** The uWS native binary serving the fast path, when it runs. */
  readonly uwsBinary?: string;
  /** Upstream pools of the proxy, when configured. */
  readonly upstreams?: UpstreamPools;
  /**
   * Replaces the proxy's policy routes while serving (checked as at start;
   * new requests match the new set, requests in flight keep their route).
   * Returns the number of routes now in force and the `upstreams.urls` names
   * no route uses any more (allowed here, unlike at start). Throws
   * `invalid_config` (no proxy configured, a `pkcs11` route without `hsm`)
   * and changes nothing then.
   */
  reloadPolicies(policies: PolicySet): { routes: number; unusedUpstreams: readonly string[] };
  /**
   * Drains, then closes: new requests get 503 `not_ready`, requests in flight
   * get up to `drainMs` (default 0) to finish, then every listener and
   * upstream pool is closed (in-flight upstream requests destroyed).
   * Idempotent. Does not close the keys (their owner does).
   */
  close(o?: { drainMs?: number }): Promise<void>;
}

const DEFAULT_MAX_BODY = 2 * 1024 * 1024;
const DEFAULT_MAX_BATCH = 1000;

function positive(v: number | undefined, dflt: number, name: string): number {
  const n = v ?? dflt;
  if (!Number.isInteger(n) || n < 1) throw new KcmError('invalid_config', `${name} must be a positive integer`);
  return n;
}

/** Token operations, errors and open sessions of the pkcs11 backend, read at scrape time. */
function registerHsmMetrics(metrics: GatewayMetrics, hsm: HsmBackend): void {
  const r = metrics.registry;
  r.register(
    new CallbackMetric(
      'okcm_gateway_hsm_operations_total',
      'PKCS#11 token crypto operations (data-key unwraps, field GCM) of the pkcs11 backend.',
      'counter',
      () => hsm.stats().operations,
    ),
  );
  r.register(
    new CallbackMetric(
      'okcm_gateway_hsm_errors_total',
      'Token calls of the pkcs11 backend that failed (503 hsm_unavailable; tag failures excluded).',
      'counter',
      () => hsm.stats().errors,
    ),
  );
  r.register(
    new CallbackMetric(
      'okcm_gateway_hsm_timeouts_total',
      'Token jobs that ran past their deadline (hsm.timeoutMs; 30 s for transport key set-up steps): each failed with the jobs queued on its worker (503 hsm_unavailable), and the worker was replaced.',
      'counter',
      () => hsm.stats().timeouts,
    ),
  );
  r.register(
    new CallbackMetric(
      'okcm_gateway_hsm_stuck_threads',
      'Token worker threads given up after a timeout and still blocked in a PKCS#11 call.',
      'gauge',
      () => hsm.stats().stuckThreads,
    ),
  );
  r.register(
    new CallbackMetric(
      'okcm_gateway_hsm_sessions',
      'PKCS#11 sessions the pkcs11 backend holds open.',
      'gauge',
      () => hsm.stats().sessions,
    ),
  );
}

/** The largest body limit `routes` set (0 when none sets one). */
function largestBody(routes: readonly Route[]): number {
  return Math.max(0, ...routes.map((r) => r.bodyLimit ?? 0));
}

/** A `pkcs11` policy route needs the token: `invalid_config` naming the route otherwise. */
function checkBackends(policies: PolicySet, hsm: HsmBackend | undefined): void {
  for (const r of policies.routes) {
    if (r.backend === 'pkcs11' && !hsm) {
      throw new KcmError('invalid_config', `${r.source}: backend "pkcs11" needs the gateway config's hsm section`);
    }
  }
}

/**
 * Starts the configured listeners (at least one). Throws `invalid_config`
 * (no listener, bad limits, port in use, a `pkcs11` policy route without `hsm`), `native_unavailable` (uWS on its
 * fallback), `invalid_certificate` (unreadable TLS files). A listener that
 * fails to start closes those already started.
 */
export async function startGateway(c: GatewayConfig): Promise<GatewayServer> {
  if (!c.uws && !c.h2Tls && !c.h2Plain && !c.native) {
    throw new KcmError('invalid_config', 'startGateway: no listener configured');
  }
  const maxBodyBytes = positive(c.maxBodyBytes, DEFAULT_MAX_BODY, 'maxBodyBytes');
  const maxBatchItems = positive(c.maxBatchItems, DEFAULT_MAX_BATCH, 'maxBatchItems');
  const hsm = c.hsm;
  if (c.proxy) checkBackends(c.proxy.policies, hsm);
  const metrics = new GatewayMetrics(c.keys);
  if (hsm) registerHsmMetrics(metrics, hsm);
  // Direct API: the config's hsm.keys run in the token. Proxy: each route's policy chooses.
  const apiKeys = hsm ? new HsmGatewayKeys(c.keys, hsm, (service) => hsm.directKeys.has(service)) : c.keys;
  const proxyKeys = hsm ? new HsmGatewayKeys(c.keys, hsm, () => false) : c.keys;
  const routes = [
    ...(c.extraRoutes ?? []),
    ...directApiRoutes({ keys: apiKeys, metrics, maxBatchItems, maxBodyBytes }),
  ];
  let pools: UpstreamPools | undefined;
  let router: RouteMatcher = new Router(routes);
  const directCap = Math.max(maxBodyBytes, largestBody(routes));
  // The proxy's routes, built from a policy set at start and at each reload.
  let buildProxy: ((policies: PolicySet, unused: 'refuse' | 'allow') => ReturnType<typeof proxyMatcher>) | undefined;
  let proxy: SwappableMatcher | undefined;
  let proxyCap = 0;
  if (c.proxy) {
    const p = c.proxy;
    const upstreamPools = new UpstreamPools(upstreamOptions(p.upstream));
    pools = upstreamPools;
    buildProxy = (policies, unusedUpstreams) =>
      proxyMatcher({
        policies,
        unusedUpstreams,
        keys: proxyKeys,
        pools: upstreamPools,
        ...(p.upstreamUrls ? { upstreamUrls: p.upstreamUrls } : {}),
        ...(p.callerHeaders ? { callerHeaders: p.callerHeaders } : {}),
        ...(p.rolesForCertificate ? { rolesForCertificate: p.rolesForCertificate } : {}),
      });
    const first = buildProxy(p.policies, 'refuse');
    proxy = new SwappableMatcher(first);
    proxyCap = largestBody(first.routes);
    router = new MatcherChain([router, proxy]);
  }
  const hardCap = Math.max(directCap, proxyCap);
  const stages = buildStages({
    router,
    maxBodyBytes,
    trust: c.trust ?? loopbackOnly,
    tenantsForCertificate: c.tenantsForCertificate ?? cnIsTenant,
    metrics,
    ...(c.requestTransform ? { requestTransform: c.requestTransform } : {}),
    ...(c.responseTransform ? { responseTransform: c.responseTransform } : {}),
    ...(c.audit ? { audit: c.audit } : {}),
    ...(c.auditLog ? { auditLog: c.auditLog } : {}),
  });
  const pipeline = new Pipeline(stages, hardCap, c.log ?? ((m) => console.error(`gateway: ${m}`)));
  // The native front's table: the policy routes it may serve (none while draining, or when a
  // gateway-wide hook or sink must see every request).
  const everySeen = Boolean(c.requestTransform || c.responseTransform || c.audit);
  let inForce = c.proxy?.policies;
  const nativeTable = (serve: boolean) =>
    frontTable({
      policies: inForce ?? new PolicySet([]),
      upstreamUrls: c.proxy?.upstreamUrls,
      upstream: upstreamOptions(c.proxy?.upstream),
      reserved: routes.map((r) => r.pattern),
      trust: c.trust ?? loopbackOnly,
      serve: serve && !everySeen,
      audit: c.auditLog !== undefined,
      keyEvents: typeof c.keys.onKeysChanged === 'function',
      nameId: routeNames.id,
    });
  let nativeFront: NativeFrontListener | undefined;
  const routeNames = new RouteNames();
  const closers: (() => void | Promise<void>)[] = [];
  const ports: { uws?: number; h2Tls?: number; h2Plain?: number; native?: number } = {};
  let uwsBinary: string | undefined;
  const closeAll = async () => {
    const list = closers.splice(0);
    await Promise.all(list.map((f) => f()));
    await pools?.close(true);
  };
  try {
    if (c.uws) {
      const l = await startUwsAdapter(pipeline, c.uws);
      closers.push(() => l.close());
      ports.uws = l.port;
      uwsBinary = l.binary;
    }
    if (c.h2Tls) {
      const l = await startH2TlsAdapter(pipeline, c.h2Tls);
      closers.push(() => l.close());
      ports.h2Tls = l.port;
    }
    if (c.h2Plain) {
      const l = await startH2PlainAdapter(pipeline, c.h2Plain);
      closers.push(() => l.close());
      ports.h2Plain = l.port;
    }
    if (c.native) {
      const l = await startNativeFront(
        pipeline,
        c.native,
        nativeTable(true),
        metrics,
        c.keys,
        routeNames,
        pipeline.log,
      );
      closers.push(() => l.close());
      ports.native = l.port;
      nativeFront = l;
    }
  } catch (err) {
    await closeAll();
    throw err;
  }
  return {
    ports,
    metrics,
    pipeline,
    ...(uwsBinary ? { uwsBinary } : {}),
    ...(pools ? { upstreams: pools } : {}),
    ...(nativeFront ? { nativeFront } : {}),
    reloadPolicies(policies) {
      if (!proxy || !buildProxy) throw new KcmError('invalid_config', 'no proxy configured: there are no policies');
      checkBackends(policies, hsm);
      const next = buildProxy(policies, 'allow');
      // Requests already reading keep the cap they started with (RequestBody copies it).
      pipeline.hardCap = Math.max(directCap, largestBody(next.routes));
      proxy.swap(next);
      inForce = policies;
      nativeFront?.setTable(nativeTable(true));
      // Pools of upstreams no route forwards to any more: they serve what they hold, then close (UpstreamPools.retain).
      pools?.retain(next.origins);
      return { routes: next.routes.length, unusedUpstreams: next.unusedUpstreams };
    },
    async close(o = {}) {
      pipeline.drain();
      // From now on the native front tunnels every request: the pipeline answers 503 not_ready.
      nativeFront?.setTable(nativeTable(false));
      // Requests in flight on either plane get up to drainMs.
      if (o.drainMs) await Promise.all([pipeline.whenIdle(o.drainMs), nativeFront?.whenIdle(o.drainMs)]);
      await closeAll();
    },
  };
}
