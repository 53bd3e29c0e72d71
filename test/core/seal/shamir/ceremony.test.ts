/**
 * The Shamir key ceremony end to end on both crypto backends: split, sign,
 * seal to holders, open, verify, combine — the rebuilt key is the MasterKey;
 * the manifest matches the payloads; plain mode; the parameter table.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { combineShares } from '../../../../common/src/crypto/shamir.ts';
import type { Share } from '../../../../common/src/format/share.ts';
import { runCeremony } from '../../../../core/src/seal/shamir/ceremony.ts';
import {
  DISTRIBUTION_PLAIN,
  DISTRIBUTION_SEALED,
  MANIFEST_FORMAT,
  payloadSha256,
} from '../../../../core/src/seal/shamir/manifest.ts';
import { generateHolderKeypair, openSealedShare } from '../../../../core/src/seal/shamir/open-share.ts';
import { SEALED_SHARE_FORMAT } from '../../../../core/src/seal/shamir/sealed-payload.ts';
import { SIGNED_SHARE_TEXT_PREFIX } from '../../../../core/src/seal/shamir/signed-share.ts';
import { verifySignedShare } from '../../../../core/src/seal/shamir/verify-share.ts';
import { type BackendName, type Crypto, cryptoFor } from '../../../../native/index.ts';
import { BACKENDS, cryptoOf, nativeLoadError, skipFor, subsets } from '../../../native/backends.ts';
import { type Ceremony, CLUSTER, ceremony, code, error, REGION, sameKey, shuffled } from './helpers.ts';

/** Holder i opens payload i, the Core verifies the signed share. */
function openAndVerify(cer: Ceremony, i: number): Share {
  const issued = cer.result.shares[i];
  const holder = cer.holders[i];
  assert.ok(issued && holder);
  return verifySignedShare(openSealedShare(issued.payload, holder.secretKey), cer.expected);
}

for (const name of BACKENDS) {
  describe(`Shamir ceremony on the ${name} backend`, { skip: skipFor(name) }, () => {
    const c = (): Crypto => cryptoOf(name);

    it('3-of-5 with holder keys: every 3 holders, in shuffled order, rebuild the MasterKey', () => {
      const cer = ceremony(c(), 3, 5);
      const sets = subsets([0, 1, 2, 3, 4], 3);
      assert.equal(sets.length, 10);
      for (const [n, set] of sets.entries()) {
        const order = shuffled(set, n + 7);
        const rebuilt = combineShares(
          c(),
          order.map((i) => openAndVerify(cer, i)),
        );
        assert.ok(sameKey(cer.key, rebuilt), `holders ${order}`);
        rebuilt.destroy();
      }
      const all = combineShares(
        c(),
        shuffled([0, 1, 2, 3, 4], 3).map((i) => openAndVerify(cer, i)),
      );
      assert.ok(sameKey(all, cer.key), 'all five shares');
    });

    it('two shares are not enough', () => {
      const cer = ceremony(c(), 3, 5);
      for (const pair of subsets([0, 1, 2, 3, 4], 2)) {
        assert.equal(
          code(() =>
            combineShares(
              c(),
              pair.map((i) => openAndVerify(cer, i)),
            ),
          ),
          'not_enough_shares',
        );
      }
    });

    it('the manifest lists every payload with its holder key and SHA-256', () => {
      const t = Date.UTC(2025, 0, 2, 3, 4, 5, 6);
      const key = c().generateKey();
      const hs = [generateHolderKeypair(), generateHolderKeypair(), generateHolderKeypair()];
      const r = runCeremony({
        crypto: c(),
        masterKey: key,
        clusterId: CLUSTER,
        region: REGION,
        threshold: 2,
        shareCount: 3,
        holderPublicKeys: hs.map((h) => h.publicKey),
        now: () => t,
      });
      const m = r.manifest;
      assert.deepEqual(JSON.parse(JSON.stringify(m)), m, 'JSON-able');
      assert.equal(m.format, MANIFEST_FORMAT);
      assert.equal(m.clusterId, CLUSTER);
      assert.equal(m.region, REGION);
      assert.equal(m.threshold, 2);
      assert.equal(m.shareCount, 3);
      assert.equal(m.splitId, r.splitId.toString('hex'));
      assert.equal(m.clusterFingerprint, r.clusterFingerprint.toString('hex'));
      assert.equal(m.ceremonyPublicKey, r.ceremonyPublicKey.toString('base64'));
      assert.equal(m.distribution, DISTRIBUTION_SEALED);
      assert.equal(m.createdAt, '2025-01-02T03:04:05.006Z');
      assert.deepEqual(
        m.shares.map((s) => s.index),
        [1, 2, 3],
      );
      for (const [i, s] of m.shares.entries()) {
        const issued = r.shares[i];
        assert.ok(issued);
        assert.equal(s.index, issued.index);
        assert.equal(s.payloadSha256, payloadSha256(issued.payload));
        assert.equal(s.payloadSha256, issued.payloadSha256);
        assert.equal(s.holderPublicKey, hs[i]?.publicKey.toString('base64'));
        const doc = JSON.parse(issued.payload) as Record<string, unknown>;
        assert.deepEqual(Object.keys(doc), ['format', 'clusterId', 'index', 'holderPublicKey', 'sealed']);
        assert.equal(doc.format, SEALED_SHARE_FORMAT);
        assert.equal(doc.clusterId, CLUSTER);
        assert.equal(doc.index, s.index);
        assert.equal(doc.holderPublicKey, s.holderPublicKey);
      }
      assert.equal(new Set(m.shares.map((s) => s.payloadSha256)).size, 3);
      assert.ok(sameKey(key, key), 'the MasterKey stays usable after the ceremony');
    });

    it('returns no ceremony secret and no share in clear when sealing', () => {
      const cer = ceremony(c(), 2, 3);
      assert.deepEqual(Object.keys(cer.result).sort(), [
        'ceremonyPublicKey',
        'clusterFingerprint',
        'manifest',
        'shares',
        'splitId',
      ]);
      assert.equal(cer.result.ceremonyPublicKey.length, 32);
      const everything = JSON.stringify(cer.result);
      assert.ok(!everything.includes(SIGNED_SHARE_TEXT_PREFIX));
      assert.ok(!everything.includes('okcm-share:'));
      const again = ceremony(c(), 2, 3);
      assert.notDeepEqual(again.result.ceremonyPublicKey, cer.result.ceremonyPublicKey, 'one key per ceremony');
      assert.notDeepEqual(again.result.splitId, cer.result.splitId);
    });

    it('plain mode: the payloads are signed share texts and the manifest says so', () => {
      const cer = ceremony(c(), 3, 4, { plain: true });
      assert.equal(cer.result.manifest.distribution, DISTRIBUTION_PLAIN);
      for (const [i, s] of cer.result.shares.entries()) {
        assert.ok(s.payload.startsWith(SIGNED_SHARE_TEXT_PREFIX));
        assert.equal(s.holderPublicKey, null);
        assert.equal(cer.result.manifest.shares[i]?.holderPublicKey, null);
        assert.equal(cer.result.manifest.shares[i]?.payloadSha256, payloadSha256(s.payload));
      }
      const shares = shuffled(cer.result.shares, 11)
        .slice(0, 3)
        .map((s) => verifySignedShare(s.payload, cer.expected));
      assert.ok(sameKey(cer.key, combineShares(c(), shares)));
    });
  });
}

