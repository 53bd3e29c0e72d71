/**
 * The reverse proxy as pipeline routes: one Route per policy route
 * (policy/policy-loader.ts PolicySet), matched after the direct API.
 *
 *   identify   → a caller is required (verified certificate or trusted
 *                peer: else 401); the route's tenant source (certificate
 *                tenant, a header from trusted peers, or a path parameter)
 *                → ctx.tenant, which a certificate caller must be allowed to
 *                act for, whatever the source (else 403)
 *   limits     → body read whole up to the route's `limits.bodyBytes`
 *                (Content-Length first, bytes counted: 413)
 *   request-transform  → only on routes with `request` rules (encrypt)
 *   upstream   → upstream/forward.ts over h1-client.ts, one keep-alive pool per upstream origin
 *   response-transform → only on routes with `response` rules (decrypt,
 *                ciphertext or mask per the readers)
 *
 * A route without rules in a direction forwards the bytes it received (or
 * the upstream sent) unchanged: no JSON parse, no re-serialisation.
 */
import { KcmError } from '../../../common/src/errors.ts';
import { PROXY_ACTION } from '../audit/request-audit.ts';
import { fieldKeyProvider } from '../field-keys.ts';
import type { GatewayKeys } from '../gateway-keys.ts';
import { assertMayActFor } from '../pipeline/caller.ts';
import { isUsableCertificate, type PeerCertificate, type RequestContext } from '../pipeline/context.ts';
import type { Route, RouteMatch, RouteMatcher } from '../pipeline/router.ts';
import type { Caller as ReaderCaller } from '../pipeline/transform-json.ts';
import type { PolicySet } from '../policy/policy-loader.ts';
import type { CompiledRoute, Upstream } from '../policy/policy-types.ts';
import { matchRoutePattern } from '../policy/route-pattern.ts';
import { resolveTenant } from '../policy/tenant-source.ts';
import { type CallerHeaderPolicy, callerHeaderPolicy, forward } from '../upstream/forward.ts';
import type { UpstreamPools } from '../upstream/upstream-pools.ts';
import { decryptResponseBody, encryptRequestBody, proxyState } from './proxy-transforms.ts';

/**
 * Headers a trusted peer (the gateway's `trust`) may use to name the reader
 * of response fields. Forwarded upstream as the gateway vouches for them
 * (upstream/forward.ts): as sent from a trusted peer; for a certificate
 * caller its CN and known roles replace whatever the client sent.
 */
export interface CallerHeaders {
  /** Header holding the caller identity (e.g. `x-okcm-caller`). */
  identity?: string;
  /** Header holding comma-separated roles (e.g. `x-okcm-roles`). */
  roles?: string;
}

export interface ProxyOptions {
  policies: PolicySet;
  keys: GatewayKeys;
  pools: UpstreamPools;
  /** Upstream name → URL, replacing the policy's URL for that name (deployment-specific addresses). */
  upstreamUrls?: ReadonlyMap<string, URL>;
  /** Reader identity from headers of trusted-peer callers (no certificate); none by default. */
  callerHeaders?: CallerHeaders;
  /** Roles of a certificate caller for response readers (default none; its identity is the CN). */
  rolesForCertificate?: (cert: PeerCertificate) => readonly string[];
  /**
   * An `upstreamUrls` name no route uses: refused at start (`invalid_config`:
   * a typo), allowed on a policy reload (a route removed, the config not
   * reloaded), where the matcher lists it in `unusedUpstreams`.
   */
  unusedUpstreams?: 'refuse' | 'allow';
}

const NO_BODY_METHODS = new Set(['GET', 'HEAD', 'DELETE', 'OPTIONS']);

function certificateTenant(ctx: RequestContext): string | undefined {
  const c = ctx.caller;
  if (c?.kind !== 'certificate' || c.tenants === 'any' || c.tenants.size !== 1) return undefined;
  const [only] = c.tenants;
  return only;
}

/** Who reads response fields: the certificate CN (and roles), or a trusted peer's headers. */
function readerOf(ctx: RequestContext, o: ProxyOptions): ReaderCaller {
  const c = ctx.caller;
  const cert = ctx.peer.certificate;
  if (c?.kind === 'certificate' && cert && isUsableCertificate(cert)) {
    return { identity: c.id, roles: o.rolesForCertificate?.(cert) ?? [] };
  }
  if (c?.kind === 'trusted-peer' && o.callerHeaders) {
    const id = o.callerHeaders.identity ? ctx.headers[o.callerHeaders.identity] : undefined;
    const roles = o.callerHeaders.roles ? ctx.headers[o.callerHeaders.roles] : undefined;
    return {
      ...(id ? { identity: id } : {}),
      roles: roles
        ? roles
            .split(',')
            .map((r) => r.trim())
            .filter(Boolean)
        : [],
    };
  }
  return { roles: [] };
}

/** The route name used as the metrics label and audit action: fixed per policy route. */
export function proxyRouteName(r: CompiledRoute): string {
  return `proxy ${r.policyId} ${r.method} ${r.pattern.text}`;
}

