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
