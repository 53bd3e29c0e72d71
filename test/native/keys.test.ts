/**
 * Key handles on both backends: import/generate, info(), destroy, misuse codes,
 * and the guarantee that key bytes never come back out of a KeyHandle.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';
import { Crypto, type KeyHandle } from '../../native/index.ts';
import type { RawKeyRef } from '../../native/ts/backend.ts';
import { BACKENDS, cryptoOf, pattern, skipFor, throwsBackendCode, throwsCode } from './backends.ts';

const empty = new Uint8Array(0);

/** Every member of KeyHandle.prototype, as documented in native/index.ts. None returns key bytes. */
const KEY_HANDLE_MEMBERS = [
  'asyncEnvelope',
  'backend',
  'constructor',
  'dataKeyForTransport',
  'dataKeyOpenBatch',
  'dataKeyOpenBatchAsync',
  'dataKeyOpenSplice',
  'dataKeyOpenSpliceAsync',
  'dataKeyRewrapForTransport',
  'dataKeySealBatch',
  'dataKeySealBatchAsync',
  'dataKeySealSplice',
  'dataKeySealSpliceAsync',
  'derive',
  'destroy',
  'hmac',
  'info',
  'live',
  'nativeHandle',
  'open',
  'openBatch',
  'plain',
  'refFor',
  'seal',
  'sealBatch',
  'sealInto',
  'splitRaw',
  'unwrap',
  'withEnvelope',
  'wrap',
];
const CRYPTO_MEMBERS = ['combineRaw', 'constructor', 'generateKey', 'generateTransportKey', 'importKey', 'refOf'];
/**
 * The CryptoBackend contract of native/ts/backend.ts; native also has processHarden (ts/load.ts).
 * insecureExportKey is the one member that returns key bytes: test-only, off unless
 * KCM_INSECURE_KEY_EXPORT=tests (test/core/security/no-plaintext-at-rest.test.ts).
 */
const BACKEND_MEMBERS = [
  'dataKeyForTransport',
  'dataKeyOpenBatch',
  'dataKeyOpenSplice',
  'dataKeyRewrapForTransport',
  'dataKeySealBatch',
  'dataKeySealSplice',
  'deriveKey',
  'hmacSha256',
  'insecureExportKey',
  'keyDestroy',
  'keyGenerate',
  'keyImport',
  'keyInfo',
  'keyLive',
  'name',
  'open',
  'openBatch',
  'seal',
  'sealBatch',
  'sealInto',
  'shamirCombine',
  'shamirSplit',
  'status',
  'transportKeyGenerate',
  'unwrapKey',
  'wrapKey',
];

/** Calls every KeyHandle operation that returns bytes or handles, and returns what came out. */
function everyOutput(key: KeyHandle, crypto: Crypto): Uint8Array[] {
  const other = crypto.generateKey();
  const spki = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'der' });
  const transport = crypto.generateTransportKey(spki).key;
  const out: Uint8Array[] = [
    key.seal(empty, empty),
    key.seal(pattern(64), pattern(4)),
    ...key.sealBatch([empty, pattern(32)], [empty, empty]),
    key.wrap(other, empty),
    other.wrap(key, empty),
    key.hmac(empty),
    key.hmac(pattern(32)),
    ...key.splitRaw(2, 3),
    ...Object.values(key.dataKeySealBatch(empty, [empty], [empty])).flat(),
    ...Object.values(key.dataKeyForTransport(transport, empty)),
    ...key
      .dataKeyRewrapForTransport(transport, [key.dataKeyForTransport(transport, empty).wrappedKey], [empty])
      .filter((b): b is Buffer => b !== null),
    Buffer.from(JSON.stringify(key.info())),
    Buffer.from(JSON.stringify(key)),
    Buffer.from(String(key.backend)),
  ];
  return out;
}

