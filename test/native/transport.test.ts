/**
 * Key transport to a PKCS#11 token (native/src/transport.rs and the node
 * backend): the RSA-OAEP transport key, the AES-KW (RFC 3394) data-key wraps,
 * and the rule that a transport key does nothing else. Both backends.
 *
 * The key bytes are compared through the test-only export, so the switch is
 * set before the crypto modules load (they read it once, at load).
 */
import assert from 'node:assert/strict';
import { constants, createDecipheriv, generateKeyPairSync, privateDecrypt } from 'node:crypto';
import { describe, it } from 'node:test';

process.env.KCM_INSECURE_KEY_EXPORT = 'tests';
const { BACKENDS, cryptoOf, flipBit, skipFor, throwsCode } = await import('./backends.ts');
const { insecureExportKeyForTests: insecureExportKey } = await import('../../native/ts/insecure-export.ts');
const { TRANSPORT_WRAPPED_KEY_BYTES, WRAPPED_KEY_BYTES } = await import('../../native/index.ts');

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const SPKI = rsa.publicKey.export({ type: 'spki', format: 'der' });
const AAD = Buffer.from('wrap aad');

/** RFC 3394 unwrap with node:crypto (the token's side, in the test). */
function kwUnwrap(kek: Buffer, wrapped: Buffer): Buffer {
  const d = createDecipheriv('id-aes256-wrap', kek, Buffer.from('a6a6a6a6a6a6a6a6', 'hex'));
  return Buffer.concat([d.update(wrapped), d.final()]);
}

for (const name of BACKENDS) {
  describe(`key transport (${name})`, { skip: skipFor(name) }, () => {
    it('generateTransportKey: RSA-OAEP-SHA-1 of the transport key bytes, fresh each time', () => {
      const c = cryptoOf(name);
      const { key, wrapped } = c.generateTransportKey(SPKI);
      assert.equal(wrapped.length, 256);
      const bytes = privateDecrypt(
        { key: rsa.privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' },
        wrapped,
      );
      assert.deepEqual(bytes, insecureExportKey(key));
      assert.notDeepEqual(c.generateTransportKey(SPKI).wrapped, wrapped);
      assert.equal(key.info().destroyed, false);
      key.destroy();
      assert.equal(key.info().destroyed, true);
    });

    it('refuses public keys that are not RSA 2048-8192 SPKI DER', () => {
      const c = cryptoOf(name);
      const small = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({
        type: 'spki',
        format: 'der',
      });
      const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'der' });
      const pkcs1 = rsa.publicKey.export({ type: 'pkcs1', format: 'der' });
      for (const [what, der] of [
        ['1024-bit', small],
        ['EC', ec],
        ['PKCS#1 (not SPKI)', pkcs1],
        ['trailing byte', Buffer.concat([SPKI, Buffer.from([0])])],
        ['truncated', SPKI.subarray(0, SPKI.length - 1)],
        ['empty', Buffer.alloc(0)],
      ] as const) {
        throwsCode(() => c.generateTransportKey(der), 'invalid_argument', what);
      }
    });

    it('dataKeyForTransport: the GCM-wrapped key and the AES-KW blob hold the same fresh data key', () => {
      const c = cryptoOf(name);
      const l3 = c.generateKey();
      const { key: kt } = c.generateTransportKey(SPKI);
      const before = l3.info().encryptions;
      const a = l3.dataKeyForTransport(kt, AAD);
      assert.equal(a.wrappedKey.length, WRAPPED_KEY_BYTES);
      assert.equal(a.transportWrapped.length, TRANSPORT_WRAPPED_KEY_BYTES);
      assert.equal(l3.info().encryptions, before + 1);
      const l4 = insecureExportKey(l3.unwrap(a.wrappedKey, AAD));
      assert.deepEqual(kwUnwrap(insecureExportKey(kt), a.transportWrapped), l4);
      const b = l3.dataKeyForTransport(kt, AAD);
      assert.notDeepEqual(b.transportWrapped, a.transportWrapped);
      // The envelope's data key opens items sealed under it by anyone (here: the same backend's batch format).
      throwsCode(() => l3.unwrap(a.wrappedKey, Buffer.from('other')), 'decryption_failed');
    });

    it('dataKeyRewrapForTransport: per item the same AES-KW blob, or null', () => {
      const c = cryptoOf(name);
      const l3 = c.generateKey();
      const { key: kt } = c.generateTransportKey(SPKI);
      const a = l3.dataKeyForTransport(kt, AAD);
      const b = l3.dataKeyForTransport(kt, AAD);
      const out = l3.dataKeyRewrapForTransport(
        kt,
        [a.wrappedKey, b.wrappedKey, a.wrappedKey, flipBit(a.wrappedKey, 30), a.wrappedKey.subarray(0, 59)],
        [AAD, AAD, Buffer.from('wrong'), AAD, AAD],
      );
      assert.deepEqual(out, [a.transportWrapped, b.transportWrapped, null, null, null]);
      // Under another L3 key nothing opens.
      assert.deepEqual(c.generateKey().dataKeyRewrapForTransport(kt, [a.wrappedKey], [AAD]), [null]);
      throwsCode(() => l3.dataKeyRewrapForTransport(kt, [a.wrappedKey], []), 'invalid_argument');
    });

    it('a transport key only wraps data keys for the token; an ordinary key is no transport key', () => {
      const c = cryptoOf(name);
      const l3 = c.generateKey();
      const { key: kt } = c.generateTransportKey(SPKI);
      throwsCode(() => kt.seal(Buffer.from('x'), AAD), 'invalid_key', 'seal');
      throwsCode(() => kt.wrap(l3, AAD), 'invalid_key', 'wrap under kt');
      throwsCode(() => l3.wrap(kt, AAD), 'invalid_key', 'wrap kt');
      throwsCode(() => kt.hmac(AAD), 'invalid_key', 'hmac');
      throwsCode(() => kt.derive(AAD, AAD), 'invalid_key', 'derive');
      throwsCode(() => kt.splitRaw(2, 3), 'invalid_key', 'split');
      throwsCode(() => kt.dataKeySealBatch(AAD, [], []), 'invalid_key', 'dataKeySealBatch');
      throwsCode(() => kt.dataKeyForTransport(kt, AAD), 'invalid_key', 'as kek');
      throwsCode(() => l3.dataKeyForTransport(c.generateKey(), AAD), 'invalid_key', 'ordinary key as transport');
      throwsCode(() => l3.dataKeyRewrapForTransport(l3, [], []), 'invalid_key', 'ordinary key as transport');
      kt.destroy();
      throwsCode(() => l3.dataKeyForTransport(kt, AAD), 'key_destroyed');
    });
  });
}
