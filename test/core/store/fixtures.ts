/** Record builders for the store tests: every field set, buffers distinct per record. */
import type { ClusterRecord, IvkRecord, L2Record } from '../../../core/src/store/records.ts';

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
