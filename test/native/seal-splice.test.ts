/**
 * dataKeySealSplice on both backends and through an envelope engine: each
 * value span becomes `"` ‖ textHead ‖ base64url(header ‖ wrapped ‖ sealed) ‖
 * `"`, every other byte is the body's, the items open with dataKeyOpenBatch
 * under their AADs, and bad spans or contexts are refused alike.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { type KeyHandle, WRAPPED_KEY_BYTES } from '../../native/index.ts';
import { BACKENDS, cryptoOf, openOf, pattern, rejectsCode, sealOf, skipFor, throwsCode } from './backends.ts';

const wrapAad = Buffer.from('tenant-1/dek');
const heads = { aadHead: Buffer.from('domain\0HDR'), textHead: Buffer.from('okcm:1:'), header: Buffer.from('HDR') };

function aadOf(context: Uint8Array): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(context.length);
  return Buffer.concat([heads.aadHead, len, context]);
}

/**
 * Splits `out` back into the body's bytes and the envelopes: `values[i]` is
 * [start, end) of item i in the body. Returns the envelope texts, asserting
 * every byte outside the values is the body's.
 */
function envelopesOf(out: Buffer, body: Buffer, values: [number, number][]): string[] {
  const texts: string[] = [];
  let at = 0;
  let from = 0;
  for (const [start, end] of values) {
    assert.deepEqual(out.subarray(at, at + start - from), body.subarray(from, start));
    at += start - from;
    assert.equal(out[at], 0x22);
    const close = out.indexOf(0x22, at + 1);
    texts.push(out.toString('latin1', at + 1, close));
    at = close + 1;
    from = end;
  }
  assert.deepEqual(out.subarray(at), body.subarray(from));
  return texts;
}

function openAll(kek: KeyHandle, texts: string[], contexts: Uint8Array[]): (Buffer | null)[] {
  const blobs = texts.map((t) => {
    assert.ok(t.startsWith('okcm:1:'), t);
    const b64 = t.slice('okcm:1:'.length);
    assert.match(b64, /^[A-Za-z0-9_-]*$/);
    const bytes = Buffer.from(b64, 'base64url');
    assert.equal(bytes.toString('base64url'), b64, 'canonical base64url');
    assert.deepEqual(bytes.subarray(0, 3), heads.header);
    return { wrapped: bytes.subarray(3, 3 + WRAPPED_KEY_BYTES), sealed: bytes.subarray(3 + WRAPPED_KEY_BYTES) };
  });
  for (const b of blobs) assert.deepEqual(b.wrapped, blobs[0]?.wrapped, 'one data key per call');
  return kek.dataKeyOpenBatch(
    blobs.map((b) => b.wrapped),
    blobs.map(() => wrapAad),
    blobs.map((b) => b.sealed),
    contexts.map(aadOf),
  );
}

/** A KeyHandle whose envelope engine is the plain handle's own batch calls (as the pkcs11 backend plugs in). */
function viaEngine(kek: KeyHandle): KeyHandle {
  return kek.withEnvelope({
    dataKeySealBatch: async (k, w, p, a) => k.dataKeySealBatch(w, p, a),
    dataKeyOpenBatch: async (k, w, wa, s, a) => k.dataKeyOpenBatch(w, wa, s, a),
  });
}

