/**
 * What the JSON field transform needs from the key layer. The edge lease
 * cache (gateway/src/keys/) implements it in production; tests and the
 * benchmark use {@link StaticKeyProvider} over native handles.
 */

import { KcmError } from '../../../common/src/errors.ts';
import type { FieldKeyRef } from '../../../common/src/format/envelope.ts';
import type { KeyHandle } from '../../../native/index.ts';

/** The L3 key version new fields are encrypted under, and its reference. */
export interface EncryptionKey {
  handle: KeyHandle;
  ref: FieldKeyRef;
}

export interface FieldKeyProvider {
  /**
   * The current version of L3 key `keyId` of `tenant`. The returned ref must
   * name that tenant and key id. Throws (or rejects with) a KcmError of the
   * key layer (e.g. `sealed`, `key_revoked`, `tenant_suspended`) when it
   * cannot be used for encryption.
   */
  encryptKey(tenant: string, keyId: string): EncryptionKey | Promise<EncryptionKey>;
  /**
   * The L3 key version `ref` names, or undefined when this edge does not
   * hold it or the caller may not use it. May answer synchronously (a cache
   * hit): the transform then needs no await.
   */
  decryptKey(ref: FieldKeyRef): KeyHandle | undefined | Promise<KeyHandle | undefined>;
}

/**
 * A fixed in-memory provider: `tenant → keyId → versions`; the highest
 * version encrypts. For tests, benchmarks and development only; it never
 * rotates or expires anything.
 */
export class StaticKeyProvider implements FieldKeyProvider {
  private readonly keys = new Map<string, Map<number, KeyHandle>>();

  /** Adds `handle` as version `version` of `keyId` of `tenant`; returns this. */
  add(tenant: string, keyId: string, version: number, handle: KeyHandle): this {
    const id = `${tenant}\0${keyId}`;
    const versions = this.keys.get(id) ?? new Map<number, KeyHandle>();
    versions.set(version, handle);
    this.keys.set(id, versions);
    return this;
  }

  /** Throws KcmError `key_not_found` when the tenant has no such key. */
  encryptKey(tenant: string, keyId: string): EncryptionKey {
    const versions = this.keys.get(`${tenant}\0${keyId}`);
    if (!versions || versions.size === 0) throw new KcmError('key_not_found');
    const keyVersion = Math.max(...versions.keys());
    return { handle: versions.get(keyVersion) as KeyHandle, ref: { tenant, keyId, keyVersion } };
  }

  decryptKey(ref: FieldKeyRef): KeyHandle | undefined {
    return this.keys.get(`${ref.tenant}\0${ref.keyId}`)?.get(ref.keyVersion);
  }
}
