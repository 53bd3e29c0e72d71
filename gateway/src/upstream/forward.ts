/**
 * Forwarding one proxied request to its upstream (h1-client.ts), and reading
 * the answer with a size cap. Hop-by-hop headers (RFC 9110 §7.6.1: the fixed
 * list plus every name the Connection header lists) are dropped both ways;
 * `x-forwarded-for` gets the peer address appended, `x-forwarded-host` the
 * original host, `x-correlation-id` the request's correlation id. The
 * configured caller headers (gateway `callerHeaders`) reach the upstream only
 * as the gateway vouches for them: a trusted peer's as sent; for a
 * certificate caller the identity header is its CN and the roles header its
 * roles when the gateway knows them, whatever the client sent. The
 * request is aborted when the client goes away (ctx.onAbort).
 *
 * Failures map to table errors and never carry upstream bytes:
 * refused / reset / truncated → 502 `upstream_unavailable`; connect, headers,
 * body or queue-wait deadline → 504 `upstream_timeout`; every connection busy
 * and the wait queue full → 503 `upstream_busy`; not HTTP or over the size cap →
 * 502 `upstream_bad_response`; a request header or target with control
 * characters → 400 `bad_request` (nothing sent); a client abort →
 * ClientAbortedError (nothing is written). Their messages name the upstream
 * only by its configured name, never by its URL.
 */
import { KcmError } from '../../../common/src/errors.ts';
import { isUsableCertificate, type PeerCertificate, type RequestContext } from '../pipeline/context.ts';
import { ClientAbortedError } from '../pipeline/request-body.ts';
import type { Upstream } from '../policy/policy-types.ts';
import { UpstreamFailure } from './upstream-failure.ts';
import type { UpstreamPools } from './upstream-pools.ts';

/** Headers that describe one connection, never forwarded (RFC 9110 §7.6.1, plus Host and framing). */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'http2-settings',
  'host',
  'content-length',
  'expect',
]);

export type HeaderMap = Record<string, string | string[]>;

/** An upstream answer read whole. */
export interface UpstreamReply {
  status: number;
  /** End-to-end headers only (hop-by-hop and content-length removed). */
  headers: HeaderMap;
  body: Buffer;
}

const NOTHING: ReadonlySet<string> = new Set<string>();

/** The names the Connection header lists, lower-cased (a shared empty set when there is none). */
function connectionTokens(value: string | string[] | undefined): ReadonlySet<string> {
  if (value === undefined || value === '') return NOTHING;
  const out = new Set<string>();
  for (const v of Array.isArray(value) ? value : value ? [value] : []) {
    for (const t of v.split(',')) {
      const name = t.trim().toLowerCase();
      if (name) out.add(name);
    }
  }
  return out;
}

/** `headers` without hop-by-hop headers, nor those the Connection header names, nor `drop`. */
export function endToEnd(
  headers: Readonly<Record<string, string | string[] | undefined>>,
  drop: ReadonlySet<string> = NOTHING,
): HeaderMap {
  const listed = connectionTokens(headers.connection);
  // No prototype: `__proto__` is a header like any other (on `{}` its setter would take it).
  const out: HeaderMap = Object.create(null);
  for (const name in headers) {
    const v = headers[name];
    if (v === undefined || HOP_BY_HOP.has(name) || listed.has(name) || drop.has(name)) continue;
    out[name] = v;
  }
  return out;
}

/**
 * The gateway's caller headers (config `callerHeaders`), built once by
 * {@link callerHeaderPolicy} and applied per request by
 * {@link upstreamRequestHeaders}.
 */
export interface CallerHeaderPolicy {
  readonly identity: string | undefined;
  readonly roles: string | undefined;
  /** Both names: what a certificate caller's request loses before the gateway's values are set. */
  readonly names: ReadonlySet<string>;
  /** Roles of a certificate caller, when the gateway knows them (`rolesForCertificate`). */
  readonly rolesForCertificate: ((cert: PeerCertificate) => readonly string[]) | undefined;
}

/** The policy for the configured header names (lower-case), or undefined when none is configured. */
export function callerHeaderPolicy(
  headers: { identity?: string; roles?: string } | undefined,
  rolesForCertificate?: (cert: PeerCertificate) => readonly string[],
): CallerHeaderPolicy | undefined {
  const identity = headers?.identity?.toLowerCase();
  const roles = headers?.roles?.toLowerCase();
  if (identity === undefined && roles === undefined) return undefined;
  const names = new Set([identity, roles].filter((n): n is string => n !== undefined));
  return { identity, roles, names, rolesForCertificate };
}

/**
 * The request headers sent upstream; throws `bad_request` for a method
 * override header (X-HTTP-Method-Override, X-HTTP-Method, X-Method-Override:
 * a GET to a pass-through route must not become a POST the policy would
 * have encrypted). With `callerHeaders`: a trusted peer's
 * caller headers go as sent (it is the source of identity); otherwise the
 * client's values are dropped, and for a certificate caller the identity
 * header is set to its CN and the roles header (`, `-separated) to the roles
 * the gateway knows for it, if any.
 */
