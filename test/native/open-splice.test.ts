/**
 * dataKeyOpenSplice on both backends and through an envelope engine: what
 * dataKeySealSplice wrote opens back in one call, plaintexts come out as
 * JSON strings, and any item that is not exactly an envelope string that
 * opens to UTF-8 makes the whole call decline (null). Native and node must
 * give the same answers on the same inputs.
 */
import assert from 'node:assert/strict';
import { isUtf8 } from 'node:buffer';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { KeyHandle } from '../../native/index.ts';
import { BACKENDS, cryptoOf, IN_CI, nativeLoadError, openOf, rejectsCode, skipFor } from './backends.ts';

const wrapAad = Buffer.from('tenant-1/dek');
const heads: { aadHead: Uint8Array; textHead: Uint8Array; header: Uint8Array } = {
  aadHead: Buffer.from('domain\0HDR7'),
  textHead: Buffer.from('okcm:1:'),
  header: Buffer.from('HDR7'),
};

/** Seals each raw value of `values` (its bytes are the plaintext) in `"["v0","v1",…]"`-like body; answers the sealed body and the envelope spans. */
function sealed(kek: KeyHandle, values: Buffer[], contexts: Buffer[]): { body: Buffer; spans: Uint32Array } {
  const parts: Buffer[] = [Buffer.from('{"a":[')];
  const raw: number[] = [];
  let at = parts[0]?.length as number;
  values.forEach((v, i) => {
    const piece = Buffer.concat([Buffer.from(i > 0 ? ',<' : '<'), v, Buffer.from('>')]);
    const start = at + (i > 0 ? 1 : 0);
    raw.push(start, start + v.length + 2, start + 1, start + 1 + v.length);
    parts.push(piece);
    at += piece.length;
  });
  parts.push(Buffer.from('],"n":1}'));
  const body = kek.plain().dataKeySealSplice(wrapAad, Buffer.concat(parts), new Uint32Array(raw), contexts, heads);
  const spans: number[] = [];
  for (let i = body.indexOf('"okcm:1:'); i >= 0; i = body.indexOf('"okcm:1:', i + 1)) {
    const end = body.indexOf('"', i + 1) + 1;
    spans.push(i, end);
    i = end - 1;
  }
  return { body, spans: new Uint32Array(spans) };
}

function viaEngine(kek: KeyHandle): KeyHandle {
  return kek.withEnvelope({
    dataKeySealBatch: async (k, w, p, a) => k.dataKeySealBatch(w, p, a),
    dataKeyOpenBatch: async (k, w, wa, s, a) => k.dataKeyOpenBatch(w, wa, s, a),
  });
}

const ctx = (n: number) => Array.from({ length: n }, (_, i) => Buffer.from(`ctx-${i}`));

