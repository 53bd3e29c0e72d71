/**
 * GatewayKeys that hand out token views (hsm-backend.ts) for the services it
 * selects, and carries the HSM backend so the proxy can find it for routes
 * with `backend: "pkcs11"` (field-keys.ts). The direct API gets one selecting
 * the config's `hsm.keys`; the proxy one selecting none (its routes choose).
 */
import type { KeyHandle } from '../../../native/index.ts';
import type { EncryptionKey, GatewayKeyStats, GatewayKeys } from '../gateway-keys.ts';
import type { HsmBackend } from './hsm-backend.ts';

export class HsmGatewayKeys implements GatewayKeys {
  readonly inner: GatewayKeys;
  readonly hsm: HsmBackend;
  readonly #select: (service: string) => boolean;

  /** `select(service)`: whether that service's keys come back as token views. */
  constructor(inner: GatewayKeys, hsm: HsmBackend, select: (service: string) => boolean) {
    this.inner = inner;
    this.hsm = hsm;
    this.#select = select;
  }

  /** `k` as this gateway hands it out for `service`: a token view when selected. */
  #key(service: string, k: EncryptionKey): EncryptionKey {
    return this.#select(service) ? { version: k.version, handle: this.hsm.view(k.handle) } : k;
  }

  /** `h` as this gateway hands it out for `service`: a token view when selected. */
  #handle(service: string, h: KeyHandle | undefined): KeyHandle | undefined {
    return h && this.#select(service) ? this.hsm.view(h) : h;
  }

  async encryptionKey(tenant: string, service: string): Promise<EncryptionKey> {
    return this.#key(service, await this.inner.encryptionKey(tenant, service));
  }

  async decryptionKey(tenant: string, service: string, version: number): Promise<KeyHandle | undefined> {
    return this.#handle(service, await this.inner.decryptionKey(tenant, service, version));
  }

  cachedEncryptionKey(tenant: string, service: string): EncryptionKey | undefined {
    const k = this.inner.cachedEncryptionKey?.(tenant, service);
    return k && this.#key(service, k);
  }

  cachedDecryptionKey(tenant: string, service: string, version: number): KeyHandle | undefined {
    return this.#handle(service, this.inner.cachedDecryptionKey?.(tenant, service, version));
  }

  ready(): boolean {
    return this.inner.ready();
  }

  stats(): GatewayKeyStats {
    return this.inner.stats();
  }

  recordEncryptions(tenant: string, service: string, version: number, count: number): void {
    this.inner.recordEncryptions?.(tenant, service, version, count);
  }
}

/** The HSM backend `keys` carries, if any. */
export function hsmOf(keys: GatewayKeys): HsmBackend | undefined {
  return keys instanceof HsmGatewayKeys ? keys.hsm : undefined;
}
