/**
 * The named stages of the request pipeline, in order (docs/gateway.md draws
 * them):
 *
 *   route → identify → limits → request-transform → forward-audit →
 *   upstream → response-transform → audit → respond → record
 *
 * A stage may answer early by setting ctx.response (or throwing a KcmError);
 * the stages after it up to `respond` are then skipped, except that
 * `response-transform` still sees a response that is not an error (run.ts);
 * `audit` (audit/request-audit.ts: a record per request of a route that uses
 * keys, before the answer leaves), `respond` and `record` always run;
 * `forward-audit` records a proxy request's field encryption before the
 * ciphertext goes upstream. The two
 * transform stages are no-ops unless a hook is configured (the policy field
 * transform plugs in there); `upstream` calls the matched route's handler
 * (the direct API answers locally; a proxy route forwards upstream).
 */
import { KcmError } from '../../../common/src/errors.ts';
import { type AuditAppender, auditStage, forwardAuditStage } from '../audit/request-audit.ts';
import type { GatewayMetrics } from '../metrics/gateway-metrics.ts';
import { isCanonicalPath } from '../policy/route-pattern.ts';
import { identifyCaller, type PeerTrust } from './caller.ts';
import type { CertificateTenants, PeerCertificate, RequestContext } from './context.ts';
import { errorResponse, jsonResponse } from './responses.ts';
import type { RouteMatcher } from './router.ts';

export type StageName =
  | 'route'
  | 'identify'
  | 'limits'
  | 'request-transform'
  | 'forward-audit'
  | 'upstream'
  | 'response-transform'
  | 'audit'
  | 'respond'
  | 'record';

export interface Stage {
  readonly name: StageName;
  /** May be synchronous; the runner awaits only a returned promise. */
  run(ctx: RequestContext): void | Promise<void>;
}

/** A per-request hook the transform stages call (e.g. the policy field transform). */
export type TransformHook = (ctx: RequestContext) => void | Promise<void>;

/** What one audit record needs; the sink must not block the response. */
export interface AuditSink {
  record(ctx: RequestContext): void;
}

export interface StageOptions {
  router: RouteMatcher;
  /** Body limit of routes that name none. */
  maxBodyBytes: number;
  trust: PeerTrust;
  tenantsForCertificate: (cert: PeerCertificate) => CertificateTenants;
  metrics: GatewayMetrics;
  requestTransform?: TransformHook;
  responseTransform?: TransformHook;
  /** Observes each request after it was answered (tests); not the audit log. */
  audit?: AuditSink;
  /** The tamper-evident audit log the `audit` stage appends to; absent: no records. */
  auditLog?: AuditAppender;
}

const JSON_TYPE = /^application\/(?:[a-z0-9.+-]+\+)?json\s*(?:;.*)?$/i;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * route: refuses a path not in canonical form (400 `bad_request`, whatever
 * the route: `isCanonicalPath` in policy/route-pattern.ts says why), then
 * matches method + path, or answers 404 / 405.
 */
export function routeStage(o: StageOptions): Stage {
  return {
    name: 'route',
    run(ctx) {
      if (!isCanonicalPath(ctx.path)) {
        // The detail never holds the path: it is the client's, of any length.
        const err = new KcmError('bad_request', 'path is not in canonical form');
        ctx.error = err;
        ctx.response = errorResponse(err);
        return;
      }
      const m = o.router.match(ctx.method, ctx.path);
      if (m.kind === 'found') {
        ctx.routeName = m.route.name;
        ctx.params = m.params;
        ctx.route = m.route;
        return;
      }
      const err = new KcmError(m.kind);
      ctx.error = err;
      ctx.response = errorResponse(err);
      if (m.kind === 'method_not_allowed') ctx.response.headers.allow = m.allow;
    },
  };
}

/** identify: certificate or trusted peer; 401 for routes that need a caller and have none. */
export function identifyStage(o: StageOptions): Stage {
  return {
    name: 'identify',
    run(ctx) {
      const caller = identifyCaller(ctx.peer, o.trust, o.tenantsForCertificate);
      if (caller) ctx.caller = caller;
      else if (ctx.route?.auth) throw new KcmError('unauthenticated', 'no client certificate and not a trusted peer');
      ctx.route?.authorize?.(ctx);
    },
  };
}