for (const name of BACKENDS) {
  for (const engine of [false, true]) {
    describe(`dataKeyOpenSplice [${name}${engine ? ', envelope engine' : ''}]`, { skip: skipFor(name) }, () => {
      const key = () => {
        const k = cryptoOf(name).generateKey();
        return engine ? viaEngine(k) : k;
      };

      it('opens what dataKeySealSplice wrote, each plaintext as its JSON string', async () => {
        const k = key();
        const texts = ['4111 1111', '', 'é✓ \u{1F600}', 'q"b\\s/\b\t\n\f\r\u0000\u001f\u007f'];
        const { body, spans } = sealed(
          k,
          texts.map((t) => Buffer.from(t)),
          ctx(4),
        );
        assert.equal(spans.length, 8);
        const out = await openOf(k, wrapAad, body, spans, ctx(4), heads);
        assert.ok(out);
        assert.equal(out.toString(), `{"a":[${texts.map((t) => JSON.stringify(t)).join(',')}],"n":1}`);
      });

      it('declines (null) when any item falls short', async () => {
        const k = key();
        const { body, spans } = sealed(k, [Buffer.from('one'), Buffer.from('two')], ctx(2));
        const open = (b: Buffer, s: Uint32Array, c: Uint8Array[] = ctx(2), h: typeof heads = heads) =>
          openOf(k, wrapAad, b, s, c, h);
        assert.ok(await open(body, spans));
        assert.equal(await open(body, spans, [ctx(2)[0] as Buffer, Buffer.from('other')]), null, 'another context');
        assert.equal(
          await open(body, spans, ctx(2), { ...heads, header: Buffer.from('HDR8') }),
          null,
          'another header',
        );
        assert.equal(
          await open(body, spans, ctx(2), { ...heads, textHead: Buffer.from('okcm:2:') }),
          null,
          'another prefix',
        );
        assert.equal(await openOf(k, Buffer.from('other'), body, spans, ctx(2), heads), null, 'another wrap AAD');
        const [s1, e1] = [spans[2] as number, spans[3] as number];
        const narrowed = new Uint32Array([spans[0] as number, spans[1] as number, s1 + 1, e1]);
        assert.equal(await open(body, narrowed), null, 'a span that is not the whole string');
        // Every character of the second envelope's text replaced in turn.
        for (let i = s1 + 8; i < e1 - 1; i += 5) {
          const t = Buffer.from(body);
          t[i] = t[i] === 0x41 ? 0x42 : 0x41;
          assert.equal(await open(t, spans), null, `tampered at ${i}`);
        }
        // A last character whose unused bits are set: the same bytes, not canonical.
        const last = e1 - 2;
        const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
        const textLen = e1 - 1 - (s1 + 8);
        if (textLen % 4 !== 0) {
          const t = Buffer.from(body);
          const v = alphabet.indexOf(String.fromCharCode(t[last] as number));
          t[last] = alphabet.charCodeAt(v | 1);
          if (t[last] !== body[last]) assert.equal(await open(t, spans), null, 'non-canonical base64url');
        }
        // Not UTF-8 inside.
        const bad = sealed(k, [Buffer.from([0xff, 0xfe])], ctx(1));
        assert.equal(await openOf(k, wrapAad, bad.body, bad.spans, ctx(1), heads), null, 'not UTF-8');
      });

      it('refuses bad spans and contexts; checks the key first', async () => {
        const k = key();
        const { body, spans } = sealed(k, [Buffer.from('x')], ctx(1));
        const bad: [Uint32Array, Buffer[]][] = [
          [new Uint32Array([]), []],
          [new Uint32Array([1]), ctx(1)],
          [new Uint32Array([0, body.length + 1]), ctx(1)],
          [new Uint32Array([5, 4]), ctx(1)],
          [new Uint32Array([4, 8, 0, 2]), ctx(2)],
          [new Uint32Array([0, 6, 5, 8]), ctx(2)],
          [spans, []],
          [spans, [Buffer.alloc(4097)]],
        ];
        for (const [s, c] of bad) await rejectsCode(() => openOf(k, wrapAad, body, s, c, heads), 'invalid_argument');
        const plain = cryptoOf(name).generateKey();
        plain.destroy();
        await rejectsCode(() => openOf(plain, wrapAad, body, new Uint32Array([]), [], heads), 'key_destroyed');
      });
    });
  }
}

describe('dataKeyOpenSplice: native and node answer alike', {
  skip: IN_CI ? false : (nativeLoadError() ?? false),
}, () => {
  it('items sealed by one backend open identically in the other', () => {
    const native = cryptoOf('native');
    const node = cryptoOf('node');
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 40 }), { minLength: 1, maxLength: 6 }),
        fc.nat(),
        fc.boolean(),
        (values, flip, corrupt) => {
          // One key material in both backends: imported from the same bytes.
          const material = Buffer.from(Array.from({ length: 32 }, (_, i) => (i * 7 + flip) & 0xff));
          const a = native.importKey(Buffer.from(material));
          const b = node.importKey(Buffer.from(material));
          const { body, spans } = sealed(
            a,
            values.map((v) => Buffer.from(v)),
            ctx(values.length),
          );
          const input = Buffer.from(body);
          if (corrupt) {
            const i = (spans[0] as number) + 8 + (flip % ((spans[1] as number) - (spans[0] as number) - 9));
            input[i] = input[i] === 0x41 ? 0x42 : 0x41;
          }
          const fromNative = a.dataKeyOpenSplice(wrapAad, input, spans, ctx(values.length), heads);
          const fromNode = b.dataKeyOpenSplice(wrapAad, input, spans, ctx(values.length), heads);
          assert.deepEqual(fromNode, fromNative);
          if (!corrupt)
            assert.equal(
              fromNative !== null,
              values.every((v) => isUtf8(v)),
              'opens exactly when all are UTF-8',
            );
        },
      ),
      { numRuns: 80 },
    );
  });
});
