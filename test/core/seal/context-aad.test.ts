/**
 * The SealContext AAD encoding (core/src/seal/seal-context.ts): one known
 * answer, injectivity, and field checks.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sealContextAad } from '../../../core/src/seal/seal-context.ts';
import { rejectsWithKind } from './seal-assert.ts';

// u8 23 ‖ "openkcm/seal-context/v1" ‖ u16be 2 ‖ "c1" ‖ u16be 5 ‖ "eu-w1"
const KNOWN = Buffer.concat([
  Buffer.from([23]),
  Buffer.from('openkcm/seal-context/v1'),
  Buffer.from([0, 2]),
  Buffer.from('c1'),
  Buffer.from([0, 5]),
  Buffer.from('eu-w1'),
]);

describe('sealContextAad', () => {
  it('matches the known answer', () => {
    assert.deepEqual(sealContextAad({ clusterId: 'c1', region: 'eu-w1' }, 'pkcs11'), KNOWN);
    assert.deepEqual(sealContextAad({ clusterId: 'c1', region: 'eu-w1' }, 'dev'), KNOWN);
  });

  it('is injective across the field boundary', () => {
    const a = sealContextAad({ clusterId: 'ab', region: 'c' }, 'pkcs11');
    const b = sealContextAad({ clusterId: 'a', region: 'bc' }, 'pkcs11');
    assert.notDeepEqual(a, b);
  });

  it('refuses empty, non-string and over-long fields, naming them', async () => {
    const aad = sealContextAad;
    await rejectsWithKind(() => aad({ clusterId: '', region: 'r' }, 'dev'), 'config', /context\.clusterId/);
    await rejectsWithKind(() => aad({ clusterId: 'c', region: 7 } as never, 'dev'), 'config', /context\.region/);
    await rejectsWithKind(() => aad({ clusterId: 'é'.repeat(129), region: 'r' }, 'dev'), 'config', /256 bytes/);
    assert.equal(aad({ clusterId: 'x'.repeat(256), region: 'r' }, 'dev').length, 1 + 23 + 2 + 256 + 2 + 1);
  });
});
