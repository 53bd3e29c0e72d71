/**
 * The two body transforms of a proxy route, run only on routes whose policy
 * has rules for that direction (a passthrough route's bytes are never
 * parsed or re-serialised):
 *
 * Both run in the route's field backend (policy `backend`: native, or the
 * PKCS#11 token of gateway/src/hsm/), whose key provider the caller passes
 * (proxy-routes.ts picks it once per route); the envelope format is the same.
 *
 * - request: the body must be uncompressed JSON (`Content-Encoding` other
 *   than identity, or a non-JSON type → 415 `unsupported_media_type`;
 *   malformed / too deep / a repeated member on a selected path → 400), the
 *   selected fields are encrypted in one native call, and the body with only
 *   those values replaced is what goes upstream (every other byte as the
 *   client sent it). Any failure answers the client and NOTHING is
 *   forwarded. An empty body has nothing to encrypt and is forwarded as is.
 * - response: the upstream body must be uncompressed JSON, else 502
 *   `upstream_bad_response` (never passed through); the selected fields are
 *   decrypted for readers, or left as ciphertext / masked for others. On a
 *   non-2xx answer a selected field that is absent is skipped (error bodies
 *   rarely carry the record). The body is the upstream's, so a body the
 *   policy does not fit (a required field absent, a wrong shape, more
 *   selected values than `maxFields`) is the upstream's fault: 502
 *   `upstream_bad_response` naming the precise code, the path in the audit
 *   reasons, never a 4xx. Decryption failures keep their policy status (422
 *   `field_decryption_failed`, policies/README.md). Only an empty answer
 *   passes untransformed: content in a HEAD, 204, 205 or 304 answer (which
 *   h1-parser.ts never yields) is refused like any other unreadable body.
 */
import { type ErrorCode, KcmError } from '../../../common/src/errors.ts';
import { noteKeys } from '../audit/request-audit.ts';
import { type GatewayKeys, recordEncryption } from '../gateway-keys.ts';
import type { RequestContext } from '../pipeline/context.ts';
import { checkJsonBody, scanCheckedBody } from '../pipeline/json-body.ts';
import { nativeTargets } from '../pipeline/json-targets.ts';
import type { FieldKeyProvider } from '../pipeline/key-provider.ts';
import { decryptFoundTargets, decryptResponseFields } from '../pipeline/transform-decrypt.ts';
import { encryptFoundTargets, encryptRequestFields } from '../pipeline/transform-encrypt.ts';
import {
  FieldDecryptionError,
  planFor,
  type Caller as ReaderCaller,
  type TransformReport,
} from '../pipeline/transform-json.ts';
import type { CompiledRoute } from '../policy/policy-types.ts';

/** What the proxy keeps per request between its stages. */
export interface ProxyState {
  /** The body to send upstream when the request transform replaced it. */
  body?: Buffer;
  /** Set when ctx.response is the upstream's answer (the response transform applies only then). */
  fromUpstream?: boolean;
}

/** The proxy state of `ctx` (made on first use; kept in ctx.routeState, which proxy routes own). */
export function proxyState(ctx: RequestContext): ProxyState {
  let s = ctx.routeState as ProxyState | undefined;
  if (!s) {
    s = {};
    ctx.routeState = s;
  }
  return s;
}

function isCompressed(encoding: string | string[] | undefined): boolean {
  if (encoding === undefined) return false;
  const v = (Array.isArray(encoding) ? encoding.join(',') : encoding).trim().toLowerCase();
  return v !== '' && v !== 'identity';
}

function single(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v.join(', ') : v;
}

/**
 * Encrypts the selected fields of ctx.rawBody for `route` under ctx.tenant;
 * stores the new body in the proxy state (unchanged bytes when no field was
 * present) and reports the one L3 use (one data key wrapped per request) to
 * `keys.recordEncryptions`. Throws KcmError (415, 400, 413, 422, key errors).
 */
export async function encryptRequestBody(
  ctx: RequestContext,
  route: CompiledRoute,
  keys: GatewayKeys,
  fieldKeys: FieldKeyProvider,
): Promise<void> {
  const raw = ctx.rawBody;
  const tenant = ctx.tenant;
  if (tenant === undefined) throw new KcmError('internal_error', 'proxy route without a tenant');
  if (!raw || raw.length === 0) return;
  if (isCompressed(ctx.headers['content-encoding'])) {
    throw new KcmError('unsupported_media_type', 'a compressed body cannot be encrypted');
  }
  checkJsonBody(raw, ctx.headers['content-type'], route.limits);
  const req = { route, tenant, params: ctx.params, keys: fieldKeys };
  // The native pass and one-call seal when they apply; else the JavaScript scan, which answers everything.
  const found = nativeTargets(raw, route.request, route.limits);
  const report =
    (found && (await encryptFoundTargets(raw, req, found))) ??
    (await encryptRequestFields(scanCheckedBody(raw, route.limits, planFor(route.request)), req));
  if (report.body === undefined || report.keyVersion === undefined) return;
  proxyState(ctx).body = report.body;
  // The received bytes hold the plaintext: wipe them now that the ciphertext body exists.
  raw.fill(0);
  recordEncryption(ctx, keys, tenant, route.keyId, report.keyVersion);
}

/** The route with every response rule's onMissing set to skip (for non-2xx answers), cached. */
const lenient = new WeakMap<CompiledRoute, CompiledRoute>();
function skipMissing(route: CompiledRoute): CompiledRoute {
  let r = lenient.get(route);
  if (!r) {
    r = { ...route, response: route.response.map((rule) => ({ ...rule, onMissing: 'skip' as const })) };
    lenient.set(route, r);
  }
  return r;
}

