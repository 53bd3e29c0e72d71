/** The envelope codec alone (SPEC.md §5): round trips, canonical form, bounded strict parsing. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { KcmError } from '../../../common/src/errors.ts';
import {
  encodeFieldHeader,
  type FieldKeyRef,
  fieldAad,
  MAX_CONTEXT_BYTES,
  MAX_ENVELOPE_CHARS,
  MAX_FIELD_PLAINTEXT,
  parseEnvelope,
  serializeEnvelope,
} from '../../../common/src/format/envelope.ts';

const idChar = fc.constantFrom(...'ABCXYZabcxyz0189-._~');
const tenantArb = fc.string({ unit: idChar, minLength: 1, maxLength: 40 });
const keyIdArb = fc.string({ unit: idChar, minLength: 1, maxLength: 64 });
const refArb: fc.Arbitrary<FieldKeyRef> = fc.record({
  tenant: tenantArb,
  keyId: keyIdArb,
  keyVersion: fc.integer({ min: 1, max: 0xffffffff }),
});
const wrappedArb = fc.uint8Array({ minLength: 60, maxLength: 60 });
const sealedArb = fc.uint8Array({ minLength: 28, maxLength: 600 });

function assertFormatError(fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof KcmError, `not a KcmError: ${String(err)}`);
    assert.match(err.code, /^format_/);
    return;
  }
  assert.fail('expected a format error');
}

describe('field envelope codec', () => {
  it('parse(serialise(x)) == x', () => {
    fc.assert(
      fc.property(refArb, wrappedArb, sealedArb, (ref, wrapped, sealed) => {
        const header = encodeFieldHeader(ref);
        const env = parseEnvelope(serializeEnvelope(header, wrapped, sealed));
        assert.deepEqual(
          { tenant: env.tenant, keyId: env.keyId, keyVersion: env.keyVersion },
          { tenant: ref.tenant, keyId: ref.keyId, keyVersion: ref.keyVersion },
        );
        assert.deepEqual(Buffer.from(env.header), header);
        assert.deepEqual(Buffer.from(env.wrappedKey), Buffer.from(wrapped));
        assert.deepEqual(Buffer.from(env.sealed), Buffer.from(sealed));
      }),
    );
  });

  it('serialise(parse(s)) == s: one encoding per envelope', () => {
    fc.assert(
      fc.property(refArb, wrappedArb, sealedArb, (ref, wrapped, sealed) => {
        const s = serializeEnvelope(encodeFieldHeader(ref), wrapped, sealed);
        const env = parseEnvelope(s);
        assert.equal(serializeEnvelope(env.header, env.wrappedKey, env.sealed), s);
      }),
    );
  });

  it('random strings never crash: success or a typed format error', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.string().map((s) => `okcm:1:${s}`),
          fc.base64String().map((s) => `okcm:1:${s}`),
        ),
        (s) => {
          try {
            parseEnvelope(s);
          } catch (err) {
            assert.ok(err instanceof KcmError && err.code.startsWith('format_'), String(err));
          }
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('random bodies never crash', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), (body) => {
        try {
          parseEnvelope(`okcm:1:${Buffer.from(body).toString('base64url')}`);
        } catch (err) {
          assert.ok(err instanceof KcmError && err.code.startsWith('format_'), String(err));
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('every truncation of a valid envelope is refused or parses a shorter ciphertext', () => {
    const s = serializeEnvelope(
      encodeFieldHeader({ tenant: 'acme', keyId: 'k', keyVersion: 3 }),
      Buffer.alloc(60, 1),
      Buffer.alloc(40, 2),
    );
    for (let n = 0; n < s.length; n++) {
      const cut = s.slice(0, n);
      try {
        const env = parseEnvelope(cut);
        assert.ok(env.sealed.length < 40, `truncation to ${n} parsed a full ciphertext`);
      } catch (err) {
        assert.ok(err instanceof KcmError && err.code.startsWith('format_'), `${n}: ${String(err)}`);
      }
    }
  });

  it('refuses a ciphertext over 1 MiB even when the string fits the cap', () => {
    const header = encodeFieldHeader({ tenant: 'a', keyId: 'k', keyVersion: 1 });
    const body = Buffer.concat([header, Buffer.alloc(60), Buffer.alloc(12 + MAX_FIELD_PLAINTEXT + 16 + 1)]);
    const text = `okcm:1:${body.toString('base64url')}`;
    assert.ok(text.length <= MAX_ENVELOPE_CHARS);
    assert.throws(
      () => parseEnvelope(text),
      (e) => e instanceof KcmError && e.code === 'format_length',
    );
  });

  it('rejects non-strings and oversize input before decoding', () => {
    assertFormatError(() => parseEnvelope(42 as unknown as string));
    assertFormatError(() => parseEnvelope(`okcm:1:${'A'.repeat(MAX_ENVELOPE_CHARS)}`));
  });

  it('refuses invalid header fields when encoding', () => {
    const bad: FieldKeyRef[] = [
      { tenant: '', keyId: 'k', keyVersion: 1 },
      { tenant: 'x'.repeat(41), keyId: 'k', keyVersion: 1 },
      { tenant: 'a b', keyId: 'k', keyVersion: 1 },
      { tenant: 'é', keyId: 'k', keyVersion: 1 },
      { tenant: 'a', keyId: 'k'.repeat(65), keyVersion: 1 },
      { tenant: 'a', keyId: 'k', keyVersion: 0 },
      { tenant: 'a', keyId: 'k', keyVersion: 2 ** 32 },
      { tenant: 'a', keyId: 'k', keyVersion: 1.5 },
    ];
    for (const ref of bad) assertFormatError(() => encodeFieldHeader(ref));
  });

  it('binds the context with its length (no ambiguity between header and context)', () => {
    const header = encodeFieldHeader({ tenant: 'a', keyId: 'k', keyVersion: 1 });
    assert.notDeepEqual(fieldAad(header, Buffer.from('ab')), fieldAad(header, Buffer.from('abc')));
    assert.throws(() => fieldAad(header, Buffer.alloc(MAX_CONTEXT_BYTES + 1)), /context/);
  });
});
