/** The lease transport's encodings (SPEC.md §11) and argument checks. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  LEASE_SALT_BYTES,
  leaseKey,
  leaseKeyInfo,
  leaseL3Ref,
  leaseWrapAad,
} from '../../../common/src/crypto/lease-transport.ts';
import { l3Ref } from '../../../core/src/keys/key-names.ts';
import { defaultCrypto } from '../../../native/index.ts';

describe('lease transport', () => {
  it('names the L3 key as the Core does', () => {
    assert.deepEqual(leaseL3Ref('acme', 'orders', 7), l3Ref('acme', 'orders', 7));
  });

  it('encodes the HKDF info and the wrap AAD byte by byte', () => {
    const info = leaseKeyInfo('edge-a', 'acme', 'orders');
    const expected = Buffer.concat([
      Buffer.from('okcm/edge-lease/v1\0'),
      Buffer.from([0, 6]),
      Buffer.from('edge-a'),
      Buffer.from([4]),
      Buffer.from('acme'),
      Buffer.from([6]),
      Buffer.from('orders'),
    ]);
    assert.deepEqual(info, expected);
    const aad = leaseWrapAad('acme', 'orders', 2);
    assert.deepEqual(
      aad,
      Buffer.concat([
        Buffer.from('okcm/lease-wrap/v1\0'),
        Buffer.from([4, 4]),
        Buffer.from('acme'),
        Buffer.from([6]),
        Buffer.from('orders'),
        Buffer.from([0, 0, 0, 2]),
      ]),
    );
    // Length prefixes keep adjacent fields apart.
    assert.notDeepEqual(leaseKeyInfo('edge-a', 'acmeo', 'rders'), info);
  });

  it('refuses a bad salt, edge id or key name', () => {
    const k = defaultCrypto().generateKey();
    try {
      assert.throws(() => leaseKey(k, Buffer.alloc(LEASE_SALT_BYTES - 1), 'e', 't', 's'), { code: 'bad_request' });
      assert.throws(() => leaseKeyInfo('', 't', 's'), { code: 'bad_request' });
      assert.throws(() => leaseKeyInfo('x'.repeat(257), 't', 's'), { code: 'bad_request' });
      assert.throws(() => leaseWrapAad('bad/tenant', 's', 1), { code: 'format_header' });
      assert.throws(() => leaseWrapAad('t', 's', 0), { code: 'format_header' });
      const a = leaseKey(k, Buffer.alloc(LEASE_SALT_BYTES, 1), 'e', 't', 's');
      const b = leaseKey(k, Buffer.alloc(LEASE_SALT_BYTES, 2), 'e', 't', 's');
      const inner = defaultCrypto().generateKey();
      const wrapped = a.wrap(inner, leaseWrapAad('t', 's', 1));
      assert.throws(() => b.unwrap(wrapped, leaseWrapAad('t', 's', 1)), { code: 'decryption_failed' });
      a.unwrap(wrapped, leaseWrapAad('t', 's', 1)).destroy();
      for (const h of [a, b, inner]) h.destroy();
    } finally {
      k.destroy();
    }
  });
});