/**
 * limits: for `raw` routes (proxy), the body is read whole with
 * Content-Length checked first and bytes counted (413), nothing else. For
 * `json` routes, Content-Type must be JSON (415), Content-Length
 * must fit (413, before reading), the bytes are counted while reading (413),
 * and the body must be UTF-8 JSON (400).
 */
export function limitsStage(o: StageOptions): Stage {
  return {
    name: 'limits',
    run(ctx) {
      const route = ctx.route;
      if (!route || route.body === 'none') return;
      if (Number.isNaN(ctx.body.declaredLength)) throw new KcmError('bad_request', 'malformed Content-Length');
      if (route.body === 'raw') return readRaw(ctx, route.bodyLimit ?? o.maxBodyBytes);
      const type = ctx.headers['content-type'];
      if (!type || !JSON_TYPE.test(type)) throw new KcmError('unsupported_media_type');
      return readJson(ctx, route.bodyLimit ?? o.maxBodyBytes);
    },
  };
}

async function readRaw(ctx: RequestContext, limit: number): Promise<void> {
  ctx.rawBody = await ctx.body.readAll(limit);
}

async function readJson(ctx: RequestContext, limit: number): Promise<void> {
  const raw = await ctx.body.readAll(limit);
  ctx.rawBody = raw;
  let text: string;
  try {
    text = utf8.decode(raw);
  } catch {
    throw new KcmError('bad_request', 'body is not UTF-8');
  }
  try {
    ctx.json = JSON.parse(text);
  } catch {
    // The parser's message quotes the input: never pass it on.
    throw new KcmError('bad_request', 'body is not valid JSON');
  }
}

/**
 * A transform stage: the gateway-wide hook when configured, then the matched
 * route's own hook (Route.requestTransform / responseTransform); a no-op
 * when neither exists.
 */
export function transformStage(name: 'request-transform' | 'response-transform', hook?: TransformHook): Stage {
  const own = (ctx: RequestContext) =>
    name === 'request-transform' ? ctx.route?.requestTransform : ctx.route?.responseTransform;
  return {
    name,
    run(ctx) {
      const routeHook = own(ctx);
      if (!hook) return routeHook?.call(ctx.route, ctx);
      const first = hook(ctx);
      if (!routeHook) return first;
      if (!first) return routeHook.call(ctx.route, ctx);
      return first.then(() => {
        if (!ctx.aborted && (name === 'response-transform' || !ctx.response)) return routeHook.call(ctx.route, ctx);
      });
    },
  };
}

/** upstream: the route's handler. */
export const upstreamStage: Stage = {
  name: 'upstream',
  run(ctx) {
    const route = ctx.route;
    if (!route) throw new KcmError('internal_error', 'upstream stage without a route');
    return route.handle(ctx);
  },
};

/** respond: writes ctx.response through the adapter, unless the client is gone. */
export const respondStage: Stage = {
  name: 'respond',
  run(ctx) {
    if (ctx.aborted || ctx.responded) return;
    const res = ctx.response ?? jsonResponse(500, { error: { code: 'internal_error', message: 'internal error' } });
    res.headers['x-correlation-id'] = ctx.correlationId;
    // A body left unread (early answer, overflow) cannot be skipped safely: close, and keep none of it.
    if (!ctx.body.ended) {
      res.close = true;
      ctx.body.discard();
    }
    ctx.responded = true;
    ctx.responder.send(res);
  },
};

/** record: request count, latency histogram, aborts; then the audit sink. */
export function recordStage(o: StageOptions): Stage {
  return {
    name: 'record',
    run(ctx) {
      o.metrics.recordRequest(ctx);
      o.audit?.record(ctx);
    },
  };
}

/** The stages in pipeline order. */
export function buildStages(o: StageOptions): Stage[] {
  return [
    routeStage(o),
    identifyStage(o),
    limitsStage(o),
    transformStage('request-transform', o.requestTransform),
    forwardAuditStage(o.auditLog),
    upstreamStage,
    transformStage('response-transform', o.responseTransform),
    auditStage(o.auditLog),
    respondStage,
    recordStage(o),
  ];
}
