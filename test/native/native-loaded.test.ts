/**
 * Which backend a process gets (native/ts/load.ts). Under CI=true the native
 * binary must load and be the default: CI tests the Rust module, never the
 * silent node:crypto fallback.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { cryptoFor, defaultCrypto } from '../../native/index.ts';
import { backendByName, loadNative, nativeBinaryPath, selectBackend } from '../../native/ts/load.ts';
import { nodeBackend } from '../../native/ts/node-backend.ts';
import { IN_CI, nativeLoadError } from './backends.ts';

const loadError = nativeLoadError();
const nativeSkip = loadError === undefined || IN_CI ? false : `native module not built: ${loadError}`;

describe('native backend selection', () => {
  it('the binary path is native/openkcm-native.<platform>-<arch>[-gnu].node', () => {
    const abi = process.platform === 'linux' ? '-gnu' : '';
    assert.ok(nativeBinaryPath().endsWith(`/native/openkcm-native.${process.platform}-${process.arch}${abi}.node`));
    assert.equal(loadNative().path, nativeBinaryPath());
  });

  it('the native module loads and is the default backend', { skip: nativeSkip }, () => {
    const native = loadNative();
    assert.ok(native.backend, `CI=${process.env.CI ?? ''}: native module did not load: ${native.error}`);
    assert.equal(native.error, undefined);
    assert.equal(native.backend.name, 'native');
    assert.equal(typeof native.backend.processHarden, 'function');
    const selected = selectBackend({});
    assert.equal(selected.name, 'native');
    assert.equal(selected, native.backend);
    assert.equal(selectBackend({ KCM_CRYPTO_BACKEND: 'native' }), native.backend);
    assert.equal(backendByName('native'), native.backend);
    assert.equal(cryptoFor('native').backend, native.backend);
    const status = native.backend.status();
    assert.equal(status.name, 'native');
    if (process.getuid?.() === 0) assert.equal(status.memoryLockable, true, status.memoryLockError);
  });

  it('without the binary: native is an error, the default falls back to node with a warning', {
    skip: loadError === undefined ? 'the native module is loaded' : false,
  }, async () => {
    assert.ok(!IN_CI, 'CI=true must not run on the node:crypto fallback');
    assert.throws(() => backendByName('native'), /native crypto backend unavailable/);
    assert.throws(() => selectBackend({ KCM_CRYPTO_BACKEND: 'native' }), /native crypto backend unavailable/);
    assert.throws(() => cryptoFor('native'), /native crypto backend unavailable/);
    const warning = once(process, 'warning', { signal: AbortSignal.timeout(5000) });
    assert.equal(selectBackend({}), nodeBackend);
    const [w] = (await warning) as [Error & { code?: string }];
    assert.equal(w.code, 'KCM_CRYPTO_FALLBACK');
    assert.match(w.message, /falling back to node:crypto/);
  });

  it('KCM_CRYPTO_BACKEND=node gives node; bogus values throw', () => {
    assert.equal(selectBackend({ KCM_CRYPTO_BACKEND: 'node' }), nodeBackend);
    assert.equal(selectBackend({ KCM_CRYPTO_BACKEND: ' node ' }), nodeBackend);
    assert.equal(selectBackend({ KCM_CRYPTO_BACKEND: 'node' }).name, 'node');
    for (const bogus of ['bogus', 'NODE', 'Native', 'openssl', 'node,native']) {
      assert.throws(
        () => selectBackend({ KCM_CRYPTO_BACKEND: bogus }),
        /KCM_CRYPTO_BACKEND must be "native" or "node"/,
      );
    }
    assert.equal(cryptoFor('node').backend, nodeBackend);
    assert.equal(cryptoFor('node'), cryptoFor('node'), 'cached per backend');
  });

  it('defaultCrypto follows the process environment', () => {
    const expected = process.env.KCM_CRYPTO_BACKEND?.trim() || (loadError === undefined ? 'native' : 'node');
    assert.equal(defaultCrypto().backend.name, expected);
  });
});
