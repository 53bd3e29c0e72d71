/**
 * The sovereign-binding codec (SPEC.md §10) and the L1 context: round trip,
 * bounded lengths, random bytes only ever fail with a format code, and the
 * tenant-bound AAD differs from the seal AAD and from another tenant's.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { KcmError } from '../../../common/src/errors.ts';
import { encodeWrappedKey } from '../../../common/src/format/wrapped-key.ts';
import { l1DataKeyRef, l2Ref } from '../../../core/src/keys/key-names.ts';
import { keyHierarchyConfig } from '../../../core/src/keys/l3/key-settings.ts';
import { l1ProvidersConfig } from '../../../core/src/l1/l1-registry.ts';
import { decodeSovereignBlob, encodeSovereignBlob } from '../../../core/src/l1/sovereign-blob.ts';
import { encryptionContext } from '../../../core/src/seal/aws-kms/aws-kms-provider.ts';
import { sealContextAad } from '../../../core/src/seal/seal-context.ts';

const wrappedL2 = encodeWrappedKey({
  wrapping: l1DataKeyRef('acme', 1),
  wrapped: l2Ref('acme', 1),
  sealed: Buffer.alloc(60, 7),
});

describe('sovereign binding codec and L1 context', () => {
  it('round-trips and names the wrapped L2', () => {
    const blob = encodeSovereignBlob({
      dataKey: {
        keyId: 'arn:aws:kms:eu-central-1:1:key/k',
        keyVersion: 'ab'.repeat(32),
        ciphertext: Buffer.alloc(100, 3),
      },
      wrappedL2,
    });
    const back = decodeSovereignBlob(blob);
    assert.equal(back.dataKey.keyId, 'arn:aws:kms:eu-central-1:1:key/k');
    assert.deepEqual(back.dataKey.ciphertext, Buffer.alloc(100, 3));
    assert.deepEqual(back.wrapped.wrapped, l2Ref('acme', 1));
    const tooLong = Buffer.from(blob);
    tooLong.writeUInt32BE(1 << 20, 4);
    assert.throws(
      () => decodeSovereignBlob(tooLong),
      (e: unknown) => e instanceof KcmError && e.code === 'format_header',
    );
  });

  it('never crashes on random or truncated bytes: only format_* errors', () => {
    const blob = encodeSovereignBlob({
      dataKey: { keyId: 'k', keyVersion: '', ciphertext: Buffer.alloc(60, 1) },
      wrappedL2,
    });
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 400 }),
          fc.nat(blob.length - 1).map((n) => blob.subarray(0, n)),
        ),
        (bytes) => {
          try {
            decodeSovereignBlob(bytes);
          } catch (e) {
            assert.ok(e instanceof KcmError && e.code.startsWith('format_'), String(e));
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  it('binds the tenant: a distinct AAD domain and AWS EncryptionContext key', () => {
    const seal = sealContextAad({ clusterId: 'c', region: 'r' }, 'pkcs11');
    const a = sealContextAad({ clusterId: 'c', region: 'r', tenant: 'a' }, 'pkcs11');
    const b = sealContextAad({ clusterId: 'c', region: 'r', tenant: 'b' }, 'pkcs11');
    assert.equal(new Set([seal, a, b].map((x) => x.toString('hex'))).size, 3);
    assert.ok(a.includes(Buffer.from('openkcm/l1-context/v1')));
    assert.deepEqual(encryptionContext({ clusterId: 'c', region: 'r', tenant: 'a' }), {
      'openkcm:cluster': 'c',
      'openkcm:region': 'r',
      'openkcm:tenant': 'a',
    });
    assert.deepEqual(encryptionContext({ clusterId: 'c', region: 'r' }), {
      'openkcm:cluster': 'c',
      'openkcm:region': 'r',
    });
  });

  it('validates the config sections, naming the field', () => {
    assert.throws(() => l1ProvidersConfig({ 'bad name': { type: 'dev' } }, true), /l1Providers/);
    assert.throws(() => l1ProvidersConfig({ dev: { type: 'dev', keyFile: 'x' } }, false), /development mode/);
    assert.throws(() => l1ProvidersConfig({ x: { type: 'gcp' } }, true), /l1Providers.x.type/);
    assert.throws(() => keyHierarchyConfig({ l2CacheMax: 0 }), /keys.l2CacheMax/);
    assert.throws(
      () => keyHierarchyConfig({ service: { encryptionBudget: 2 ** 33 } }),
      /keys.service.encryptionBudget/,
    );
    assert.equal(keyHierarchyConfig({}).service.encryptionBudget, 2 ** 31);
  });
});