export function upstreamRequestHeaders(
  ctx: RequestContext,
  o: { identityEncoding: boolean; callerHeaders?: CallerHeaderPolicy | undefined },
): HeaderMap {
  const hd = ctx.headers;
  if (hd['x-http-method-override'] ?? hd['x-http-method'] ?? hd['x-method-override']) {
    // The policy matched the request's own method: an upstream honouring an override would run another route.
    throw new KcmError('bad_request', 'method override headers are not accepted');
  }
  const policy = o.callerHeaders;
  const vouch = policy !== undefined && ctx.caller?.kind !== 'trusted-peer';
  const h = endToEnd(ctx.headers, vouch ? policy.names : NOTHING);
  if (vouch && ctx.caller?.kind === 'certificate') {
    if (policy.identity) h[policy.identity] = ctx.caller.id;
    const cert = ctx.peer.certificate;
    if (policy.roles && policy.rolesForCertificate && cert && isUsableCertificate(cert)) {
      const roles = policy.rolesForCertificate(cert);
      if (roles.length > 0) h[policy.roles] = roles.join(', ');
    }
  }
  const prior = ctx.headers['x-forwarded-for'];
  h['x-forwarded-for'] = prior ? `${prior}, ${ctx.peer.address}` : ctx.peer.address;
  const host = ctx.headers.host;
  if (host !== undefined && ctx.headers['x-forwarded-host'] === undefined) h['x-forwarded-host'] = host;
  h['x-correlation-id'] = ctx.correlationId;
  // A decrypting route must read the body: ask for it uncompressed (a compressed answer is refused anyway).
  if (o.identityEncoding) h['accept-encoding'] = 'identity';
  return h;
}

/** What forwarding needs of an upstream URL, read once per URL (URL getters build a new string per call). */
interface UpstreamTarget {
  readonly origin: string;
  /** The URL's path prefix without trailing slashes. */
  readonly base: string;
}
const targets = new WeakMap<URL, UpstreamTarget>();
function targetOf(url: URL): UpstreamTarget {
  let t = targets.get(url);
  if (!t) {
    t = { origin: url.origin, base: url.pathname.replace(/\/+$/, '') };
    targets.set(url, t);
  }
  return t;
}

/** The upstream path: the upstream URL's path prefix (`base`, no trailing /) + the request path + its query. */
function upstreamPath(base: string, ctx: RequestContext): string {
  return ctx.query ? `${base}${ctx.path}?${ctx.query}` : `${base}${ctx.path}`;
}

/** Names of the policy's `upstreams` (policy-schema.ts); an upstream given inline is named by its URL. */
const CONFIGURED_NAME = /^[A-Za-z0-9._~-]{1,64}$/;

/** How errors name an upstream: `upstream <name>` for a configured name, never its (internal) URL. */
export function upstreamLabel(upstream: Upstream): string {
  return CONFIGURED_NAME.test(upstream.name) ? `upstream ${upstream.name}` : 'upstream';
}

/** Maps an upstream failure to a table error (or ClientAbortedError after a client abort). */
export function upstreamError(err: unknown, ctx: RequestContext, upstream: Upstream): Error {
  if (ctx.aborted) return new ClientAbortedError();
  if (err instanceof KcmError) return err;
  const where = upstreamLabel(upstream);
  if (!(err instanceof UpstreamFailure)) return new KcmError('upstream_unavailable', where);
  switch (err.kind) {
    case 'timeout':
      return new KcmError('upstream_timeout', where);
    case 'busy':
      return new KcmError('upstream_busy', where);
    case 'bad_response':
      return new KcmError('upstream_bad_response', `${where}: not a valid HTTP response`);
    case 'too_large':
      return new KcmError('upstream_bad_response', `${where}: too large`);
    case 'bad_request':
      return new KcmError('bad_request', err.message);
    case 'aborted':
      return new ClientAbortedError();
    default:
      return new KcmError('upstream_unavailable', where);
  }
}

/**
 * Sends `ctx`'s request to `upstream` with `body` (undefined: no body) and
 * reads the whole answer (≤ `pools.options.maxResponseBytes`). Throws the
 * errors the file comment lists; never includes upstream bytes in them.
 */
export async function forward(
  pools: UpstreamPools,
  upstream: Upstream,
  ctx: RequestContext,
  body: Buffer | undefined,
  o: { identityEncoding: boolean; callerHeaders?: CallerHeaderPolicy | undefined },
): Promise<UpstreamReply> {
  if (ctx.aborted) throw new ClientAbortedError();
  let stop: (() => void) | undefined;
  // Registered for the exchange only, and unregistered after it: nothing of it outlives the request.
  const off = ctx.onAbort(() => stop?.());
  try {
    const target = targetOf(upstream.url);
    const res = await pools.pool(target.origin).request({
      method: ctx.method,
      path: upstreamPath(target.base, ctx),
      headers: upstreamRequestHeaders(ctx, o),
      body,
      onAbort: (abort) => {
        stop = abort;
      },
    });
    const headers = endToEnd(res.headers);
    // An answer without content (HEAD, 304) reports the length a GET would get: the front writes it (uws-adapter.ts).
    const length = res.headers['content-length'];
    if ((ctx.method === 'HEAD' || res.status === 304) && typeof length === 'string') headers['content-length'] = length;
    return { status: res.status, headers, body: res.body };
  } catch (err) {
    throw upstreamError(err, ctx, upstream);
  } finally {
    off();
    stop = undefined;
  }
}
