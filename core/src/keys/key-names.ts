/**
 * How the Core names its keys in wrapped-key AAD (SPEC.md §3): one function
 * per layer, so every wrap and unwrap of a layer uses the same KeyRef.
 */
import { KeyKind, type KeyRef } from '../../../common/src/format/key-ref.ts';

export function masterKeyRef(clusterId: string): KeyRef {
  return { kind: KeyKind.master, tenant: '', keyId: clusterId, version: 1 };
}

export function ivkRef(region: string, version: number): KeyRef {
  return { kind: KeyKind.ivk, tenant: '', keyId: region, version };
}

export function l2Ref(tenant: string, version: number): KeyRef {
  return { kind: KeyKind.tenant, tenant, keyId: 'l2', version };
}

export function sealKeyRef(region: string): KeyRef {
  return { kind: KeyKind.seal, tenant: '', keyId: region, version: 1 };
}

/** An L3 service KEK version: `{4, tenant, service, n}` (SPEC.md §3); the field envelope names the same key. */
export function l3Ref(tenant: string, service: string, version: number): KeyRef {
  return { kind: KeyKind.service, tenant, keyId: service, version };
}

/**
 * The per-binding data key an L1 provider makes for the sovereign binding of
 * L2 version `l2Version` (`core/src/l1/`): `{3, tenant, "l1", n}`, so its AAD
 * never equals the L2's own (`"l2"`).
 */
export function l1DataKeyRef(tenant: string, l2Version: number): KeyRef {
  return { kind: KeyKind.tenant, tenant, keyId: 'l1', version: l2Version };
}
