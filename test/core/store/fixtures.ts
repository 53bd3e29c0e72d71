/** Record builders for the store tests: every field set, buffers distinct per record. */
import type {
  ApprovalRecord,
  ClusterRecord,
  EdgeRecord,
  IvkRecord,
  KeyEventRecord,
  KeyEventType,
  L2Record,
  L3Record,
  L3ServiceRecord,
  TenantRecord,
} from '../../../core/src/store/records.ts';

/** `n` bytes counting up from `seed` (wrapping), so zero bytes appear and records differ. */
export function bytes(n: number, seed = 0): Buffer {
  return Buffer.from(Array.from({ length: n }, (_, i) => (seed + i) & 0xff));
}

export function clusterRecord(over: Partial<ClusterRecord> = {}): ClusterRecord {
  return {
    clusterId: 'c-0001',
    region: 'eu-de-1',
    sealType: 'shamir',
    threshold: 3,
    shareCount: 5,
    splitId: bytes(16, 1),
    kcv: bytes(32, 2),
    ceremonyPublicKey: bytes(32, 3),
    seal: null,
    manifest: '{"ceremony":"init","shares":5}',
    createdAt: 1_760_000_000_000,
    initState: 'confirmed',
    ivkDigest: bytes(32, 5),
    mac: bytes(32, 4),
    ...over,
  };
}

export function autoUnsealCluster(over: Partial<ClusterRecord> = {}): ClusterRecord {
  return clusterRecord({
    sealType: 'awskms',
    seal: {
      provider: 'awskms',
      keyId: 'arn:aws:kms:eu-central-1:111122223333:key/abcd',
      keyVersion: '',
      encryptedDataKey: bytes(184, 5),
      wrappedMasterKey: bytes(60, 6),
      createdAt: 1_760_000_000_001,
    },
    ...over,
  });
}

export function ivkRecord(version: number, over: Partial<IvkRecord> = {}): IvkRecord {
  return {
    version,
    state: 'ACTIVE',
    createdAt: 1_760_000_000_000 + version,
    retiredAt: null,
    hardExpiry: 1_790_000_000_000,
    wraps: 0,
    wrapped: bytes(60, version),
    mac: bytes(32, version + 100),
    ...over,
  };
}

export function l2Record(tenant: string, version: number, ivkVersion: number, over: Partial<L2Record> = {}): L2Record {
  return {
    tenant,
    version,
    state: 'ACTIVE',
    ivkVersion,
    wrappedActive: bytes(60, version + 7),
    wrappedSovereign: null,
    createdAt: 1_760_000_000_000,
    mac: bytes(32, version + 9),
    ...over,
  };
}

export function tenantRecord(id: string, over: Partial<TenantRecord> = {}): TenantRecord {
  return {
    id,
    state: 'ACTIVE',
    keyMode: 'byok',
    l1: { provider: 'aws-eu', keyId: `arn:aws:kms:eu-central-1:111122223333:key/${id}`, region: 'eu-central-1' },
    suspendedAt: null,
    graceDays: null,
    reason: null,
    revokedAt: null,
    createdAt: 1_760_000_000_000,
    updatedAt: 1_760_000_000_001,
    mac: bytes(32, 11),
    ...over,
  };
}

export function l3ServiceRecord(tenant: string, service: string, over: Partial<L3ServiceRecord> = {}): L3ServiceRecord {
  return {
    tenant,
    service,
    rotatePeriodMs: 30 * 24 * 3_600_000,
    encryptionBudget: 2 ** 32,
    minDecryptVersion: 1,
    expiredRetentionMs: 0,
    createdAt: 1_760_000_000_000,
    updatedAt: 1_760_000_000_002,
    mac: bytes(32, 12),
    ...over,
  };
}

export function l3Record(tenant: string, service: string, version: number, over: Partial<L3Record> = {}): L3Record {
  return {
    tenant,
    service,
    version,
    state: 'ACTIVE',
    l2Version: 1,
    wrapped: bytes(60, version + 13),
    createdAt: 1_760_000_000_000 + version,
    activatedAt: 1_760_000_000_100 + version,
    rotateAfter: 1_762_000_000_000 + version,
    expiredAt: null,
    revokedAt: null,
    encryptions: 0,
    mac: bytes(32, version + 14),
    ...over,
  };
}

export function keyEvent(tenant: string, over: Partial<Omit<KeyEventRecord, 'seq' | 'mac'>> = {}) {
  return {
    type: 'l3.rotated' as KeyEventType,
    tenant,
    service: 'billing' as string | null,
    version: 2 as number | null,
    createdAt: 1_760_000_000_000,
    ...over,
  };
}

export function edgeRecord(edgeId: string, over: Partial<EdgeRecord> = {}): EdgeRecord {
  return {
    edgeId,
    ackedSeq: 0,
    ackedAt: null,
    lastSeenAt: 1_760_000_000_000,
    mac: bytes(32, 15),
    ...over,
  };
}

export function approvalRecord(id: string, over: Partial<ApprovalRecord> = {}): ApprovalRecord {
  return {
    id,
    operation: 'tenant.revoke',
    params: '{"tenant":"t1"}',
    proposer: 'alice',
    required: 2,
    approvals: [],
    state: 'PENDING',
    createdAt: 1_760_000_000_000,
    expiresAt: 1_760_604_800_000,
    decidedBy: null,
    decidedAt: null,
    executedAt: null,
    result: null,
    mac: bytes(32, 16),
    ...over,
  };
}
