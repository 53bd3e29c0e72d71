/**
 * Forwarding one proxied request to its upstream (h1-client.ts), and reading
 * the answer with a size cap. Hop-by-hop headers (RFC 9110 §7.6.1: the fixed
 * list plus every name the Connection header lists) are dropped both ways;
 * `x-forwarded-for` gets the peer address appended, `x-forwarded-host` the
 * original host, `x-correlation-id` the request's correlation id. The
 * request is aborted when the client goes away (ctx.onAbort).
 *
 * Failures map to table errors and never carry upstream bytes:
 * refused / reset / truncated → 502 `upstream_unavailable`; connect, headers
 * or body deadline → 504 `upstream_timeout`; not HTTP or over the size cap →
 * 502 `upstream_bad_response`; a request header or target with control
 * characters → 400 `bad_request` (nothing sent); a client abort →
 * ClientAbortedError (nothing is written).
 */
import { KcmError } from '../../../common/src/errors.ts';
import type { RequestContext } from '../pipeline/context.ts';
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

function connectionTokens(value: string | string[] | undefined): Set<string> {
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
  drop: ReadonlySet<string> = new Set(),
): HeaderMap {
  const listed = connectionTokens(headers.connection);
  const out: HeaderMap = {};
  for (const name in headers) {
    const v = headers[name];
    if (v === undefined || HOP_BY_HOP.has(name) || listed.has(name) || drop.has(name)) continue;
    out[name] = v;
  }
  return out;
}

/** The request headers sent upstream. */
export function upstreamRequestHeaders(ctx: RequestContext, o: { identityEncoding: boolean }): HeaderMap {
  const h = endToEnd(ctx.headers);
  const prior = ctx.headers['x-forwarded-for'];
  h['x-forwarded-for'] = prior ? `${prior}, ${ctx.peer.address}` : ctx.peer.address;
  const host = ctx.headers.host;
  if (host !== undefined && ctx.headers['x-forwarded-host'] === undefined) h['x-forwarded-host'] = host;
  h['x-correlation-id'] = ctx.correlationId;
  // A decrypting route must read the body: ask for it uncompressed (a compressed answer is refused anyway).
  if (o.identityEncoding) h['accept-encoding'] = 'identity';
  return h;
}

/** The upstream path: the upstream URL's path prefix (no trailing /) + the request path + its query. */
export function upstreamPath(upstream: Upstream, ctx: RequestContext): string {
  const base = upstream.url.pathname.replace(/\/+$/, '');
  return `${base}${ctx.path}${ctx.query ? `?${ctx.query}` : ''}`;
}

/** Maps an upstream failure to a table error (or ClientAbortedError after a client abort). */
export function upstreamError(err: unknown, ctx: RequestContext, upstream: Upstream): Error {
  if (ctx.aborted) return new ClientAbortedError();
  if (err instanceof KcmError) return err;
  const where = `upstream ${upstream.name}`;
  if (!(err instanceof UpstreamFailure)) return new KcmError('upstream_unavailable', where);
  switch (err.kind) {
    case 'timeout':
      return new KcmError('upstream_timeout', where);
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
  o: { identityEncoding: boolean },
): Promise<UpstreamReply> {
  if (ctx.aborted) throw new ClientAbortedError();
  let stop: (() => void) | undefined;
  // Registered for the exchange only, and unregistered after it: nothing of it outlives the request.
  const off = ctx.onAbort(() => stop?.());
  try {
    const res = await pools.pool(upstream.url.origin).request({
      method: ctx.method,
      path: upstreamPath(upstream, ctx),
      headers: upstreamRequestHeaders(ctx, o),
      body,
      onAbort: (abort) => {
        stop = abort;
      },
    });
    return { status: res.status, headers: endToEnd(res.headers), body: res.body };
  } catch (err) {
    throw upstreamError(err, ctx, upstream);
  } finally {
    off();
    stop = undefined;
  }
}