/** Headers about the upstream's exact bytes, dropped when the transform changed the body. */
const STALE_AFTER_CHANGE = new Set(['etag', 'content-md5', 'digest']);

/** The route's limits with the response size limit, per route and limit (the same object every time). */
const responseLimits = new WeakMap<CompiledRoute, { max: number; limits: CompiledRoute['limits'] }>();
function limitsForResponse(route: CompiledRoute, maxResponseBytes: number): CompiledRoute['limits'] {
  let l = responseLimits.get(route);
  if (l?.max !== maxResponseBytes) {
    l = { max: maxResponseBytes, limits: { ...route.limits, bodyBytes: maxResponseBytes } };
    responseLimits.set(route, l);
  }
  return l.limits;
}

/** Statuses whose answers have no content (RFC 9110 §15.3.5, §15.3.6, §15.4.5). */
const NO_BODY_STATUS = new Set([204, 205, 304]);

/** Errors of the transform that describe the body it read: from the upstream, they are the upstream's fault. */
const BODY_SHAPE_ERRORS = new Set<ErrorCode>(['selector_missing', 'selector_type_mismatch', 'too_many_fields']);

/** `upstream_bad_response` for a body that failed with `code`; `detail` (paths, never values) goes to the audit. */
function badUpstreamBody(ctx: RequestContext, code: string, detail?: string): KcmError {
  ctx.auditReasons = [detail ? `upstream body: ${code}: ${detail}` : `upstream body: ${code}`];
  return new KcmError('upstream_bad_response', `upstream body: ${code}`);
}

/**
 * Transforms the upstream answer in ctx.response for `caller`. Throws
 * `upstream_bad_response` (502) for a body that is compressed, not JSON,
 * malformed or too deep, that the policy's selectors do not fit
 * (`selector_missing`, `selector_type_mismatch`, `too_many_fields` named in
 * the message), or content in a HEAD / 204 / 205 / 304 answer;
 * `field_decryption_failed` (422) per the policy; key errors (503, 410).
 */
export async function decryptResponseBody(
  ctx: RequestContext,
  route: CompiledRoute,
  fieldKeys: FieldKeyProvider,
  caller: ReaderCaller,
  maxResponseBytes: number,
): Promise<void> {
  const res = ctx.response;
  const tenant = ctx.tenant;
  if (!res || !proxyState(ctx).fromUpstream) return;
  if (tenant === undefined) throw new KcmError('internal_error', 'proxy route without a tenant');
  const body = typeof res.body === 'string' ? Buffer.from(res.body) : res.body;
  if (body.length === 0) return;
  // Fail closed: content where none may be is never passed on untransformed.
  if (NO_BODY_STATUS.has(res.status) || ctx.method === 'HEAD') {
    throw badUpstreamBody(ctx, 'content_not_allowed', `status ${res.status} to ${ctx.method}`);
  }
  if (isCompressed(res.headers['content-encoding'])) {
    throw new KcmError('upstream_bad_response', 'a compressed response cannot be decrypted');
  }
  const rules = res.status >= 200 && res.status < 300 ? route : skipMissing(route);
  const limits = limitsForResponse(route, maxResponseBytes);
  try {
    checkJsonBody(body, single(res.headers['content-type']), limits);
  } catch (err) {
    throw badUpstreamBody(ctx, err instanceof KcmError ? err.code : 'json_malformed');
  }
  const req = { route: rules, tenant, params: ctx.params, keys: fieldKeys, caller };
  // The native pass and one-call open when they apply; else the JavaScript scan and the general path.
  const found = nativeTargets(body, rules.response, limits);
  let report = found && (await decryptFoundTargets(body, req, found));
  // After a native answer the one-call path was tried on these same targets: the general path does not try it again.
  if (report === undefined) report = await scanAndDecrypt(ctx, body, limits, req, found === undefined);
  if (report.failures.length > 0) ctx.auditReasons = report.failures.map((f) => `${f.path}: ${f.reason}`);
  if (report.openedVersions)
    noteKeys(
      ctx,
      report.openedVersions.map((keyVersion) => ({ keyId: route.keyId, keyVersion })),
    );
  if (report.body === undefined) return;
  // The body changed: validators and digests of the stored bytes no longer hold.
  // (A copy without them, not `delete`, which would turn the object into a slow dictionary.)
  const headers: typeof res.headers = Object.create(null); // `__proto__` is a header like any other
  for (const name of Object.keys(res.headers)) {
    if (!STALE_AFTER_CHANGE.has(name)) headers[name] = res.headers[name] as string | string[];
  }
  if (report.decrypted > 0) headers['cache-control'] = 'no-store';
  ctx.response = { ...res, headers, body: report.body };
}

/** The general response path: the JavaScript scan, then decryptResponseFields; errors mapped as the file says. */
async function scanAndDecrypt(
  ctx: RequestContext,
  body: Uint8Array,
  limits: CompiledRoute['limits'],
  req: Parameters<typeof decryptResponseFields>[1],
  oneCall: boolean,
): Promise<TransformReport> {
  let scanned: ReturnType<typeof scanCheckedBody>;
  try {
    scanned = scanCheckedBody(body, limits, planFor(req.route.response));
  } catch (err) {
    throw badUpstreamBody(ctx, err instanceof KcmError ? err.code : 'json_malformed');
  }
  try {
    return await decryptResponseFields(scanned, req, { oneCall });
  } catch (err) {
    if (err instanceof FieldDecryptionError) ctx.auditReasons = err.failures.map((f) => `${f.path}: ${f.reason}`);
    else if (err instanceof KcmError && BODY_SHAPE_ERRORS.has(err.code))
      throw badUpstreamBody(ctx, err.code, err.detail);
    throw err;
  }
}
