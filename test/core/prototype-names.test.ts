/**
 * Names that are members of Object.prototype (`constructor`, `toString`,
 * `__proto__`) are data like any other name where the Core reads names from
 * outside: a KMS service's error type, a key's settings, the L1 provider
 * configuration.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_SERVICE_SETTINGS, serviceSettings } from '../../core/src/keys/l3/key-settings.ts';
import { l1ProvidersConfig } from '../../core/src/l1/l1-registry.ts';
import { kmsSealError } from '../../core/src/seal/aws-kms/kms-errors.ts';

describe('names that are members of Object.prototype', () => {
  it('a KMS error type named like an Object member is unknown: its kind comes from the status', () => {
    for (const name of ['constructor', 'toString', '__proto__']) {
      const e = kmsSealError({ name, message: 'm', $metadata: { httpStatusCode: 503 } }, 'Decrypt');
      assert.equal(e.kind, 'unavailable', name);
      assert.ok(!e.message.includes('native code'), `${name}: no function text in the message`);
    }
    assert.equal(kmsSealError({ name: 'ThrottlingException', message: 'm' }, 'Decrypt').kind, 'rate_limited');
  });

  it('a key setting named like an Object member is not a setting', () => {
    for (const k of ['constructor', 'toString', 'hasOwnProperty']) {
      assert.throws(() => serviceSettings({ [k]: 1 }, DEFAULT_SERVICE_SETTINGS), { code: 'bad_request' }, k);
    }
    assert.throws(() => serviceSettings(JSON.parse('{"__proto__": 1}')), { code: 'bad_request' });
  });

  it('an L1 provider named `__proto__` or `constructor` is kept like any other name', () => {
    const out = l1ProvidersConfig(JSON.parse('{"__proto__": {"type": "dev"}, "constructor": {"type": "dev"}}'), true);
    assert.deepEqual(Object.keys(out).sort(), ['__proto__', 'constructor']);
    assert.equal(Object.getPrototypeOf(out), null);
  });
});
