/**
 * Verification of submitted signed shares (SPEC.md §9.1): every flipped byte
 * is refused, other clusters and ceremonies are foreign, each check of the
 * order fires with its own code, and nothing but KcmError escapes.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { splitKey } from '../../../../common/src/crypto/shamir.ts';
import { encodeShare, type Share } from '../../../../common/src/format/share.ts';
import { clusterFingerprint } from '../../../../core/src/seal/shamir/cluster-fingerprint.ts';
import { openSealedShare } from '../../../../core/src/seal/shamir/open-share.ts';
import {
  encodeSignedShare,
  encodeSignedShareHeader,
  SIGNED_SHARE_BYTES,
  type SignedShareHeader,
  signatureMessage,
  signedShareFromText,
  signedShareToText,
} from '../../../../core/src/seal/shamir/signed-share.ts';
import { sodium } from '../../../../core/src/seal/shamir/sodium.ts';
import { type ExpectedCeremony, verifySignedShare } from '../../../../core/src/seal/shamir/verify-share.ts';
import { cryptoFor } from '../../../../native/index.ts';
import { CLUSTER, ceremony, code, error, REGION } from './helpers.ts';

const c = cryptoFor('node');
const cer = ceremony(c, 3, 5);
const texts = cer.result.shares.map((s, i) => openSealedShare(s.payload, cer.holders[i]?.secretKey as Buffer));
const text = texts[0] as string;

/** Every way the secret part of a share could leak into a message. */
function secretsOf(t: string): string[] {
  const y = signedShareFromText(t).subarray(71 + 31, 71 + 63);
  return [y.toString('hex'), y.toString('base64'), y.toString('base64url'), t.slice(40, 80)];
}

function refused(fn: () => unknown, codes: readonly string[], why?: RegExp): void {
  const e = error(fn);
  assert.ok(codes.includes(e.code), `${e.code}: ${e.message}`);
  if (why) assert.match(e.message, why);
  for (const s of secretsOf(text)) assert.ok(!e.message.includes(s), 'share bytes in message');
}

/** A ceremony-like signer whose secret key the test keeps, to reach the checks after the signature. */
function forge(share: Share, shareBytes: Buffer, edit: Partial<SignedShareHeader> = {}) {
  const kp = sodium.crypto_sign_keypair();
  const expected: ExpectedCeremony = {
    clusterId: CLUSTER,
    region: REGION,
    ceremonyPublicKey: kp.publicKey,
    splitId: share.splitId,
    threshold: share.threshold,
    shareCount: share.total,
  };
  const header = encodeSignedShareHeader({
    clusterFingerprint: clusterFingerprint(CLUSTER, REGION, kp.publicKey),
    threshold: share.threshold,
    shareCount: share.total,
    index: share.index,
    splitId: share.splitId,
    shareSha256: createHash('sha256').update(shareBytes).digest(),
    ...edit,
  });
  const sig = sodium.crypto_sign_detached(signatureMessage(header), kp.privateKey);
  return { expected, text: signedShareToText(encodeSignedShare(header, shareBytes, sig)), secretKey: kp.privateKey };
}

