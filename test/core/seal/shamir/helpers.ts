/** Shared helpers of the share-distribution tests. */
import assert from 'node:assert/strict';
import { KcmError } from '../../../../common/src/errors.ts';
import { type CeremonyResult, runCeremony } from '../../../../core/src/seal/shamir/ceremony.ts';
import { generateHolderKeypair, type HolderKeypair } from '../../../../core/src/seal/shamir/open-share.ts';
import type { ExpectedCeremony } from '../../../../core/src/seal/shamir/verify-share.ts';
import type { Crypto, KeyHandle } from '../../../../native/index.ts';

export const CLUSTER = 'cluster-1';
export const REGION = 'eu-central-1';

/** True when `b` opens what `a` sealed: the two handles hold the same key. */
export function sameKey(a: KeyHandle, b: KeyHandle): boolean {
  const probe = a.seal(Buffer.from('probe'), Buffer.alloc(0));
  try {
    return b.open(probe, Buffer.alloc(0)).toString() === 'probe';
  } catch {
    return false;
  }
}

/** The KcmError code `fn` throws ('no error' when it returns); fails on any other throwable. */
export function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof KcmError, `not a KcmError: ${String(e)}`);
    return e.code;
  }
  return 'no error';
}

/** The KcmError `fn` throws. */
export function error(fn: () => unknown): KcmError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof KcmError, `not a KcmError: ${String(e)}`);
    return e;
  }
  assert.fail('expected a KcmError');
}

export function holders(n: number): HolderKeypair[] {
  return Array.from({ length: n }, () => generateHolderKeypair());
}

export interface Ceremony {
  key: KeyHandle;
  holders: HolderKeypair[];
  result: CeremonyResult;
  expected: ExpectedCeremony;
}

/** A fresh MasterKey and an M-of-N ceremony over it (sealed unless `plain`). */
export function ceremony(c: Crypto, m = 3, n = 5, opts: { plain?: boolean; clusterId?: string } = {}): Ceremony {
  const key = c.generateKey();
  const hs = holders(n);
  const clusterId = opts.clusterId ?? CLUSTER;
  const result = runCeremony({
    crypto: c,
    masterKey: key,
    clusterId,
    region: REGION,
    threshold: m,
    shareCount: n,
    holderPublicKeys: opts.plain ? undefined : hs.map((h) => h.publicKey),
  });
  const expected: ExpectedCeremony = {
    clusterId,
    region: REGION,
    ceremonyPublicKey: result.ceremonyPublicKey,
    splitId: result.splitId,
    threshold: m,
    shareCount: n,
  };
  return { key, holders: hs, result, expected };
}

/** A deterministic shuffle (xorshift), so failures reproduce. */
export function shuffled<T>(items: readonly T[], seed: number): T[] {
  const out = [...items];
  let s = seed | 1;
  for (let i = out.length - 1; i > 0; i--) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    const j = (s >>> 0) % (i + 1);
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}
