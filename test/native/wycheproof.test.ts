/**
 * Wycheproof AES-GCM known-answer tests against both crypto backends.
 *
 * Source: Project Wycheproof, C2SP/wycheproof commit dac1dd4,
 * testvectors_v1/aes_gcm_test.json (Apache License 2.0), stored outside the
 * repository at <root>/../shared/vectors/wycheproof/ (README.md and LICENSE
 * beside it) and read at run time.
 *
 * - keySize 256, ivSize 96, tagSize 128: `open(iv ‖ ct ‖ tag, aad)` must return
 *   `msg` exactly for "valid", and throw CryptoError('decryption_failed') for
 *   "invalid". "acceptable" (none in this version of the file) is accepted
 *   either way, but when it opens, the output must equal `msg`.
 * - keySize 256 with any other iv/tag size: the API has a fixed 96-bit nonce and
 *   128-bit tag, so `open(iv ‖ ct ‖ tag, aad)` must throw decryption_failed
 *   whatever the expected result.
 * - keySize 128/192: importKey must refuse them (invalid_key_length).
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { CryptoError } from '../../native/index.ts';
import { BACKENDS, cryptoOf, skipFor, throwsCode } from './backends.ts';

const VECTORS = fileURLToPath(new URL('../../../shared/vectors/wycheproof/aes_gcm_test.json', import.meta.url));

interface AeadCase {
  tcId: number;
  comment: string;
  flags: string[];
  key: string;
  iv: string;
  aad: string;
  msg: string;
  ct: string;
  tag: string;
  result: 'valid' | 'invalid' | 'acceptable';
}
interface AeadGroup {
  keySize: number;
  ivSize: number;
  tagSize: number;
  tests: AeadCase[];
}

function loadGroups(): { groups: AeadGroup[] } | { error: string } {
  if (!existsSync(VECTORS)) {
    return {
      error:
        `Wycheproof vectors not found at ${VECTORS}: the repository must be cloned next to ` +
        'the shared/ folder (<root>/../shared/vectors/wycheproof/aes_gcm_test.json), as in CI',
    };
  }
  const json = JSON.parse(readFileSync(VECTORS, 'utf8')) as { algorithm?: string; testGroups?: AeadGroup[] };
  if (json.algorithm !== 'AES-GCM' || !Array.isArray(json.testGroups)) {
    return { error: `${VECTORS} is not a Wycheproof AES-GCM file` };
  }
  return { groups: json.testGroups };
}

const loaded = loadGroups();
const groups = 'groups' in loaded ? loaded.groups : [];
const hex = (s: string): Buffer => Buffer.from(s, 'hex');
const casesOf = (pred: (g: AeadGroup) => boolean): { g: AeadGroup; t: AeadCase }[] =>
  groups.filter(pred).flatMap((g) => g.tests.map((t) => ({ g, t })));

const fixedSize = casesOf((g) => g.keySize === 256 && g.ivSize === 96 && g.tagSize === 128);
const otherSizes = casesOf((g) => g.keySize === 256 && (g.ivSize !== 96 || g.tagSize !== 128));
const shortKeys = casesOf((g) => g.keySize !== 256);

it('the Wycheproof AES-GCM vectors are present', () => {
  if ('error' in loaded) assert.fail(loaded.error);
  assert.ok(fixedSize.length > 0 && otherSizes.length > 0 && shortKeys.length > 0, 'no usable test groups');
});

for (const name of BACKENDS) {
  describe(`wycheproof aes_gcm_test.json [${name}]`, { skip: skipFor(name) }, () => {
    it('256-bit key, 96-bit iv, 128-bit tag: valid opens to msg, invalid throws decryption_failed', (t) => {
      const crypto = cryptoOf(name);
      const counts = { valid: 0, invalid: 0, acceptable: 0 };
      for (const { t: tc } of fixedSize) {
        const what = `tcId ${tc.tcId} (${tc.result}; ${tc.comment || tc.flags.join(',')})`;
        const key = crypto.importKey(hex(tc.key));
        const blob = Buffer.concat([hex(tc.iv), hex(tc.ct), hex(tc.tag)]);
        try {
          if (tc.result === 'valid') {
            assert.deepEqual(key.open(blob, hex(tc.aad)), hex(tc.msg), what);
          } else if (tc.result === 'invalid') {
            throwsCode(() => key.open(blob, hex(tc.aad)), 'decryption_failed', what);
          } else {
            // acceptable: either outcome is allowed, but a plaintext must be the right one.
            try {
              assert.deepEqual(key.open(blob, hex(tc.aad)), hex(tc.msg), what);
            } catch (err) {
              if (!(err instanceof CryptoError && err.code === 'decryption_failed')) throw err;
            }
          }
          counts[tc.result]++;
        } finally {
          key.destroy();
        }
      }
      t.diagnostic(`${name}: ${fixedSize.length} cases (${JSON.stringify(counts)})`);
      assert.ok(counts.valid > 0 && counts.invalid > 0, `too few cases: ${JSON.stringify(counts)}`);
    });

    it('256-bit key with another iv/tag size: open(iv ‖ ct ‖ tag) throws decryption_failed', (t) => {
      const crypto = cryptoOf(name);
      const sizes = new Set<string>();
      for (const { g, t: tc } of otherSizes) {
        const key = crypto.importKey(hex(tc.key));
        const blob = Buffer.concat([hex(tc.iv), hex(tc.ct), hex(tc.tag)]);
        try {
          throwsCode(() => key.open(blob, hex(tc.aad)), 'decryption_failed', `tcId ${tc.tcId} iv ${g.ivSize} bits`);
        } finally {
          key.destroy();
        }
        sizes.add(`${g.ivSize}/${g.tagSize}`);
      }
      t.diagnostic(`${name}: ${otherSizes.length} cases, iv/tag sizes ${[...sizes].join(' ')}`);
      assert.ok(otherSizes.length > 0);
    });

    it('128- and 192-bit keys are refused by importKey (invalid_key_length)', (t) => {
      const crypto = cryptoOf(name);
      const seen = new Set<number>();
      for (const { g, t: tc } of shortKeys) {
        if (seen.has(g.keySize)) continue;
        seen.add(g.keySize);
        throwsCode(() => crypto.importKey(hex(tc.key)), 'invalid_key_length', `keySize ${g.keySize}`);
      }
      t.diagnostic(`${name}: key sizes refused: ${[...seen].join(', ')}`);
      assert.ok(seen.size > 0);
    });
  });
}
