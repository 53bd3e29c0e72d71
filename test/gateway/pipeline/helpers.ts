/** Shared fixtures of the pipeline tests: routes compiled from policy objects, native keys, a plaintext marker. */
import assert from 'node:assert/strict';
import { KcmError } from '../../../common/src/errors.ts';
import { scanJsonBody } from '../../../gateway/src/pipeline/json-body.ts';
import { type FieldKeyProvider, StaticKeyProvider } from '../../../gateway/src/pipeline/key-provider.ts';
import { decryptResponseFields } from '../../../gateway/src/pipeline/transform-decrypt.ts';
import { encryptRequestFields } from '../../../gateway/src/pipeline/transform-encrypt.ts';
import {
  type Caller,
  planFor,
  type TransformReport,
  type TransformRequest,
} from '../../../gateway/src/pipeline/transform-json.ts';
import { compilePolicy } from '../../../gateway/src/policy/policy-schema.ts';
import type { CompiledRoute, FieldRule } from '../../../gateway/src/policy/policy-types.ts';
import { type Crypto, cryptoFor, type KeyHandle } from '../../../native/index.ts';
import { nativeLoadError } from '../../native/backends.ts';

/** Every test value that must never surface in an error carries this. */
export const MARKER = 'PLAINTEXT-MARKER-7f3a';

/** The native backend, or a failing assertion naming why it cannot load. */
export function nativeCrypto(): Crypto {
  const err = nativeLoadError();
  if (err !== undefined) assert.fail(`native module required: ${err}`);
  return cryptoFor('native');
}

/** Compiles a one-policy object and returns its routes. */
export function routesOf(policy: Record<string, unknown>): CompiledRoute[] {
  return compilePolicy('test.routes.json', JSON.stringify(policy)).routes;
}

/**
 * The route of a one-route policy (id `t`, key `k`, tenant from the client
 * certificate): `POST /x` with these `request` rules, plus any other route
 * fields (`response`, `limits`, …).
 */
export function requestRoute(request: object[], more: Record<string, unknown> = {}): CompiledRoute {
  const [route] = routesOf({
    id: 't',
    key: 'k',
    defaults: { tenant: { from: 'cert' } },
    routes: [{ method: 'POST', path: '/x', upstream: 'http://h', request, ...more }],
  });
  if (!route) throw new Error('fixture route');
  return route;
}

/** A provider holding version 1 of key `k` for tenants acme and globex (distinct native keys). */
export function keysFor(crypto: Crypto): StaticKeyProvider {
  return new StaticKeyProvider().add('acme', 'k', 1, crypto.generateKey()).add('globex', 'k', 1, crypto.generateKey());
}

export function request(
  route: CompiledRoute,
  keys: StaticKeyProvider,
  more: Partial<TransformRequest> = {},
): TransformRequest {
  return { route, tenant: 'acme', params: {}, keys, ...more };
}

/**
 * `keys` with every decryption key made to decline dataKeyOpenSplice (same
 * key, through an envelope engine that is the plain handle's own batch
 * calls): the response transform then always takes its general path, to
 * compare the two.
 */
export function generalPathKeys(keys: FieldKeyProvider): FieldKeyProvider {
  const general = (h: KeyHandle): KeyHandle => {
    const g = h.withEnvelope({
      dataKeySealBatch: async (k, w, p, a) => k.dataKeySealBatch(w, p, a),
      dataKeyOpenBatch: async (k, w, wa, s, a) => k.dataKeyOpenBatch(w, wa, s, a),
    });
    g.dataKeyOpenSpliceAsync = async () => null;
    return g;
  };
  return {
    encryptKey: (tenant, keyId) => keys.encryptKey(tenant, keyId),
    decryptKey: (ref) => {
      const h = keys.decryptKey(ref);
      if (h instanceof Promise) return h.then((k) => (k === undefined ? k : general(k)));
      return h === undefined ? h : general(h);
    },
  };
}

export const READER: Caller = { identity: 'billing', roles: [] };
export const STRANGER: Caller = { identity: 'someone', roles: ['viewer'] };

/** Asserts `p` rejects with KcmError `code` and that nothing about it mentions the marker. */
export async function rejectsCode(p: Promise<unknown>, code: string): Promise<KcmError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof KcmError, String(err));
    assert.equal(err.code, code, err.message);
    assertNoMarker(err);
    return err;
  }
  assert.fail(`expected KcmError ${code}`);
}

/** Fails when the marker appears in the message, detail, stack or own properties of `value`. */
export function assertNoMarker(value: unknown): void {
  const parts = [JSON.stringify(value) ?? ''];
  if (value instanceof Error) parts.push(value.message, value.stack ?? '');
  for (const p of parts) assert.ok(!p.includes(MARKER), 'plaintext reached an error or report');
}

/** Makes `target` hold what `source` holds (own members defined, never set: an own "__proto__" stays a member). */
function replaceContents(target: object, source: unknown): void {
  if (Array.isArray(target)) {
    target.length = 0;
    target.push(...(source as unknown[]));
    return;
  }
  for (const k of Reflect.ownKeys(target)) Reflect.deleteProperty(target, k);
  for (const [k, v] of Object.entries(source as object)) {
    Object.defineProperty(target, k, { value: v, enumerable: true, writable: true, configurable: true });
  }
}

/** What a body transform made of a JSON value: its report, and the value its output body holds. */
export interface ValueTransform {
  report: TransformReport;
  value: unknown;
}

/** Runs a body transform on the JSON text of `value` and parses what it answers (the value itself when unchanged). */
async function onValue(
  value: unknown,
  route: CompiledRoute,
  rules: readonly FieldRule[],
  run: (body: ReturnType<typeof scanJsonBody>) => Promise<TransformReport>,
): Promise<ValueTransform> {
  const bytes = Buffer.from(JSON.stringify(value), 'utf8');
  const report = await run(scanJsonBody(bytes, 'application/json', route.limits, planFor(rules)));
  return { report, value: report.body === undefined ? value : JSON.parse(report.body.toString('utf8')) };
}

/** encryptRequestFields on the JSON text of a value. */
export function encryptValue(value: unknown, req: TransformRequest): Promise<ValueTransform> {
  return onValue(value, req.route, req.route.request, (body) => encryptRequestFields(body, req));
}

/** decryptResponseFields on the JSON text of a value. */
export function decryptValue(value: unknown, req: TransformRequest & { caller: Caller }): Promise<ValueTransform> {
  return onValue(value, req.route, req.route.response, (body) => decryptResponseFields(body, req));
}

/**
 * encryptRequestFields on a document, written back into it in place when the
 * body changed: the tests read documents, the transforms read and write bytes.
 */
export async function encryptDoc(doc: object, req: TransformRequest): Promise<TransformReport> {
  const { report, value } = await encryptValue(doc, req);
  if (report.body !== undefined) replaceContents(doc, value);
  return report;
}

/** decryptResponseFields on a document, in place (see {@link encryptDoc}). */
export async function decryptDoc(doc: object, req: TransformRequest & { caller: Caller }): Promise<TransformReport> {
  const { report, value } = await decryptValue(doc, req);
  if (report.body !== undefined) replaceContents(doc, value);
  return report;
}
