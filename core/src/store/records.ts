/**
 * The records the Core persists (ADR-304, ADR-403): wrapped keys and metadata
 * only, never a plaintext key. Every record is stored with an integrity MAC
 * (`mac`) under a key derived from the MasterKey; `integrity-store.ts`
 * computes it on write and verifies it on every read, so the raw stores
 * (sqlite/, postgres/) only persist the bytes they are given.
 *
 * Times are milliseconds since the Unix epoch (UTC). Buffers are opaque bytes
 * (wrapped-key blobs of SPEC.md §4, provider ciphertexts, MACs).
 */

export type SealType = 'shamir' | 'awskms' | 'pkcs11' | 'dev';

/** What an auto-unseal needs: the MasterKey wrapped under a provider-protected data key (ADR-203/204). */
export interface SealBlobRecord {
  /** Provider that protects the data key. */
  provider: Exclude<SealType, 'shamir'>;
  /** Provider key id/ARN/label. */
  keyId: string;
  /** Provider key version as the provider reports it ('' when it has none). */
  keyVersion: string;
  /** The seal data key encrypted by the provider. */
  encryptedDataKey: Buffer;
  /** The MasterKey wrapped under the seal data key: AES-256-GCM, AAD = cluster id + region (SPEC.md §4 blob). */
  wrappedMasterKey: Buffer;
  createdAt: number;
}

/** One per Core cluster, written once by `kcm operator init`. */
export interface ClusterRecord {
  clusterId: string;
  region: string;
  sealType: SealType;
  /** Shamir threshold M (recovery shares in auto-unseal modes). */
  threshold: number;
  /** Shamir share count N. */
  shareCount: number;
  /** Shamir split id (16 bytes): shares of another split are refused early. */
  splitId: Buffer;
  /** MasterKey check value: HMAC-SHA-256(MasterKey, "okcm/mk-check/v1\0" ‖ cluster id); never a plain hash. */
  kcv: Buffer;
  /** Ed25519 public key that signed the share headers of the ceremony (32 bytes). */
  ceremonyPublicKey: Buffer;
  /** Auto-unseal blob; null in Shamir mode. */
  seal: SealBlobRecord | null;
  /** The ceremony manifest (JSON text). */
  manifest: string;
  createdAt: number;
  /**
   * Two-phase init: `pending` from the init commit until the operator confirms
   * (or the first unseal by shares proves the shares work); a pending cluster
   * whose shares were lost can be initialised again.
   */
  initState: 'pending' | 'confirmed';
  /**
   * SHA-256 of the IVK versions and states (`ivk-digest.ts`), updated in the
   * transaction of every rotation, state change and deletion: a deleted or
   * replayed IVK row no longer matches it.
   */
  ivkDigest: Buffer;
  mac: Buffer;
}

export type IvkState = 'ACTIVE' | 'GRACE' | 'DEPRECATED' | 'REVOKED';

/** An internal versioned key (ADR-301/304), wrapped by the MasterKey. */
export interface IvkRecord {
  version: number;
  state: IvkState;
  createdAt: number;
  /** When it stopped being ACTIVE (null while ACTIVE). */
  retiredAt: number | null;
  /** Hard expiry: after it the version is not used even to decrypt. */
  hardExpiry: number;
  /** L2 wraps made under this version (volume trigger, ADR-303). */
  wraps: number;
  /** The IVK wrapped under the MasterKey (SPEC.md §4 blob). */
  wrapped: Buffer;
  mac: Buffer;
}

export type L2State = 'ACTIVE' | 'SUSPENDED' | 'REVOKED';

/** A tenant's L2 key (ADR-102/302). Issue-4 code adds tenant lifecycle on top. */
export interface L2Record {
  tenant: string;
  version: number;
  state: L2State;
  /** IVK version of the active binding. */
  ivkVersion: number;
  /** Active binding: L2 wrapped by that IVK version (SPEC.md §4 blob). */
  wrappedActive: Buffer;
  /** Sovereign binding: L2 wrapped by the tenant's L1 (provider ciphertext), null until L1 is linked. */
  wrappedSovereign: Buffer | null;
  createdAt: number;
  mac: Buffer;
}

/* ---------------------------------------------------------------------------
 * Core part 2 (tenants, L3, events, edges) and the security plane (approvals).
 * Schema v3. Every record below is MAC'd like the ones above.
 * ------------------------------------------------------------------------- */

export type TenantState = 'ACTIVE' | 'SUSPENDED' | 'REVOKED';

/**
 * How the tenant's root key is held (ADR-504): `managed` = no customer L1
 * (L2 only under the IVK); `byok` = customer key material imported into a
 * provider key, L2 has both bindings; `hyok` = the key stays in the customer's
 * KMS and every L2 unwrap past the memory cache calls it (no active binding is
 * stored: `L2Record.wrappedActive` is empty).
 */
