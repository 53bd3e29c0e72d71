/** Shared fixtures of the pipeline tests: routes compiled from policy objects, native keys, a plaintext marker. */
import assert from 'node:assert/strict';
import { KcmError } from '../../../common/src/errors.ts';
import { StaticKeyProvider } from '../../../gateway/src/pipeline/key-provider.ts';
import type { Caller, TransformRequest } from '../../../gateway/src/pipeline/transform-json.ts';
import { compilePolicy } from '../../../gateway/src/policy/policy-schema.ts';
import type { CompiledRoute } from '../../../gateway/src/policy/policy-types.ts';
import { type Crypto, cryptoFor } from '../../../native/index.ts';
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
