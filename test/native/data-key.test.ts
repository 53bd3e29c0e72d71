/**
 * Envelope encryption in one call (dataKeySealBatch / dataKeyOpenBatch) on
 * both backends: round trips, mixed batches, and per-item nulls.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MessageChannel } from 'node:worker_threads';
import { WRAPPED_KEY_BYTES } from '../../native/index.ts';
import { BACKENDS, cryptoOf, flipBit, pattern, skipFor, throwsCode } from './backends.ts';

const wrapAad = Buffer.from('tenant-1/dek');
const items = (n: number, seed = 0): { pts: Buffer[]; aads: Buffer[] } => ({
  pts: Array.from({ length: n }, (_, i) => pattern((i * 29) % 300, seed + i)),
  aads: Array.from({ length: n }, (_, i) => pattern(i % 7, seed + 50 + i)),
});

for (const name of BACKENDS) {
  describe(`data-key batches [${name}]`, { skip: skipFor(name) }, () => {
    for (const n of [0, 1, 16]) {
      it(`round trip of ${n} item(s)`, () => {
        const kek = cryptoOf(name).generateKey();
        const { pts, aads } = items(n);
        const { wrappedKey, sealed } = kek.dataKeySealBatch(wrapAad, pts, aads);
        assert.equal(wrappedKey.length, WRAPPED_KEY_BYTES);
        assert.equal(sealed.length, n);
        for (const [i, s] of sealed.entries()) assert.equal(s.length, (pts[i] as Buffer).length + 28);
        const opened = kek.dataKeyOpenBatch(Array(n).fill(wrappedKey), Array(n).fill(wrapAad), sealed, aads);
        assert.deepEqual(opened, pts);
      });
    }

    it('format: items are sealed under the data key that wrappedKey unwraps to', () => {
      const kek = cryptoOf(name).generateKey();
      const { pts, aads } = items(4, 3);
      const { wrappedKey, sealed } = kek.dataKeySealBatch(wrapAad, pts, aads);
      const dek = kek.unwrap(wrappedKey, wrapAad);
      for (const [i, s] of sealed.entries()) assert.deepEqual(dek.open(s, aads[i] as Buffer), pts[i], `item ${i}`);
      const extra = dek.seal(pattern(11), wrapAad);
      assert.deepEqual(kek.dataKeyOpenBatch([wrappedKey], [wrapAad], [extra], [wrapAad]), [pattern(11)]);
    });

    it('items of two batches mixed in one open call', () => {
      const kek = cryptoOf(name).generateKey();
      const a = items(3, 10);
      const b = items(3, 20);
      const otherAad = Buffer.from('tenant-2/dek');
      const sa = kek.dataKeySealBatch(wrapAad, a.pts, a.aads);
      const sb = kek.dataKeySealBatch(otherAad, b.pts, b.aads);
      assert.notDeepEqual(sa.wrappedKey, sb.wrappedKey);
      // Interleaved (A B A B …), then runs (A A B B): both must open every item.
      const order: ['a' | 'b', number][] = [
        ['a', 0],
        ['b', 0],
        ['a', 1],
        ['b', 1],
        ['b', 2],
        ['a', 2],
        ['a', 0],
      ];
      const pick = (w: 'a' | 'b') => (w === 'a' ? { s: sa, it: a, wa: wrapAad } : { s: sb, it: b, wa: otherAad });
      const opened = kek.dataKeyOpenBatch(
        order.map(([w]) => pick(w).s.wrappedKey),
        order.map(([w]) => pick(w).wa),
        order.map(([w, i]) => pick(w).s.sealed[i] as Buffer),
        order.map(([w, i]) => pick(w).it.aads[i] as Buffer),
      );
      assert.deepEqual(
        opened,
        order.map(([w, i]) => pick(w).it.pts[i]),
      );
      // An item paired with the other batch's data key does not open.
      const crossed = kek.dataKeyOpenBatch([sa.wrappedKey], [wrapAad], [sb.sealed[0] as Buffer], [b.aads[0] as Buffer]);
      assert.deepEqual(crossed, [null]);
    });

    it('a bad wrapped key, wrap aad or item gives null only for the affected items', () => {
      const kek = cryptoOf(name).generateKey();
      const { pts, aads } = items(8, 30);
      const { wrappedKey, sealed } = kek.dataKeySealBatch(wrapAad, pts, aads);
      const badKey = flipBit(wrappedKey, 20);
      const wks = [wrappedKey, badKey, badKey, wrappedKey, wrappedKey, wrappedKey, wrappedKey, wrappedKey];
      const was = [wrapAad, wrapAad, wrapAad, Buffer.from('wrong'), wrapAad, wrapAad, wrapAad, wrapAad];
      const its = [...sealed];
      its[5] = flipBit(sealed[5] as Buffer, 30);
      const itAads = [...aads];
      itAads[6] = flipBit(aads[6] as Buffer, 0);
      const out = kek.dataKeyOpenBatch(wks, was, its, itAads);
      assert.deepEqual(out, [pts[0], null, null, null, pts[4], null, null, pts[7]]);
      // The same items are fine when given correctly in the same call shape.
      assert.deepEqual(kek.dataKeyOpenBatch(Array(8).fill(wrappedKey), Array(8).fill(wrapAad), sealed, aads), pts);
      // A wrapped key of the wrong length, or another kek, gives null, not an exception.
      const short = wrappedKey.subarray(0, 59);
      assert.deepEqual(
        kek.dataKeyOpenBatch([short, wrappedKey], [wrapAad, wrapAad], sealed.slice(0, 2), aads.slice(0, 2)),
        [null, pts[1]],
      );
      const other = cryptoOf(name).generateKey();
      assert.deepEqual(other.dataKeyOpenBatch([wrappedKey], [wrapAad], [sealed[0] as Buffer], [aads[0] as Buffer]), [
        null,
      ]);
    });

    it('consecutive items under the same bad wrapped key are all null; the next wrapped key recovers', () => {
      const kek = cryptoOf(name).generateKey();
      const { pts, aads } = items(2, 40);
      const s1 = kek.dataKeySealBatch(wrapAad, pts, aads);
      const s2 = kek.dataKeySealBatch(wrapAad, pts, aads);
      const bad = flipBit(s1.wrappedKey, 0);
      const out = kek.dataKeyOpenBatch(
        [bad, bad, s2.wrappedKey],
        [wrapAad, wrapAad, wrapAad],
        [...s1.sealed, s2.sealed[1] as Buffer],
        [...aads, aads[1] as Buffer],
      );
      assert.deepEqual(out, [null, null, pts[1]]);
    });

    it('mismatched array lengths throw invalid_argument', () => {
      const kek = cryptoOf(name).generateKey();
      const { wrappedKey, sealed } = kek.dataKeySealBatch(wrapAad, [pattern(1)], [pattern(1)]);
      const e = new Uint8Array(0);
      throwsCode(() => kek.dataKeySealBatch(wrapAad, [e, e], [e]), 'invalid_argument', 'seal 2/1');
      throwsCode(() => kek.dataKeyOpenBatch([wrappedKey], [wrapAad], sealed, []), 'invalid_argument', 'aads');
      throwsCode(() => kek.dataKeyOpenBatch([wrappedKey], [], sealed, [e]), 'invalid_argument', 'wrapAads');
      throwsCode(() => kek.dataKeyOpenBatch([], [wrapAad], sealed, [e]), 'invalid_argument', 'wrappedKeys');
      throwsCode(() => kek.dataKeyOpenBatch([wrappedKey], [wrapAad], [], [e]), 'invalid_argument', 'sealed');
    });

    it('each batch uses a fresh data key and counts one encryption on the kek', () => {
      const kek = cryptoOf(name).generateKey();
      const { pts, aads } = items(3, 60);
      const a = kek.dataKeySealBatch(wrapAad, pts, aads);
      const b = kek.dataKeySealBatch(wrapAad, pts, aads);
      assert.equal(kek.info().encryptions, 2);
      const deka = kek.unwrap(a.wrappedKey, wrapAad);
      assert.equal(deka.openBatch(b.sealed, aads).filter((x) => x !== null).length, 0, 'data keys must differ');
    });
  });
}

describe('plaintext outputs of the native open batches', { skip: skipFor('native') }, () => {
  it("share one backing store per call, holding only that call's plaintexts (failed items null and wiped)", () => {
    const kek = cryptoOf('native').generateKey();
    const { pts, aads } = items(5, 7);
    const { wrappedKey, sealed } = kek.dataKeySealBatch(wrapAad, pts, aads);
    const bad = [...sealed];
    bad[2] = flipBit(sealed[2] as Buffer, 20);
    const opened = kek.dataKeyOpenBatch(Array(5).fill(wrappedKey), Array(5).fill(wrapAad), bad, aads);
    assert.equal(opened[2], null);
    const store = (opened[0] as Buffer).buffer;
    const expected = Buffer.concat(pts.map((p, i) => (i === 2 ? Buffer.alloc(p.length) : p)));
    assert.equal(store.byteLength, expected.length, 'a store made for this call alone, exactly its outputs');
    assert.deepEqual(Buffer.from(store), expected, "this call's plaintexts in order; the failed item's bytes zero");
    for (const [i, p] of opened.entries()) if (p) assert.equal(p.buffer, store, `item ${i} is a view of it`);
    const again = kek.dataKeyOpenBatch(Array(5).fill(wrappedKey), Array(5).fill(wrapAad), sealed, aads);
    assert.notEqual((again[0] as Buffer).buffer, store, 'another call, another store');
    const plain = kek.openBatch([kek.seal(pattern(9), wrapAad), kek.seal(pattern(4), wrapAad)], [wrapAad, wrapAad]);
    assert.equal((plain[0] as Buffer).buffer, (plain[1] as Buffer).buffer);
    assert.equal((plain[0] as Buffer).buffer.byteLength, 13);
    // Marked untransferable: transferring one plaintext's store copies it and never detaches its siblings.
    const { port1, port2 } = new MessageChannel();
    port1.postMessage(store, [store as ArrayBuffer]);
    port1.close();
    port2.close();
    assert.equal(store.byteLength, expected.length);
    assert.deepEqual(opened[1], pts[1]);
  });
});
