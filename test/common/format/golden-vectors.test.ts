/**
 * SPEC.md golden vectors (test/vectors/envelope-v1.vec) on both crypto
 * backends: each vector's expected outcome must be exactly what the codec
 * and the field cipher report. native/src/golden.rs runs the same file.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { decryptFields, type FieldFailureReason } from '../../../common/src/crypto/field-cipher.ts';
import { BACKENDS, cryptoOf, skipFor } from '../../native/backends.ts';
import { generate, VECTOR_FILE } from '../../vectors/generate-envelope-vectors.ts';
import { OUTCOMES, type Outcome, parseVectors } from '../../vectors/vector-file.ts';

const vectors = parseVectors(readFileSync(VECTOR_FILE, 'utf8'));

/** What a decrypt-side failure reason means in vector terms. */
function outcomeOf(reason: FieldFailureReason, contextDiffers: boolean): Outcome {
  switch (reason) {
    case 'format_version':
      return 'unsupported_version';
    case 'wrong_tenant':
      return 'wrong_tenant';
    case 'auth_failed':
      return contextDiffers ? 'wrong_context' : 'auth_failure';
    case 'unknown_key':
      throw new Error('resolver always returns a key');
    default:
      return 'header_failure';
  }
}

describe('golden vectors file', () => {
  it('is what the generator produces (not stale)', () => {
    assert.equal(readFileSync(VECTOR_FILE, 'utf8'), generate());
  });

  it('covers every outcome', () => {
    assert.ok(vectors.length >= 30, `only ${vectors.length} vectors`);
    for (const o of OUTCOMES)
      assert.ok(
        vectors.some((v) => v.expect === o),
        `no vector expects ${o}`,
      );
  });
});

for (const name of BACKENDS) {
  describe(`golden vectors on the ${name} backend`, { skip: skipFor(name) }, () => {
    for (const v of vectors) {
      it(v.name, () => {
        const crypto = cryptoOf(name);
        const l3 = crypto.importKey(Buffer.from(v.l3_key, 'hex'));
        const context = Buffer.from(v.context, 'hex');
        const [result] = decryptFields(v.tenant, () => l3, [v.ciphertext], [context]);
        assert.ok(result);
        if (v.expect === 'success') {
          assert.ok(result.ok, `expected success, got ${result.ok ? '' : result.reason}`);
          assert.equal(result.plaintext.toString('hex'), v.plaintext ?? '');
        } else {
          assert.ok(!result.ok, 'expected a failure');
          assert.equal(outcomeOf(result.reason, v.expect === 'wrong_context'), v.expect, result.reason);
        }
        l3.destroy();
      });
    }
  });
}
