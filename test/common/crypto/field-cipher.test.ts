/** Field encryption end to end on both backends: binding to tenant, key version and context; per-item results. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { decryptFields, encryptFields } from '../../../common/src/crypto/field-cipher.ts';
import { KcmError } from '../../../common/src/errors.ts';
import { MAX_FIELD_PLAINTEXT, parseEnvelope } from '../../../common/src/format/envelope.ts';
import type { KeyHandle } from '../../../native/index.ts';
import { BACKENDS, cryptoOf, skipFor } from '../../native/backends.ts';

const ref = { tenant: 'acme', keyId: 'orders', keyVersion: 2 };
const ctx = (s: string) => Buffer.from(s);

for (const name of BACKENDS) {
  describe(`field cipher on the ${name} backend`, { skip: skipFor(name) }, () => {
    const crypto = () => cryptoOf(name);
    const only = (key: KeyHandle) => () => key;

    it('decrypt(encrypt(x)) == x for any fields and contexts', () => {
      const l3 = crypto().generateKey();
      fc.assert(
        fc.property(
          fc.array(fc.tuple(fc.uint8Array({ maxLength: 200 }), fc.uint8Array({ maxLength: 64 })), { maxLength: 20 }),
          (items) => {
            const pts = items.map(([p]) => p);
            const ctxs = items.map(([, c]) => c);
            const cts = encryptFields(l3, ref, pts, ctxs);
            const out = decryptFields('acme', only(l3), cts, ctxs);
            assert.deepEqual(
              out.map((r) => (r.ok ? Buffer.from(r.plaintext) : r.reason)),
              pts.map((p) => Buffer.from(p)),
            );
          },
        ),
        { numRuns: 60 },
      );
    });

    it('one request shares one wrapped data key; every field has its own nonce', () => {
      const l3 = crypto().generateKey();
      const before = l3.info().encryptions;
      const cts = encryptFields(l3, ref, [ctx('a'), ctx('a')], [ctx('p#/x'), ctx('p#/x')]);
      assert.equal(l3.info().encryptions - before, 1, 'one wrap under L3 per call');
      const [a, b] = cts.map(parseEnvelope);
      assert.ok(a && b);
      assert.deepEqual(Buffer.from(a.wrappedKey), Buffer.from(b.wrappedKey));
      assert.notDeepEqual(Buffer.from(a.sealed.subarray(0, 12)), Buffer.from(b.sealed.subarray(0, 12)));
    });

    it('key references are validated on every call, cached bytes or not', () => {
      const l3 = crypto().generateKey();
      const valid = { tenant: 'acme', keyId: 'cache', keyVersion: 7 };
      encryptFields(l3, valid, [ctx('x')], [ctx('c')]); // its header and wrap AAD are now cached
      const loose = { ...valid, keyVersion: '7' as unknown as number };
      assert.throws(() => encryptFields(l3, loose, [ctx('x')], [ctx('c')]), KcmError);
      assert.throws(() => encryptFields(l3, { ...valid, keyVersion: 7.5 }, [ctx('x')], [ctx('c')]), KcmError);
      // Length-prefixed cache ids: these two never share an entry.
      const a = encryptFields(l3, { tenant: 'ab', keyId: 'c1', keyVersion: 1 }, [ctx('x')], [ctx('c')]);
      const b = encryptFields(l3, { tenant: 'a', keyId: 'bc1', keyVersion: 1 }, [ctx('x')], [ctx('c')]);
      assert.equal(parseEnvelope(a[0] as string).tenant, 'ab');
      assert.equal(parseEnvelope(b[0] as string).tenant, 'a');
    });

    it('a ciphertext moved to another field, tenant or key version does not decrypt', () => {
      const l3 = crypto().generateKey();
      const [ct] = encryptFields(l3, ref, [ctx('secret')], [ctx('policy:p#/card')]);
      assert.ok(ct);
      const [moved] = decryptFields('acme', only(l3), [ct], [ctx('policy:p#/cvv')]);
      assert.deepEqual(moved, { ok: false, reason: 'auth_failed' });
      const [tenant] = decryptFields('globex', only(l3), [ct], [ctx('policy:p#/card')]);
      assert.deepEqual(tenant, { ok: false, reason: 'wrong_tenant' });
      const [unknown] = decryptFields('acme', () => undefined, [ct], [ctx('policy:p#/card')]);
      assert.deepEqual(unknown, { ok: false, reason: 'unknown_key' });
      const other = crypto().generateKey();
      const [wrongKey] = decryptFields('acme', only(other), [ct], [ctx('policy:p#/card')]);
      assert.deepEqual(wrongKey, { ok: false, reason: 'auth_failed' });
    });

    it('flipping any character of a ciphertext makes it fail, never decrypt to something else', () => {
      const l3 = crypto().generateKey();
      const [ct] = encryptFields(l3, ref, [ctx('4111 1111 1111 1111')], [ctx('c')]);
      assert.ok(ct);
      const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
      let failures = 0;
      for (let i = 0; i < ct.length; i++) {
        const c = ct[i] as string;
        const replacement = i < 7 ? (c === 'x' ? 'y' : 'x') : alphabet[(alphabet.indexOf(c) + 1) % 64];
        const bad = ct.slice(0, i) + replacement + ct.slice(i + 1);
        const [r] = decryptFields('acme', only(l3), [bad], [ctx('c')]);
        assert.ok(r && !r.ok, `position ${i} still decrypts`);
        failures++;
      }
      assert.equal(failures, ct.length);
    });

    it('bad items fail alone; the rest of the batch decrypts', () => {
      const l3 = crypto().generateKey();
      const cts = encryptFields(l3, ref, [ctx('one'), ctx('two'), ctx('three')], [ctx('1'), ctx('2'), ctx('3')]);
      const mixed = [cts[0] as string, 'garbage', cts[2] as string, 'okcm:9:AAAA'];
      const out = decryptFields('acme', only(l3), mixed, [ctx('1'), ctx('2'), ctx('3'), ctx('4')]);
      assert.deepEqual(
        out.map((r) => (r.ok ? r.plaintext.toString() : r.reason)),
        ['one', 'format_prefix', 'three', 'format_version'],
      );
    });

    it('items under several key versions are opened per version', () => {
      const v1 = crypto().generateKey();
      const v2 = crypto().generateKey();
      const [a] = encryptFields(v1, { ...ref, keyVersion: 1 }, [ctx('old')], [ctx('x')]);
      const [b] = encryptFields(v2, { ...ref, keyVersion: 2 }, [ctx('new')], [ctx('x')]);
      const out = decryptFields(
        'acme',
        (r) => (r.keyVersion === 1 ? v1 : v2),
        [b as string, a as string],
        [ctx('x'), ctx('x')],
      );
      assert.deepEqual(
        out.map((r) => (r.ok ? r.plaintext.toString() : r.reason)),
        ['new', 'old'],
      );
    });

    it('refuses oversize plaintexts and contexts with typed errors', () => {
      const l3 = crypto().generateKey();
      assert.throws(
        () => encryptFields(l3, ref, [Buffer.alloc(MAX_FIELD_PLAINTEXT + 1)], [ctx('')]),
        (e) => e instanceof KcmError && e.code === 'plaintext_too_large',
      );
      assert.throws(
        () => encryptFields(l3, ref, [ctx('x')], [Buffer.alloc(5000)]),
        (e) => e instanceof KcmError && e.code === 'invalid_context',
      );
      assert.throws(
        () => encryptFields(l3, { ...ref, tenant: 'bad tenant' }, [ctx('x')], [ctx('')]),
        (e) => e instanceof KcmError && e.code === 'format_header',
      );
    });
  });
}