describe('Shamir ceremony parameters', () => {
  const c = cryptoFor('node');
  const base = () => ({ crypto: c, masterKey: c.generateKey(), clusterId: CLUSTER, region: REGION });
  const keys = (n: number) => Array.from({ length: n }, () => generateHolderKeypair().publicKey);
  const dup = keys(5);
  dup[3] = Buffer.from(dup[1] as Buffer);
  const short = keys(5);
  short[2] = Buffer.alloc(31, 9);
  const long = keys(5);
  long[4] = Buffer.alloc(33, 9);
  const zero = keys(5);
  zero[0] = Buffer.alloc(32);

  const table: [string, Record<string, unknown>, RegExp][] = [
    ['M > N', { threshold: 4, shareCount: 3 }, /threshold 4 exceeds share count 3/],
    ['M = 1', { threshold: 1, shareCount: 3 }, /threshold 1 outside 2\.\.255/],
    ['M not an integer', { threshold: 2.5, shareCount: 3 }, /threshold 2\.5/],
    ['N = 256', { threshold: 3, shareCount: 256 }, /share count 256 outside/],
    [
      '4 holder keys for 5 shares',
      { threshold: 3, shareCount: 5, holderPublicKeys: keys(4) },
      /4 holder public keys for 5 shares/,
    ],
    [
      '6 holder keys for 5 shares',
      { threshold: 3, shareCount: 5, holderPublicKeys: keys(6) },
      /6 holder public keys for 5 shares/,
    ],
    ['duplicate holder keys', { threshold: 3, shareCount: 5, holderPublicKeys: dup }, /#2 and #4 are the same/],
    ['31-byte holder key', { threshold: 3, shareCount: 5, holderPublicKeys: short }, /#3 must be 32 bytes/],
    ['33-byte holder key', { threshold: 3, shareCount: 5, holderPublicKeys: long }, /#5 must be 32 bytes/],
    ['low-order holder key', { threshold: 3, shareCount: 5, holderPublicKeys: zero }, /#1 is not a usable X25519/],
    ['empty cluster id', { threshold: 2, shareCount: 3, clusterId: '' }, /clusterId/],
    ['cluster id with a NUL', { threshold: 2, shareCount: 3, clusterId: 'a\0b' }, /clusterId/],
    ['65-character region', { threshold: 2, shareCount: 3, region: 'r'.repeat(65) }, /region/],
  ];
  for (const [what, opts, message] of table) {
    it(`refuses ${what} with invalid_shamir_parameters`, () => {
      const e = error(() => runCeremony({ ...base(), ...opts } as Parameters<typeof runCeremony>[0]));
      assert.equal(e.code, 'invalid_shamir_parameters');
      assert.match(e.message, /^invalid Shamir parameters: runCeremony: /);
      assert.match(e.message, message);
    });
  }

  it('refuses a MasterKey of another backend', { skip: nativeLoadError() ?? false }, () => {
    const other: BackendName = 'native';
    const e = error(() =>
      runCeremony({ ...base(), masterKey: cryptoFor(other).generateKey(), threshold: 2, shareCount: 3 }),
    );
    assert.equal(e.code, 'backend_mismatch');
  });
});