function proxyRoute(
  r: CompiledRoute,
  o: ProxyOptions,
  upstream: Upstream,
  callerHeaders: CallerHeaderPolicy | undefined,
): Route {
  // The route's field backend (policy `backend`), chosen once here: throws invalid_config for pkcs11 without an HSM.
  const fieldKeys = fieldKeyProvider(o.keys).forBackend(r.backend);
  const route: Route = {
    name: proxyRouteName(r),
    method: r.method,
    pattern: r.pattern.text,
    body: 'raw',
    bodyLimit: r.limits.bodyBytes,
    auth: false,
    // Every proxied request has a caller; a certificate acts only for its own tenants, whatever the source.
    authorize(ctx) {
      const caller = ctx.caller;
      if (!caller) throw new KcmError('unauthenticated', 'no client certificate and not a trusted peer');
      const cert = certificateTenant(ctx);
      const tenant = resolveTenant(r.tenant, {
        peerAddress: ctx.peer.address,
        headers: ctx.headers,
        params: ctx.params,
        ...(cert !== undefined ? { certificateTenant: cert } : {}),
      });
      assertMayActFor(caller, tenant);
      ctx.tenant = tenant;
    },
    async handle(ctx) {
      const s = proxyState(ctx);
      let body = s.body ?? ctx.rawBody;
      const declared = ctx.headers['content-length'] !== undefined || ctx.headers['transfer-encoding'] !== undefined;
      if (body && body.length === 0 && !declared && NO_BODY_METHODS.has(ctx.method)) body = undefined;
      ctx.forwarded = true;
      const reply = await forward(o.pools, upstream, ctx, body, {
        identityEncoding: r.response.length > 0,
        callerHeaders,
      });
      if (ctx.aborted) return;
      s.fromUpstream = true;
      ctx.response = { status: reply.status, headers: reply.headers, body: reply.body };
    },
  };
  // A route with field rules uses keys: each of its requests leaves an audit record (audit/request-audit.ts).
  if (r.request.length > 0 || r.response.length > 0) route.audit = PROXY_ACTION;
  if (r.request.length > 0) route.requestTransform = (ctx) => encryptRequestBody(ctx, r, o.keys, fieldKeys);
  if (r.response.length > 0) {
    route.responseTransform = (ctx) => {
      const reader = readerOf(ctx, o);
      // A trusted peer names who reads: the audit record says so (a certificate caller reads as itself).
      if (ctx.caller?.kind === 'trusted-peer') ctx.auditReader = reader;
      return decryptResponseBody(ctx, r, fieldKeys, reader, o.pools.options.maxResponseBytes);
    };
  }
  return route;
}

/** The names of `urls` (config `upstreams.urls`) that no route of `policies` forwards to. */
export function unusedUpstreamNames(policies: PolicySet, urls: ReadonlyMap<string, URL> | undefined): string[] {
  const used = new Set(policies.routes.map((r) => r.upstream.name));
  return [...(urls?.keys() ?? [])].filter((name) => !used.has(name));
}

/**
 * The policy routes as a RouteMatcher for the route stage. Throws
 * `invalid_config` when `upstreamUrls` names an upstream no policy uses.
 * Its `match` answers not found / method not allowed, and throws what else
 * `PolicySet.match` throws (KcmError `bad_request` for an ambiguous
 * spelling), which the route stage answers.
 */
export function proxyMatcher(o: ProxyOptions): RouteMatcher & {
  readonly routes: readonly Route[];
  readonly unusedUpstreams: readonly string[];
  /** The upstream origins its routes forward to (a reload closes the pools of the others). */
  readonly origins: ReadonlySet<string>;
} {
  const unusedUpstreams = unusedUpstreamNames(o.policies, o.upstreamUrls);
  if (unusedUpstreams.length > 0 && o.unusedUpstreams !== 'allow') {
    throw new KcmError(
      'invalid_config',
      `upstreams.urls.${unusedUpstreams[0]}: no policy route uses this upstream name`,
    );
  }
  const byRoute = new Map<CompiledRoute, Route>();
  const callerHeaders = callerHeaderPolicy(o.callerHeaders, o.rolesForCertificate);
  const origins = new Set<string>();
  for (const r of o.policies.routes) {
    const url = o.upstreamUrls?.get(r.upstream.name);
    const upstream = url ? { name: r.upstream.name, url } : r.upstream;
    origins.add(upstream.url.origin);
    byRoute.set(r, proxyRoute(r, o, upstream, callerHeaders));
  }
  return {
    routes: [...byRoute.values()],
    origins,
    unusedUpstreams,
    match(method: string, path: string): RouteMatch {
      try {
        const m = o.policies.match(method, path);
        return { kind: 'found', route: byRoute.get(m.route) as Route, params: m.params };
      } catch (err) {
        if (err instanceof KcmError && err.code === 'method_not_allowed') {
          const allow = [
            ...new Set(o.policies.routes.filter((r) => matchRoutePattern(r.pattern, path)).map((r) => r.method)),
          ].join(', ');
          return { kind: 'method_not_allowed', allow };
        }
        if (err instanceof KcmError && err.code === 'not_found') return { kind: 'not_found' };
        throw err; // `bad_request` (an ambiguous spelling): the route stage answers it, 400
      }
    },
  };
}
