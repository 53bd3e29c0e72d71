/**
 * AES-256-GCM seal/open and the batch calls of KeyHandle, on both backends:
 * round trips (fast-check), the nonce ‖ ct ‖ tag layout, and generated
 * flip-one-bit / truncate-must-fail tests (every failure is `decryption_failed`).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { NONCE_BYTES, SEAL_OVERHEAD, TAG_BYTES } from '../../native/index.ts';
import { BACKENDS, cryptoOf, flipBit, pattern, skipFor, throwsCode } from './backends.ts';

const empty = new Uint8Array(0);

for (const name of BACKENDS) {
  describe(`aead [${name}]`, { skip: skipFor(name) }, () => {
    it('open(seal(pt, aad), aad) returns pt (property: pt 0..4096 bytes, random aad)', () => {
      const key = cryptoOf(name).generateKey();
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 4096 }), fc.uint8Array({ maxLength: 256 }), (pt, aad) => {
          const sealed = key.seal(pt, aad);
          assert.equal(sealed.length, pt.length + SEAL_OVERHEAD);
          assert.deepEqual(key.open(sealed, aad), Buffer.from(pt));
        }),
        { numRuns: 200 },
      );
      key.destroy();
    });

    it('empty plaintext and empty aad', () => {
      const key = cryptoOf(name).generateKey();
      const sealed = key.seal(empty, empty);
      assert.equal(sealed.length, SEAL_OVERHEAD);
      assert.equal(key.open(sealed, empty).length, 0);
      assert.deepEqual(key.open(key.seal(pattern(10), empty), empty), pattern(10));
      assert.equal(key.open(key.seal(empty, pattern(10)), pattern(10)).length, 0);
      throwsCode(() => key.open(sealed, new Uint8Array(1)), 'decryption_failed', 'empty vs 1-byte aad');
    });

    it('sealed length is plaintext + 28 bytes (12 nonce + 16 tag)', () => {
      assert.equal(SEAL_OVERHEAD, NONCE_BYTES + TAG_BYTES);
      assert.equal(SEAL_OVERHEAD, 28);
      const key = cryptoOf(name).generateKey();
      for (const n of [0, 1, 15, 16, 17, 255, 4096, 65537]) assert.equal(key.seal(pattern(n), empty).length, n + 28);
    });

    it('two seals of the same input differ (random nonces)', () => {
      const key = cryptoOf(name).generateKey();
      const pt = pattern(64);
      const seen = new Set<string>();
      for (let i = 0; i < 64; i++) {
        const sealed = key.seal(pt, empty);
        seen.add(sealed.subarray(0, NONCE_BYTES).toString('hex'));
        assert.deepEqual(key.open(sealed, empty), pt);
      }
      assert.equal(seen.size, 64, 'a nonce repeated');
    });

    it('flipping any bit of the sealed blob fails with decryption_failed', () => {
      const key = cryptoOf(name).generateKey();
      const aad = pattern(9, 2);
      const sealed = key.seal(pattern(21), aad);
      let n = 0;
      for (let i = 0; i < sealed.length; i++) {
        for (let bit = 0; bit < 8; bit++, n++) {
          throwsCode(() => key.open(flipBit(sealed, i, bit), aad), 'decryption_failed', `byte ${i} bit ${bit}`);
        }
      }
      assert.equal(n, (21 + 28) * 8);
      assert.deepEqual(key.open(sealed, aad), pattern(21), 'the original still opens');
    });

    it('flipping any bit of the aad fails with decryption_failed', () => {
      const key = cryptoOf(name).generateKey();
      const aad = pattern(13, 3);
      const sealed = key.seal(pattern(5), aad);
      for (let i = 0; i < aad.length; i++) {
        for (let bit = 0; bit < 8; bit++) {
          throwsCode(() => key.open(sealed, flipBit(aad, i, bit)), 'decryption_failed', `aad byte ${i} bit ${bit}`);
        }
      }
      throwsCode(() => key.open(sealed, aad.subarray(1)), 'decryption_failed', 'shorter aad');
      throwsCode(() => key.open(sealed, Buffer.concat([aad, Buffer.alloc(1)])), 'decryption_failed', 'longer aad');
    });

    it('truncation to every shorter length, and extension, fail with decryption_failed', () => {
      const key = cryptoOf(name).generateKey();
      const sealed = key.seal(pattern(40), empty);
      for (let len = 0; len < sealed.length; len++) {
        throwsCode(() => key.open(sealed.subarray(0, len), empty), 'decryption_failed', `prefix of ${len} bytes`);
        throwsCode(() => key.open(sealed.subarray(sealed.length - len), empty), 'decryption_failed', `suffix ${len}`);
      }
      throwsCode(() => key.open(Buffer.concat([sealed, Buffer.alloc(1)]), empty), 'decryption_failed', 'extended');
    });

    it('a different key fails with decryption_failed', () => {
      const crypto = cryptoOf(name);
      const a = crypto.importKey(pattern(32, 1));
      const b = crypto.importKey(pattern(32, 2));
      const a2 = crypto.importKey(pattern(32, 1));
      const sealed = a.seal(pattern(100), empty);
      throwsCode(() => b.open(sealed, empty), 'decryption_failed', 'other key');
      throwsCode(() => crypto.generateKey().open(sealed, empty), 'decryption_failed', 'random key');
      assert.deepEqual(a2.open(sealed, empty), pattern(100), 'same bytes imported twice');
    });

    it('non-byte arguments throw invalid_argument', () => {
      const key = cryptoOf(name).generateKey();
      const bad = 'not bytes' as unknown as Uint8Array;
      throwsCode(() => key.seal(bad, empty), 'invalid_argument', 'seal plaintext');
      throwsCode(() => key.seal(empty, bad), 'invalid_argument', 'seal aad');
      throwsCode(() => key.open(bad, empty), 'invalid_argument', 'open sealed');
      throwsCode(() => key.open(key.seal(empty, empty), bad), 'invalid_argument', 'open aad');
    });

    it('sealBatch/openBatch round trip with a per-item null for corrupted items only', () => {
      const key = cryptoOf(name).generateKey();
      const pts = Array.from({ length: 8 }, (_, i) => pattern(i * 37, i));
      const aads = pts.map((_, i) => pattern(i, 100 + i));
      const sealed = key.sealBatch(pts, aads);
      assert.equal(sealed.length, 8);
      sealed.forEach((s, i) => {
        assert.equal(s.length, (pts[i] as Buffer).length + 28);
        assert.deepEqual(key.open(s, aads[i] as Buffer), pts[i], `batch item ${i} opens alone`);
      });
      assert.deepEqual(key.openBatch(sealed, aads), pts);
      const bad = [...sealed];
      bad[2] = flipBit(sealed[2] as Buffer, 5);
      bad[5] = (sealed[5] as Buffer).subarray(0, 27);
      const badAads = [...aads];
      badAads[7] = pattern(3, 99);
      const out = key.openBatch(bad, badAads);
      assert.equal(out.length, 8);
      out.forEach((o, i) => {
        if (i === 2 || i === 5 || i === 7) assert.equal(o, null, `item ${i} must be null`);
        else assert.deepEqual(o, pts[i], `item ${i} must still open`);
      });
      const single = key.seal(pattern(3), empty);
      assert.deepEqual(key.openBatch([single], [empty]), [pattern(3)], 'a seal() blob opens in a batch');
    });

    it('batch items get distinct nonces', () => {
      const key = cryptoOf(name).generateKey();
      const sealed = key.sealBatch(Array(32).fill(pattern(16)), Array(32).fill(empty));
      assert.equal(new Set(sealed.map((s) => s.subarray(0, NONCE_BYTES).toString('hex'))).size, 32);
    });

    it('mismatched batch array lengths throw invalid_argument', () => {
      const key = cryptoOf(name).generateKey();
      throwsCode(() => key.sealBatch([pattern(1), pattern(2)], [empty]), 'invalid_argument', 'sealBatch 2/1');
      throwsCode(() => key.sealBatch([], [empty]), 'invalid_argument', 'sealBatch 0/1');
      const sealed = key.sealBatch([pattern(1), pattern(2)], [empty, empty]);
      throwsCode(() => key.openBatch(sealed, [empty]), 'invalid_argument', 'openBatch 2/1');
      throwsCode(() => key.openBatch([], [empty]), 'invalid_argument', 'openBatch 0/1');
    });

    it('a batch of 0 items returns an empty array', () => {
      const key = cryptoOf(name).generateKey();
      assert.deepEqual(key.sealBatch([], []), []);
      assert.deepEqual(key.openBatch([], []), []);
      assert.equal(key.info().encryptions, 0);
    });
  });
}

for (const name of BACKENDS) {
  describe(`sealInto on the ${name} backend`, { skip: skipFor(name) }, () => {
    it('writes nonce ‖ ct ‖ tag at the offset, returns the length, and opens', () => {
      const key = cryptoOf(name).generateKey();
      const out = Buffer.alloc(100, 0xee);
      const n = key.sealInto(Buffer.from('hello'), Buffer.from('ad'), out, 10);
      assert.equal(n, 5 + 28);
      assert.ok(
        out.subarray(0, 10).every((b) => b === 0xee),
        'bytes before the offset untouched',
      );
      assert.ok(
        out.subarray(10 + n).every((b) => b === 0xee),
        'bytes after the blob untouched',
      );
      assert.equal(key.open(out.subarray(10, 10 + n), Buffer.from('ad')).toString(), 'hello');
      assert.equal(key.info().encryptions, 1);
    });

    it('refuses a short, out-of-range or overlapping output', () => {
      const key = cryptoOf(name).generateKey();
      const buf = Buffer.alloc(64);
      throwsCode(() => key.sealInto(Buffer.alloc(8), Buffer.alloc(0), Buffer.alloc(35)), 'invalid_argument', 'short');
      throwsCode(
        () => key.sealInto(Buffer.alloc(8), Buffer.alloc(0), buf, 40),
        'invalid_argument',
        'no room after offset',
      );
      throwsCode(() => key.sealInto(Buffer.alloc(8), Buffer.alloc(0), buf, 65), 'invalid_argument', 'offset past end');
      throwsCode(
        () => key.sealInto(Buffer.alloc(8), Buffer.alloc(0), buf, 1.5),
        'invalid_argument',
        'fractional offset',
      );
      throwsCode(
        () => key.sealInto(buf.subarray(0, 8), Buffer.alloc(0), buf, 0),
        'invalid_argument',
        'overlaps plaintext',
      );
      throwsCode(() => key.sealInto(Buffer.alloc(8), buf.subarray(30, 40), buf, 0), 'invalid_argument', 'overlaps aad');
      assert.equal(
        key.sealInto(buf.subarray(50, 58), Buffer.alloc(0), buf, 0),
        36,
        'disjoint views of one buffer are fine',
      );
      assert.equal(key.info().encryptions, 1);
    });
  });
}

for (const name of BACKENDS) {
  describe(`memory safety of inputs on the ${name} backend`, { skip: skipFor(name) }, () => {
    it('refuses views of a SharedArrayBuffer (another thread could change them mid-call)', () => {
      const key = cryptoOf(name).generateKey();
      const shared = new Uint8Array(new SharedArrayBuffer(64));
      throwsCode(() => key.seal(shared.subarray(0, 8), Buffer.alloc(0)), 'invalid_argument', 'plaintext');
      throwsCode(() => key.seal(Buffer.alloc(8), shared.subarray(0, 8)), 'invalid_argument', 'aad');
      throwsCode(() => key.sealInto(Buffer.alloc(8), Buffer.alloc(0), shared, 0), 'invalid_argument', 'out');
      throwsCode(() => key.sealBatch([shared.subarray(0, 4)], [Buffer.alloc(0)]), 'invalid_argument', 'batch item');
    });

    it('never writes a sealed blob over an input that is a view of an earlier blob’s backing store', () => {
      const key = cryptoOf(name).generateKey();
      const first = key.seal(Buffer.from('x'), Buffer.alloc(0));
      const whole = new Uint8Array(first.buffer, first.byteOffset, first.buffer.byteLength - first.byteOffset);
      const aad = Buffer.from(whole.subarray(0, Math.min(whole.length, 512)));
      const view = whole.subarray(0, aad.length);
      const sealed = key.seal(Buffer.from('secret'), view);
      assert.deepEqual(Buffer.from(view), aad, 'the aad view was not overwritten');
      assert.equal(key.open(sealed, view).toString(), 'secret');
      const more = key.sealBatch([view.subarray(0, 16)], [Buffer.alloc(0)]);
      assert.deepEqual(key.openBatch(more, [Buffer.alloc(0)])[0], Buffer.from(aad.subarray(0, 16)));
    });
  });
}
