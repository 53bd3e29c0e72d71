/**
 * L3 service KEK versions under the tenant's L2 (ADR-601): wrap/unwrap with
 * the AAD of SPEC.md §4 (wrapAad({3, tenant, "l2", n}, {4, tenant, service, v})),
 * the locked-memory handles (lazy: unwrapped on first use, then cached), and
 * the public views of the records.
 */
import { KcmError } from '../../../../common/src/errors.ts';
import { decodeWrappedKey, encodeWrappedKey, wrapAad } from '../../../../common/src/format/wrapped-key.ts';
import { CryptoError, type KeyHandle } from '../../../../native/index.ts';
import type { L3Record, L3ServiceRecord, TenantRecord } from '../../store/records.ts';
import { type HierarchyContext, l3Name } from '../../tenants/hierarchy-context.ts';
import type { TenantL1 } from '../../tenants/tenant-l1.ts';
import type { TenantService } from '../../tenants/tenant-service.ts';
import { l2Ref, l3Ref } from '../key-names.ts';

export type L3Info = Omit<L3Record, 'wrapped' | 'mac'>;
export type ServiceInfo = Omit<L3ServiceRecord, 'mac'> & { activeVersion: number | null; versions: L3Info[] };

export function l3Info(r: L3Record): L3Info {
  const { wrapped: _w, mac: _m, ...info } = r;
  return info;
}

export function serviceInfo(s: L3ServiceRecord, versions: readonly L3Record[]): ServiceInfo {
  const { mac: _m, ...rest } = s;
  const active = versions.find((v) => v.state === 'ACTIVE');
  return { ...rest, activeVersion: active?.version ?? null, versions: versions.map(l3Info) };
}

/** The stored blob of `key` as version `version` of (tenant, service) under L2 version `l2Version`. */
export function wrapL3(
  l2: KeyHandle,
  tenant: string,
  l2Version: number,
  service: string,
  version: number,
  key: KeyHandle,
): Buffer {
  const wrapping = l2Ref(tenant, l2Version);
  const wrapped = l3Ref(tenant, service, version);
  return encodeWrappedKey({ wrapping, wrapped, sealed: l2.wrap(key, wrapAad(wrapping, wrapped)) });
}

/** True when an EXPIRED version is past the service's retention (treated as revoked until the next sweep). */
export function pastRetention(r: L3Record, s: L3ServiceRecord, now: number): boolean {
  return (
    r.state === 'EXPIRED' &&
    s.expiredRetentionMs > 0 &&
    r.expiredAt !== null &&
    now >= r.expiredAt + s.expiredRetentionMs
  );
}

/** Lazily unwrapped L3 handles, owned by the L3 cache. */
export class L3Handles {
  constructor(
    private readonly c: HierarchyContext,
    private readonly tenants: TenantService,
    private readonly l1: TenantL1,
  ) {}

  /**
   * The handle of version `r` (cached, or unwrapped under its L2, which is
   * resolved per ADR-302). Throws the L2 resolution codes, `record_tampered`
   * when the blob names another key or does not open, `tenant_revoked`.
   */
  async get(t: TenantRecord, r: L3Record): Promise<KeyHandle> {
    const name = l3Name(t.id, r.service, r.version);
    const hit = this.c.l3Cache.get(name);
    if (hit) return hit;
    for (let attempt = 0; ; attempt++) {
      const { handle: l2 } = await this.tenants.l2Of(t, r.l2Version, (tt, e) => this.l1.onL1Failure(tt, e));
      try {
        const key = unwrapL3(l2, r);
        if (this.c.revoked.has(t.id)) {
          key.destroy();
          throw new KcmError('tenant_revoked', t.id);
        }
        this.c.l3Cache.set(name, key);
        return key;
      } catch (err) {
        // The L2 handle was evicted between resolution and use: resolve it again, once.
        if (attempt === 0 && err instanceof CryptoError && err.code === 'key_destroyed') continue;
        throw err;
      }
    }
  }
}

function unwrapL3(l2: KeyHandle, r: L3Record): KeyHandle {
  const wrapping = l2Ref(r.tenant, r.l2Version);
  const wrapped = l3Ref(r.tenant, r.service, r.version);
  const blob = decodeWrappedKey(r.wrapped);
  if (
    blob.wrapped.keyId !== wrapped.keyId ||
    blob.wrapped.version !== wrapped.version ||
    blob.wrapped.tenant !== wrapped.tenant
  ) {
    throw new KcmError('record_tampered', `l3 ${r.tenant}/${r.service} v${r.version}: blob names another key`);
  }
  try {
    return l2.unwrap(blob.sealed, wrapAad(wrapping, wrapped));
  } catch (err) {
    if (err instanceof CryptoError && err.code === 'decryption_failed') {
      throw new KcmError('record_tampered', `l3 ${r.tenant}/${r.service} v${r.version} does not open`);
    }
    throw err;
  }
}
