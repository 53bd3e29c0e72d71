/** The sealed-share payload codec (SPEC.md §9.2): one canonical byte form, fixed sizes. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  decodeSealedPayload,
  encodeSealedPayload,
  SEALED_SHARE_BYTES,
  SEALED_SHARE_FORMAT,
} from '../../../../core/src/seal/shamir/sealed-payload.ts';
import { code } from './helpers.ts';

const sample = {
  clusterId: 'cluster-1',
  index: 7,
  holderPublicKey: Buffer.alloc(32, 1),
  sealed: Buffer.alloc(250, 2),
};

describe('sealed payload codec', () => {
  it('encodes one line of JSON with a fixed key order and decodes it back', () => {
    assert.equal(SEALED_SHARE_BYTES, 250);
    const text = encodeSealedPayload(sample);
    assert.equal(
      text,
      `{"format":"${SEALED_SHARE_FORMAT}","clusterId":"cluster-1","index":7,"holderPublicKey":"${sample.holderPublicKey.toString('base64')}","sealed":"${sample.sealed.toString('base64')}"}`,
    );
    const back = decodeSealedPayload(`${text}\n`);
    assert.deepEqual(back, sample);
    assert.equal(encodeSealedPayload(back), text);
  });

  it('refuses invalid fields when encoding', () => {
    for (const bad of [
      { index: 0 },
      { index: 256 },
      { clusterId: 'a/b' },
      { holderPublicKey: Buffer.alloc(31) },
      { sealed: Buffer.alloc(251) },
    ]) {
      assert.equal(
        code(() => encodeSealedPayload({ ...sample, ...bad })),
        'invalid_share',
      );
    }
  });

  it('refuses the same document with white space inside, an escaped character or a float index', () => {
    const text = encodeSealedPayload(sample);
    for (const bad of [
      text.replace('"index":7', '"index": 7'),
      text.replace('"index":7', '"index":7.0'),
      text.replace('cluster-1', 'cluster\\u002d1'),
    ]) {
      assert.equal(
        code(() => decodeSealedPayload(bad)),
        'invalid_share',
        bad,
      );
    }
  });
});
