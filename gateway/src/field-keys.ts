/**
 * The policy transform's key provider (pipeline/key-provider.ts) over any
 * {@link GatewayKeys}: the proxy and the direct API share one key cache
 * (the Core lease cache in production, LocalGatewayKeys in development).
 */

import { KcmError } from '../../common/src/errors.ts';
import type { FieldKeyRef } from '../../common/src/format/envelope.ts';
import type { KeyHandle } from '../../native/index.ts';
import {
  decryptionKeyOf,
  encryptionKeyOf,
  type EncryptionKey as GatewayEncryptionKey,
  type GatewayKeys,
} from './gateway-keys.ts';
import { hsmOf } from './hsm/hsm-gateway-keys.ts';
import type { EncryptionKey, FieldKeyProvider } from './pipeline/key-provider.ts';
import type { FieldBackend } from './policy/policy-types.ts';

/** A FieldKeyProvider that can also serve a route's field backend. */
export interface RoutedFieldKeyProvider extends FieldKeyProvider {
  /**
   * This provider for `native` (or absent), or one whose handles run their
   * field AEAD in the gateway's PKCS#11 token for `pkcs11`. Throws
   * `invalid_config` for `pkcs11` when `keys` carries no HSM backend
   * (startGateway refuses such a configuration before any request).
   */
  forBackend(backend: FieldBackend | undefined): FieldKeyProvider;
}

/**
 * A FieldKeyProvider over `keys`, answering cache hits synchronously
 * (GatewayKeys.cachedEncryptionKey / cachedDecryptionKey). `encryptKey`
 * rejects with what `keys.encryptionKey` throws (e.g. 503 `core_unavailable`, 410
 * `tenant_revoked`); `decryptKey` resolves undefined for a version the
 * gateway may not use and rejects only when the key service refuses the
 * whole request (see GatewayKeys.decryptionKey).
 */
export function fieldKeyProvider(keys: GatewayKeys): RoutedFieldKeyProvider {
  const withRef = (tenant: string, keyId: string, k: GatewayEncryptionKey): EncryptionKey => ({
    handle: k.handle,
    ref: { tenant, keyId, keyVersion: k.version },
  });
  const base: FieldKeyProvider = {
    // A cache hit answers at once: the transform then needs no await.
    encryptKey(tenant: string, keyId: string): EncryptionKey | Promise<EncryptionKey> {
      const k = encryptionKeyOf(keys, tenant, keyId);
      return k instanceof Promise ? k.then((v) => withRef(tenant, keyId, v)) : withRef(tenant, keyId, k);
    },
    decryptKey(ref: FieldKeyRef): KeyHandle | undefined | Promise<KeyHandle | undefined> {
      return decryptionKeyOf(keys, ref.tenant, ref.keyId, ref.keyVersion);
    },
  };
  return {
    ...base,
    forBackend(backend) {
      if (backend === undefined || backend === 'native') return base;
      const hsm = hsmOf(keys);
      if (!hsm) throw new KcmError('invalid_config', 'a route has backend "pkcs11" but the gateway has no hsm section');
      return hsm.fieldKeys(base);
    },
  };
}
