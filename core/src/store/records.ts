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
