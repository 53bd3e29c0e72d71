/**
 * Shared helpers of the crypto backend suite: every *.test.ts here loops over
 * {@link BACKENDS} so the native module and the node:crypto fallback pass the
 * same tests.
 *
 * The native variant is skipped, with the load error as the visible reason,
 * when its binary cannot load, except under CI=true, where the tests run
 * anyway and fail on {@link cryptoOf} (CI must exercise the native binary).
 */
import assert from 'node:assert/strict';
import {
  type BackendName,
  type Crypto,
  CryptoError,
  type CryptoErrorCode,
  cryptoFor,
  type KeyHandle,
} from '../../native/index.ts';
import { loadNative } from '../../native/ts/load.ts';

export const BACKENDS: readonly BackendName[] = ['native', 'node'];

export const IN_CI = process.env.CI === 'true';

/** Why the native module is unusable here, or undefined when it loaded. */
export function nativeLoadError(): string | undefined {
  const r = loadNative();
  return r.backend ? undefined : (r.error ?? `could not load ${r.path}`);
}

/** `skip` option for a suite of backend `name`: a reason string, or false to run it. */
export function skipFor(name: BackendName): string | false {
  if (name !== 'native' || IN_CI) return false;
  const err = nativeLoadError();
  return err === undefined ? false : `native module not built: ${err}`;
}

/** The Crypto of `name`; under CI a missing native module fails here with the load error. */
export function cryptoOf(name: BackendName): Crypto {
  if (name === 'native') {
    const err = nativeLoadError();
    if (err !== undefined) assert.fail(`native backend required (CI=${process.env.CI ?? ''}) but unavailable: ${err}`);
  }
  return cryptoFor(name);
}

/** The validator of throwsCode / rejectsCode: `err` must be a CryptoError with `code`. */
function isCryptoError(code: CryptoErrorCode, what: string): (err: unknown) => true {
  return (err) => {
    assert.ok(err instanceof CryptoError, `${what}: expected CryptoError(${code}), got ${String(err)}`);
    assert.equal(err.code, code, `${what}: ${err.message}`);
    return true;
  };
}

/** Asserts that `fn` throws a CryptoError with `code`. */
export function throwsCode(fn: () => unknown, code: CryptoErrorCode, what = ''): void {
  assert.throws(fn, isCryptoError(code, what), what);
}

/** Asserts that `fn` throws a raw backend error `[code] …` with `.code === code`. */
export function throwsBackendCode(fn: () => unknown, code: string, what = ''): void {
  assert.throws(
    fn,
    (err: unknown) => {
      assert.ok(err instanceof Error, `${what}: expected an Error, got ${String(err)}`);
      assert.equal((err as { code?: unknown }).code, code, `${what}: ${err.message}`);
      assert.match(err.message, new RegExp(`^\\[${code}\\] `), what);
      return true;
    },
    what,
  );
}

/** `n` bytes of a fixed pattern (fresh each call: importKey zero-fills its input). */
export function pattern(n: number, seed = 1): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (seed * 31 + i * 17) & 0xff;
  return b;
}

/** A copy of `buf` with bit `bit` of byte `i` flipped. */
export function flipBit(buf: Uint8Array, i: number, bit = 0): Buffer {
  const out = Buffer.from(buf);
  out[i] = (out[i] as number) ^ (1 << bit);
  return out;
}

/** All k-element subsets of `items`, in lexicographic order of indices. */
export function subsets<T>(items: readonly T[], k: number): T[][] {
  const out: T[][] = [];
  const pick = (start: number, acc: T[]): void => {
    if (acc.length === k) {
      out.push([...acc]);
      return;
    }
    for (let i = start; i <= items.length - (k - acc.length); i++) pick(i + 1, [...acc, items[i] as T]);
  };
  pick(0, []);
  return out;
}

/** Asserts that `fn` rejects with a CryptoError with `code`. */
export async function rejectsCode(fn: () => Promise<unknown>, code: CryptoErrorCode, what = ''): Promise<void> {
  await assert.rejects(fn, isCryptoError(code, what), what);
}

/** dataKeySealSplice by the call `k` takes: the asynchronous one for an envelope engine (errors as rejections). */
export function sealOf(k: KeyHandle, ...a: Parameters<KeyHandle['dataKeySealSplice']>): Promise<Buffer> {
  return k.asyncEnvelope ? k.dataKeySealSpliceAsync(...a) : new Promise((r) => r(k.dataKeySealSplice(...a)));
}

/** dataKeyOpenSplice by the call `k` takes (as sealOf). */
export function openOf(k: KeyHandle, ...a: Parameters<KeyHandle['dataKeyOpenSplice']>): Promise<Buffer | null> {
  return k.asyncEnvelope ? k.dataKeyOpenSpliceAsync(...a) : new Promise((r) => r(k.dataKeyOpenSplice(...a)));
}
