/**
 * What the edge API needs from the key hierarchy to lease L3 keys (ADR-601/602),
 * implemented by `core/src/keys/l3/` (tenants → L2 → L3). The edge API checks
 * the edge's authorization first; this layer enforces the key states.
 */
import type { KeyHandle } from '../../../native/index.ts';

/** One L3 version handed to an edge. The handle is the Core's: the lease code wraps it for transport and never destroys it. */
export interface LeasedL3Version {
  version: number;
  state: 'ACTIVE' | 'EXPIRED';
  handle: KeyHandle;
}

export interface L3LeaseSet {
  tenant: string;
  service: string;
  /** The version new encryptions use; null while the tenant is suspended (encryption refused). */
  active: LeasedL3Version | null;
  /** Decrypt-only versions the edge asked for that exist, are not revoked and are ≥ minDecryptVersion. */
  decryptOnly: LeasedL3Version[];
  minDecryptVersion: number;
  /** Tenant state at lease time. */
  tenantState: 'ACTIVE' | 'SUSPENDED';
  /** Encryptions left under the active version before forced rotation (edges stop encrypting with it past this). */
  activeBudgetLeft: number | null;
}

export interface L3LeaseSource {
  /**
   * The key set of (tenant, service): the active version plus the decrypt-only
   * versions named in `wantVersions` (unknown/revoked/too-old versions are
   * left out, not errors). Lazy: hydrates L2/L3 on a miss (IVK, then L1).
   * Throws KcmError: tenant_not_found, tenant_revoked, tenant_grace_ended,
   * key_not_found (no such service), l1_unavailable, sealed.
   */
  leaseSet(tenant: string, service: string, wantVersions: readonly number[]): Promise<L3LeaseSet>;
  /** Adds encryptions reported by an edge; may trigger a rotation when the budget is reached. */
  reportEncryptions(tenant: string, service: string, version: number, count: number): Promise<void>;
}
