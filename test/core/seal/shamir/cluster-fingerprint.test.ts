/** The cluster fingerprint (SPEC.md §9.1): a known answer from the definition, and its inputs checked. */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { clusterFingerprint } from '../../../../core/src/seal/shamir/cluster-fingerprint.ts';
import { code } from './helpers.ts';

describe('clusterFingerprint', () => {
  const pk = Buffer.alloc(32, 0xab);

  it('is the first 16 bytes of SHA-256("okcm/cluster/v1" 00 id 00 region 00 pk)', () => {
    const input = Buffer.concat([Buffer.from('okcm/cluster/v1\0cluster-1\0eu-central-1\0', 'latin1'), pk]);
    const want = createHash('sha256').update(input).digest().subarray(0, 16);
    assert.deepEqual(clusterFingerprint('cluster-1', 'eu-central-1', pk), want);
    // The example of SPEC.md §9.1.
    assert.equal(want.toString('hex'), '26af53d20a803056d272806e5079460c');
  });

  it('changes with every input', () => {
    const a = clusterFingerprint('c1', 'r1', pk);
    assert.notDeepEqual(clusterFingerprint('c2', 'r1', pk), a);
    assert.notDeepEqual(clusterFingerprint('c1', 'r2', pk), a);
    assert.notDeepEqual(clusterFingerprint('c1', 'r1', Buffer.alloc(32, 0xac)), a);
    assert.notDeepEqual(clusterFingerprint('c1r', '1', pk), clusterFingerprint('c1', 'r1', pk), 'separators');
  });

  it('refuses invalid names and public keys', () => {
    for (const [id, region, key] of [
      ['', 'r', pk],
      ['c', '', pk],
      ['c\0', 'r', pk],
      ['c', 'r'.repeat(65), pk],
      ['c', 'r', Buffer.alloc(31)],
    ] as const) {
      assert.equal(
        code(() => clusterFingerprint(id, region, key)),
        'invalid_shamir_parameters',
      );
    }
  });
});
