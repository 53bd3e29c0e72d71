/**
 * The policy transform's key provider (pipeline/key-provider.ts) over any
 * {@link GatewayKeys}: the proxy and the direct API share one key cache
 * (the Core lease cache in production, LocalGatewayKeys in development).
 */
import type { FieldKeyRef } from '../../common/src/format/envelope.ts';
import type { KeyHandle } from '../../native/index.ts';
import type { GatewayKeys } from './gateway-keys.ts';
import type { EncryptionKey, FieldKeyProvider } from './pipeline/key-provider.ts';

/**
 * A FieldKeyProvider over `keys`. `encryptKey` rejects with what
 * `keys.encryptionKey` throws (e.g. 503 `core_unavailable`, 410
 * `tenant_revoked`); `decryptKey` resolves undefined for a version the
 * gateway may not use and rejects only when the key service refuses the
 * whole request (see GatewayKeys.decryptionKey).
 */
export function fieldKeyProvider(keys: GatewayKeys): FieldKeyProvider {
  return {
    async encryptKey(tenant: string, keyId: string): Promise<EncryptionKey> {
      const k = await keys.encryptionKey(tenant, keyId);
      return { handle: k.handle, ref: { tenant, keyId, keyVersion: k.version } };
    },
    decryptKey(ref: FieldKeyRef): Promise<KeyHandle | undefined> {
      return keys.decryptionKey(ref.tenant, ref.keyId, ref.keyVersion);
    },
  };
}