for (const name of BACKENDS) {
  describe(`keys [${name}]`, { skip: skipFor(name) }, () => {
    it('importKey zero-fills the caller buffer and the key works', () => {
      const crypto = cryptoOf(name);
      const bytes = pattern(32);
      const key = crypto.importKey(bytes);
      assert.deepEqual(bytes, Buffer.alloc(32), 'input must be zeroed');
      const u8 = new Uint8Array(pattern(32));
      crypto.importKey(u8);
      assert.deepEqual(u8, new Uint8Array(32), 'plain Uint8Array input must be zeroed');
      const sealed = key.seal(pattern(5), empty);
      assert.deepEqual(crypto.importKey(pattern(32)).open(sealed, empty), pattern(5));
    });

    it('importKey of a length other than 32 throws invalid_key_length', () => {
      const crypto = cryptoOf(name);
      for (const n of [0, 1, 16, 24, 31, 33, 64]) {
        throwsCode(() => crypto.importKey(pattern(n)), 'invalid_key_length', `${n} bytes`);
      }
      throwsCode(() => crypto.importKey('x'.repeat(32) as unknown as Uint8Array), 'invalid_argument', 'string');
    });

    it('info(): increasing ids, locked flag, fresh counters', () => {
      const crypto = cryptoOf(name);
      const a = crypto.generateKey().info();
      const b = crypto.importKey(pattern(32)).info();
      assert.ok(Number.isInteger(a.id) && a.id >= 1, `id ${a.id}`);
      assert.ok(b.id > a.id, `ids must increase: ${a.id} then ${b.id}`);
      assert.deepEqual(Object.keys(a).sort(), ['destroyed', 'encryptions', 'id', 'locked']);
      assert.equal(a.destroyed, false);
      assert.equal(a.encryptions, 0);
      if (name === 'node') assert.equal(a.locked, false, 'node:crypto cannot lock memory');
      if (name === 'native' && process.getuid?.() === 0) assert.equal(a.locked, true, 'root can always mlock');
      assert.equal(crypto.backend.status().name, name);
    });

    it('info().encryptions counts seal=1, sealBatch=n, wrap=1, dataKeySealBatch=1; open does not count', () => {
      const crypto = cryptoOf(name);
      const k = crypto.generateKey();
      const sealed = k.seal(pattern(3), empty);
      assert.equal(k.info().encryptions, 1, 'seal');
      k.open(sealed, empty);
      k.openBatch([sealed, sealed], [empty, empty]);
      assert.equal(k.info().encryptions, 1, 'open/openBatch do not count');
      k.sealBatch([empty, empty, empty, empty, empty], [empty, empty, empty, empty, empty]);
      assert.equal(k.info().encryptions, 6, 'sealBatch of 5');
      const kek = crypto.generateKey();
      const target = crypto.generateKey();
      kek.wrap(target, empty);
      assert.equal(kek.info().encryptions, 1, 'wrap counts on the kek');
      assert.equal(target.info().encryptions, 0, 'wrap does not count on the target');
      const kek2 = crypto.generateKey();
      kek2.dataKeySealBatch(empty, [empty, empty, empty], [empty, empty, empty]);
      assert.equal(kek2.info().encryptions, 1, 'dataKeySealBatch counts one wrap on the kek');
    });

    it('destroy is idempotent; every later use throws key_destroyed; info shows destroyed', () => {
      const crypto = cryptoOf(name);
      const k = crypto.generateKey();
      const live = crypto.generateKey();
      const sealed = k.seal(pattern(4), empty);
      const wrapped = k.wrap(live, empty);
      const id = k.info().id;
      assert.equal(k.live, true);
      k.destroy();
      k.destroy();
      const after = k.info();
      assert.equal(after.id, id);
      assert.equal(after.destroyed, true);
      assert.equal(k.live, false, 'live says what info().destroyed says');
      assert.equal(k.withEnvelope({} as never).live, false, 'for every handle on the key');
      const uses: [string, () => unknown][] = [
        ['seal', () => k.seal(empty, empty)],
        ['open', () => k.open(sealed, empty)],
        ['sealBatch', () => k.sealBatch([empty], [empty])],
        ['openBatch', () => k.openBatch([sealed], [empty])],
        ['wrap as kek', () => k.wrap(live, empty)],
        ['wrap as target', () => live.wrap(k, empty)],
        ['unwrap', () => k.unwrap(wrapped, empty)],
        ['dataKeySealBatch', () => k.dataKeySealBatch(empty, [], [])],
        ['dataKeyOpenBatch', () => k.dataKeyOpenBatch([], [], [], [])],
        [
          'dataKeyOpenSplice',
          () =>
            k.dataKeyOpenSplice(empty, empty, new Uint32Array(0), [], {
              aadHead: empty,
              textHead: empty,
              header: empty,
            }),
        ],
        // The key is checked before the (here invalid) spans.
        [
          'dataKeySealSplice',
          () =>
            k.dataKeySealSplice(empty, empty, new Uint32Array(0), [], {
              aadHead: empty,
              textHead: empty,
              header: empty,
            }),
        ],
        ['hmac', () => k.hmac(empty)],
        ['derive', () => k.derive(empty, empty)],
        ['splitRaw', () => k.splitRaw(2, 3)],
      ];
      for (const [what, use] of uses) throwsCode(use, 'key_destroyed', what);
      assert.equal(live.info().destroyed, false, 'other keys are untouched');
      assert.equal(live.live, true);
      live.seal(empty, empty);
    });

    it('a non-handle passed to the backend directly throws invalid_key, not a crash', () => {
      const b = cryptoOf(name).backend;
      for (const [label, bogus] of [
        ['{}', {}],
        ['null', null],
        ['42', 42],
        ['frozen null-proto object', Object.freeze(Object.create(null))],
      ] as const) {
        const ref = bogus as unknown as RawKeyRef;
        throwsBackendCode(() => b.seal(ref, empty, empty), 'invalid_key', `seal(${label})`);
        throwsBackendCode(() => b.open(ref, Buffer.alloc(28), empty), 'invalid_key', `open(${label})`);
        throwsBackendCode(() => b.keyInfo(ref), 'invalid_key', `keyInfo(${label})`);
        throwsBackendCode(() => b.keyDestroy(ref), 'invalid_key', `keyDestroy(${label})`);
        throwsBackendCode(() => b.hmacSha256(ref, empty), 'invalid_key', `hmacSha256(${label})`);
        throwsBackendCode(() => b.shamirSplit(ref, 2, 3), 'invalid_key', `shamirSplit(${label})`);
        const kek = b.keyGenerate();
        throwsBackendCode(() => b.wrapKey(kek, ref, empty), 'invalid_key', `wrapKey(target ${label})`);
        b.keyDestroy(kek);
      }
    });

    it('a raw ref of the other backend passed directly throws invalid_key', (t) => {
      const other = name === 'native' ? 'node' : 'native';
      const skip = skipFor(other);
      if (skip) {
        t.skip(skip);
        return;
      }
      const foreign = cryptoOf(other).backend.keyGenerate();
      const b = cryptoOf(name).backend;
      throwsBackendCode(() => b.seal(foreign, empty, empty), 'invalid_key', 'seal');
      throwsBackendCode(() => b.keyInfo(foreign), 'invalid_key', 'keyInfo');
      const kek = b.keyGenerate();
      throwsBackendCode(() => b.wrapKey(kek, foreign, empty), 'invalid_key', 'wrapKey target');
    });

    it('a handle of another Crypto passed through the face throws backend_mismatch', () => {
      const crypto = cryptoOf(name);
      const kek = crypto.generateKey();
      // Same backend, another Crypto instance: the face still refuses to mix handles.
      const foreign = new Crypto(crypto.backend).generateKey();
      throwsCode(() => kek.wrap(foreign, empty), 'backend_mismatch', 'same backend, other Crypto');
      const other = name === 'native' ? 'node' : 'native';
      if (!skipFor(other)) {
        throwsCode(() => kek.wrap(cryptoOf(other).generateKey(), empty), 'backend_mismatch', `${other} handle`);
      }
    });

    it('KeyHandle, Crypto and the backend expose only the documented members', () => {
      const crypto = cryptoOf(name);
      const key = crypto.generateKey();
      assert.deepEqual(Object.getOwnPropertyNames(Object.getPrototypeOf(key)).sort(), KEY_HANDLE_MEMBERS);
      assert.deepEqual(Object.getOwnPropertyNames(key), [], 'no own (public) fields on a handle');
      // The module's own handle, for the native front's copy: on the native backend only, and opaque.
      if (name === 'native') assert.equal(typeof key.nativeHandle, 'object');
      else assert.equal(key.nativeHandle, undefined);
      assert.deepEqual(Object.getOwnPropertyNames(Crypto.prototype).sort(), CRYPTO_MEMBERS);
      // Native only: process hardening, the JSON target scan (no key involved;
      // gateway/src/pipeline/json-targets.ts), the HTTP/1.1 parsers (no key
      // involved; test/native/http1-answer.test.ts, http1-request.test.ts) and
      // the native front (gateway/src/native-front/: frontKey copies a key into
      // the front's own locked slot; nothing returns key bytes).
      const expected =
        name === 'native'
          ? [
              ...BACKEND_MEMBERS,
              'frontDrain',
              'frontForget',
              'frontKey',
              'frontKeyDemand',
              'frontStart',
              'frontStats',
              'frontStop',
              'frontTable',
              'http1Answer',
              'http1RequestHead',
              'jsonTargets',
              'jsonTargetsRules',
              'processHarden',
            ].sort()
          : BACKEND_MEMBERS;
      assert.deepEqual(Object.keys(crypto.backend).sort(), expected, 'a new backend export needs review');
    });

    it('no KeyHandle operation returns the key bytes', () => {
      const crypto = cryptoOf(name);
      const keyBytes = pattern(32, 77);
      const key = crypto.importKey(Buffer.from(keyBytes));
      const outputs = everyOutput(key, crypto);
      assert.ok(outputs.length > 10);
      for (const [i, out] of outputs.entries()) {
        assert.equal(Buffer.from(out).indexOf(keyBytes), -1, `output ${i} contains the key bytes`);
        assert.equal(Buffer.from(out).indexOf(keyBytes.toString('hex')), -1, `output ${i} contains the key hex`);
      }
    });
  });
}