for (const name of BACKENDS) {
  for (const engine of [false, true]) {
    const label = `${name}${engine ? ', envelope engine' : ''}`;
    describe(`dataKeySealSplice [${label}]`, { skip: skipFor(name) }, () => {
      const key = () => {
        const k = cryptoOf(name).generateKey();
        return { plain: k, used: engine ? viaEngine(k) : k };
      };

      it('replaces each value, keeps every other byte, and the items open', async () => {
        const { plain, used } = key();
        const body = Buffer.from('{"a":"card 4111","n":[1,2],"b":"","c":12.50,"d":"é✓"}');
        const at = (s: string): [number, number] => {
          const i = body.indexOf(s);
          return [i, i + Buffer.byteLength(s)];
        };
        const values = [at('"card 4111"'), at('""'), at('12.50'), at('"é✓"')];
        // Strings seal their inner bytes; the number seals its text.
        const pts = values.map(([s, e], i) => (i === 2 ? [s, e] : [s + 1, e - 1]) as [number, number]);
        const spans = new Uint32Array(values.flatMap(([s, e], i) => [s, e, ...(pts[i] as [number, number])]));
        const contexts = [Buffer.from('ctx-a'), Buffer.alloc(0), Buffer.from('ctx-c'), pattern(300, 1)];
        const out = await sealOf(used, wrapAad, body, spans, contexts, heads);
        const opened = openAll(plain, envelopesOf(out, body, values), contexts);
        assert.deepEqual(
          opened,
          pts.map(([s, e]) => body.subarray(s, e)),
        );
        // Contexts are bound: item 0 under item 2's context fails.
        const texts = envelopesOf(out, body, values);
        assert.equal(openAll(plain, [texts[0] as string], [contexts[2] as Buffer])[0], null);
        // A fresh data key per call.
        const again = await sealOf(used, wrapAad, body, spans, contexts, heads);
        assert.notDeepEqual(envelopesOf(again, body, values)[0], texts[0]);
      });

      it('random bodies and spans round-trip', async () => {
        const { plain, used } = key();
        await fc.assert(
          fc.asyncProperty(
            fc.uint8Array({ maxLength: 200 }),
            fc.array(fc.nat(), { maxLength: 40 }),
            async (bytes, cuts) => {
              const body = Buffer.from(bytes);
              // Sorted cut points make ordered, non-overlapping value spans; the plaintext is the value itself.
              const points = cuts.map((c) => c % (body.length + 1)).sort((x, y) => x - y);
              const values: [number, number][] = [];
              for (let i = 0; i + 1 < points.length; i += 2)
                values.push([points[i] as number, points[i + 1] as number]);
              if (values.length === 0) return;
              const spans = new Uint32Array(values.flatMap(([s, e]) => [s, e, s, e]));
              const contexts = values.map((_, i) => pattern(i % 5, i));
              const out = await sealOf(used, wrapAad, body, spans, contexts, heads);
              assert.deepEqual(
                openAll(plain, envelopesOf(out, body, values), contexts),
                values.map(([s, e]) => body.subarray(s, e)),
              );
            },
          ),
          { numRuns: 60 },
        );
      });

      it('refuses bad spans and contexts before sealing', async () => {
        const { used } = key();
        const body = Buffer.from('"abc" "de"');
        const ctx = [Buffer.alloc(0)];
        const bad: [Uint32Array, Uint8Array[]][] = [
          [new Uint32Array([]), []],
          [new Uint32Array([0, 5, 1]), ctx],
          [new Uint32Array([0, 11, 1, 4]), ctx], // past the end
          [new Uint32Array([5, 0, 1, 4]), ctx], // reversed
          [new Uint32Array([0, 5, 4, 1]), ctx],
          [new Uint32Array([6, 10, 7, 9, 0, 5, 1, 4]), [Buffer.alloc(0), Buffer.alloc(0)]], // out of order
          [new Uint32Array([0, 5, 1, 4, 4, 10, 7, 9]), [Buffer.alloc(0), Buffer.alloc(0)]], // overlap
          [new Uint32Array([0, 5, 1, 4]), []],
          [new Uint32Array([0, 5, 1, 4]), [Buffer.alloc(4097)]],
        ];
        for (const [spans, contexts] of bad) {
          await rejectsCode(() => sealOf(used, wrapAad, body, spans, contexts, heads), 'invalid_argument');
        }
        const big = Buffer.alloc((1 << 20) + 1, 0x78);
        await rejectsCode(
          () => sealOf(used, wrapAad, big, new Uint32Array([0, big.length, 0, big.length]), ctx, heads),
          'invalid_argument',
          'a plaintext over 1 MiB (its envelope would not open)',
        );
        const ok = await sealOf(used, wrapAad, body, new Uint32Array([0, 5, 1, 4]), [Buffer.alloc(4096)], heads);
        assert.ok(ok.toString('latin1').endsWith('" "de"'));
      });

      it('refuses byte arguments that are not bytes', async () => {
        const { used } = key();
        const body = Buffer.from('"abc"');
        const spans = new Uint32Array([0, 5, 1, 4]);
        const ctx = [Buffer.alloc(0)];
        const asText = (v: Uint8Array) => v.toString() as unknown as Uint8Array;
        for (const name of ['aadHead', 'textHead', 'header'] as const) {
          await rejectsCode(
            () => sealOf(used, wrapAad, body, spans, ctx, { ...heads, [name]: asText(heads[name]) }),
            'invalid_argument',
            name,
          );
          await rejectsCode(
            () =>
              openOf(used, wrapAad, body, new Uint32Array([0, 5]), ctx, {
                ...heads,
                [name]: asText(heads[name]),
              }),
            'invalid_argument',
            name,
          );
        }
        await rejectsCode(() => sealOf(used, asText(wrapAad), body, spans, ctx, heads), 'invalid_argument', 'wrapAad');
      });

      it('refuses a destroyed key before looking at the other arguments', async () => {
        const { plain, used } = key();
        plain.destroy();
        await rejectsCode(() => sealOf(used, wrapAad, Buffer.alloc(0), new Uint32Array(0), [], heads), 'key_destroyed');
        await rejectsCode(() => openOf(used, wrapAad, Buffer.alloc(0), new Uint32Array(0), [], heads), 'key_destroyed');
        await rejectsCode(
          () => sealOf(used, wrapAad, Buffer.from('"x"'), new Uint32Array([0, 3, 1, 2]), [Buffer.alloc(0)], heads),
          'key_destroyed',
        );
      });
    });
  }
}

describe('dataKeySealSplice / dataKeyOpenSplice [native]: a getter on contexts runs before the body is read', {
  skip: skipFor('native'),
}, () => {
  // Reading `contexts` may run JS that shrinks the body's buffer: the native side must read the
  // body after the contexts, so it sees the new length (and refuses the spans), never freed memory.
  for (const call of ['dataKeySealSplice', 'dataKeyOpenSplice'] as const) {
    it(`${call}: the body shrunk by a getter is refused, not read`, () => {
      const kek = cryptoOf('native').generateKey();
      type Resizable = ArrayBuffer & { resize(n: number): void };
      const Resizable = ArrayBuffer as unknown as new (n: number, o: { maxByteLength: number }) => Resizable;
      const ab = new Resizable(4096, { maxByteLength: 4096 });
      const body = new Uint8Array(ab).fill(0x41);
      const contexts: Uint8Array[] = [];
      Object.defineProperty(contexts, 0, {
        get() {
          ab.resize(0);
          return Buffer.alloc(0);
        },
        enumerable: true,
      });
      Object.defineProperty(contexts, 'length', { value: 1 });
      if (call === 'dataKeySealSplice') {
        throwsCode(
          () => kek.dataKeySealSplice(wrapAad, body, new Uint32Array([0, 3, 0, 4096]), contexts, heads),
          'invalid_argument',
        );
      } else {
        throwsCode(
          () => kek.dataKeyOpenSplice(wrapAad, body, new Uint32Array([0, 4096]), contexts, heads),
          'invalid_argument',
        );
      }
      assert.equal(body.length, 0);
    });
  }
});