describe('verifySignedShare', () => {
  it('returns the §6 share of a genuine signed share', () => {
    const s = verifySignedShare(text, cer.expected);
    assert.equal(s.index, 1);
    assert.equal(s.threshold, 3);
    assert.equal(s.total, 5);
    assert.deepEqual(Buffer.from(s.splitId), cer.result.splitId);
    assert.equal(s.y.length, 32);
  });

  it('refuses every byte of the binary flipped (one bit, and all bits): never a success', () => {
    const good = signedShareFromText(text);
    assert.equal(good.length, SIGNED_SHARE_BYTES);
    const seen = new Map<string, number>();
    for (let i = 0; i < good.length; i++) {
      for (const mask of [0x01, 0x80, 0xff]) {
        const bad = Buffer.from(good);
        bad[i] = (bad[i] as number) ^ mask;
        const e = error(() => verifySignedShare(signedShareToText(bad), cer.expected));
        assert.ok(['invalid_share', 'foreign_share'].includes(e.code), `byte ${i}: ${e.code}`);
        for (const s of secretsOf(text)) assert.ok(!e.message.includes(s), `byte ${i}: share bytes in message`);
        seen.set(e.code, (seen.get(e.code) ?? 0) + 1);
      }
    }
    assert.ok((seen.get('foreign_share') ?? 0) > 0, 'fingerprint flips are diagnosed as foreign');
    assert.ok((seen.get('invalid_share') ?? 0) > 0);
  });

  it('names the check that failed: signature, share hash', () => {
    const good = signedShareFromText(text);
    const sig = Buffer.from(good);
    sig[201] = (sig[201] as number) ^ 1;
    refused(
      () => verifySignedShare(signedShareToText(sig), cer.expected),
      ['invalid_share'],
      /signature does not verify/,
    );
    const body = Buffer.from(good);
    body[71 + 40] = (body[71 + 40] as number) ^ 1;
    refused(
      () => verifySignedShare(signedShareToText(body), cer.expected),
      ['invalid_share'],
      /share bytes do not match the signed hash/,
    );
  });

  it('refuses a share of another cluster, of another ceremony of this cluster, and of another region', () => {
    const elsewhere = ceremony(c, 3, 5, { clusterId: 'cluster-2' });
    const foreignText = openSealedShare(
      elsewhere.result.shares[2]?.payload as string,
      elsewhere.holders[2]?.secretKey as Buffer,
    );
    refused(() => verifySignedShare(foreignText, cer.expected), ['foreign_share'], /another cluster/);
    const again = ceremony(c, 3, 5, { plain: true });
    refused(
      () => verifySignedShare(again.result.shares[0]?.payload as string, cer.expected),
      ['foreign_share'],
      /another cluster/,
    );
    refused(
      () => verifySignedShare(text, { ...cer.expected, clusterId: 'cluster-2' }),
      ['foreign_share'],
      /another cluster$/,
    );
    refused(
      () => verifySignedShare(text, { ...cer.expected, region: 'us-east-1' }),
      ['foreign_share'],
      /another cluster$/,
    );
  });

  it('refuses a share of another split id or another M-of-N', () => {
    refused(
      () => verifySignedShare(text, { ...cer.expected, splitId: Buffer.alloc(16, 1) }),
      ['foreign_share'],
      /another split/,
    );
    refused(
      () => verifySignedShare(text, { ...cer.expected, threshold: 2 }),
      ['foreign_share'],
      /3-of-5 split, this cluster uses 2-of-5/,
    );
    refused(() => verifySignedShare(text, { ...cer.expected, shareCount: 6 }), ['foreign_share'], /3-of-5/);
  });

  it('refuses a header signed with another key that copies this cluster fingerprint', () => {
    const good = signedShareFromText(text);
    const intruder = sodium.crypto_sign_keypair();
    const header = good.subarray(0, 71);
    const sig = sodium.crypto_sign_detached(signatureMessage(header), intruder.privateKey);
    const forged = encodeSignedShare(header, good.subarray(71, 138), sig);
    refused(
      () => verifySignedShare(signedShareToText(forged), cer.expected),
      ['invalid_share'],
      /signature does not verify/,
    );
  });

  it('checks the share itself after the signature: checksum, and agreement with the header', () => {
    const [s1, s2] = splitKey(c.generateKey(), 2, 3) as [Share, Share];
    const corrupt = encodeShare(s1);
    corrupt[40] = (corrupt[40] as number) ^ 1; // y byte: checksum now wrong, but signed as is
    const a = forge(s1, corrupt);
    refused(() => verifySignedShare(a.text, a.expected), ['invalid_share'], /checksum mismatch/);
    const b = forge(s1, encodeShare(s2), { index: 1 }); // header says 1, share says 2
    refused(() => verifySignedShare(b.text, b.expected), ['invalid_share'], /disagree with the signed header/);
    const ok = forge(s1, encodeShare(s1));
    assert.equal(verifySignedShare(ok.text, ok.expected).index, 1);
  });

  it('refuses a malformed expectation with invalid_shamir_parameters', () => {
    for (const bad of [
      { ceremonyPublicKey: Buffer.alloc(31) },
      { splitId: Buffer.alloc(15) },
      { threshold: 6 },
      { threshold: 1 },
      { clusterId: '' },
    ]) {
      assert.equal(
        code(() => verifySignedShare(text, { ...cer.expected, ...bad })),
        'invalid_shamir_parameters',
      );
    }
  });

  it('random input never succeeds and throws only KcmError', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (s) => {
        assert.equal(
          code(() => verifySignedShare(s, cer.expected)),
          'invalid_share',
        );
      }),
    );
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 202, maxLength: 202 }), (b) => {
        const r = code(() => verifySignedShare(signedShareToText(b), cer.expected));
        assert.ok(r === 'invalid_share' || r === 'foreign_share', r);
      }),
    );
  });
});