export type KeyMode = 'managed' | 'byok' | 'hyok';

/** The tenant's L1 reference (ADR-502): never key material, never credentials. */
export interface L1Ref {
  /** Name of a provider instance in the Core configuration (`l1Providers`). */
  provider: string;
  /** Provider key id / ARN / PKCS#11 label. */
  keyId: string;
  /** Provider region ('' when it has none). */
  region: string;
}

/** A tenant (ADR-103/503). Ids are never reused: a revoked tenant's row stays. */
export interface TenantRecord {
  id: string;
  state: TenantState;
  keyMode: KeyMode;
  /** null only for keyMode `managed`. */
  l1: L1Ref | null;
  /** When it was suspended (null unless SUSPENDED). */
  suspendedAt: number | null;
  /** Decrypt-allowed grace while suspended: 30, 60 or 90 days (null unless SUSPENDED). */
  graceDays: number | null;
  /** Why it was suspended/revoked (operator text or 'l1_unreachable'); never a secret. */
  reason: string | null;
  revokedAt: number | null;
  createdAt: number;
  updatedAt: number;
  mac: Buffer;
}

export type L3State = 'PENDING' | 'ACTIVE' | 'EXPIRED' | 'REVOKED';

/** Per (tenant, service) settings of the L3 service key (ADR-601). */
export interface L3ServiceRecord {
  tenant: string;
  service: string;
  /** Rotate the active version this long after it became active (ms). */
  rotatePeriodMs: number;
  /** Encryptions (as reported by edges) after which the active version is rotated. */
  encryptionBudget: number;
  /** Versions below this are refused even for decryption (1 = all allowed). */
  minDecryptVersion: number;
  /** Expired (decrypt-only) versions are revoked this long after expiry (ms); 0 = never. */
  expiredRetentionMs: number;
  createdAt: number;
  updatedAt: number;
  mac: Buffer;
}

/** One version of an L3 service KEK, wrapped under the tenant's L2 (SPEC.md §4 blob). */
export interface L3Record {
  tenant: string;
  service: string;
  version: number;
  state: L3State;
  /** L2 version that wraps it. */
  l2Version: number;
  wrapped: Buffer;
  createdAt: number;
  activatedAt: number | null;
  /** Due time of the next rotation (ms epoch), fixed when it becomes ACTIVE; null otherwise. */
  rotateAfter: number | null;
  expiredAt: number | null;
  revokedAt: number | null;
  /** Encryptions reported by edges under this version. */
  encryptions: number;
  mac: Buffer;
}

export type KeyEventType =
  | 'tenant.revoked'
  | 'tenant.suspended'
  | 'tenant.resumed'
  | 'l3.rotated'
  | 'l3.revoked'
  | 'l3.min_decrypt';

/**
 * A key event for edges (ADR-101/602), in one total order (`seq`). Edges apply
 * events in order and acknowledge the highest seq applied. Events are kept so
 * an edge that reconnects replays what it missed, and a restarted Core keeps
 * its revocations.
 */
export interface KeyEventRecord {
  /** Assigned by the store on append: 1, 2, 3, … */
  seq: number;
  type: KeyEventType;
  tenant: string;
  /** L3 service (null for tenant events). */
  service: string | null;
  /** L3 version concerned (rotated-to / revoked / new minimum), null for tenant events. */
  version: number | null;
  createdAt: number;
  mac: Buffer;
}

/** What Core knows of one edge identity (certificate identity). */
export interface EdgeRecord {
  edgeId: string;
  /** Highest event seq the edge acknowledged (0 = none). */
  ackedSeq: number;
  ackedAt: number | null;
  lastSeenAt: number;
  mac: Buffer;
}

export type ApprovalState = 'PENDING' | 'EXECUTED' | 'FAILED' | 'REJECTED' | 'CANCELLED' | 'EXPIRED';

/** One approval of a quorum request. */
export interface Approval {
  actor: string;
  at: number;
}

/** A four-eyes approval request (ADR-404). */
export interface ApprovalRecord {
  id: string;
  /** Operation name, e.g. 'tenant.revoke', 'ivk.rotate_emergency', 'authz.policy_change'. */
  operation: string;
  /** Operation parameters as canonical JSON text (never a secret). */
  params: string;
  proposer: string;
  required: number;
  approvals: Approval[];
  state: ApprovalState;
  createdAt: number;
  expiresAt: number;
  /** Who rejected/cancelled (null otherwise). */
  decidedBy: string | null;
  decidedAt: number | null;
  executedAt: number | null;
  /** Outcome of the execution as JSON text (null until executed/failed). */
  result: string | null;
  mac: Buffer;
}
