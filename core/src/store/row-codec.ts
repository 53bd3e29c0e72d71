/**
 * Records ↔ SQL rows, shared by both dialects. Column order here is the order
 * of the `?` parameters in queries.ts. Writes are validated first, so both
 * databases see the same values and refuse the same records: integers must be
 * safe (|n| ≤ 2^53−1, stored as 64-bit INTEGER/BIGINT), buffers must be
 * Buffers (zero length allowed, distinct from null), strings may not hold NUL
 * (PostgreSQL TEXT cannot). Violations throw `internal_error`: a record that
 * reaches a raw store invalid is a bug upstream, never client input.
 */
import type { ClusterRecord, IvkRecord, IvkState, L2Record, L2State, SealBlobRecord, SealType } from './records.ts';
import { storeError } from './store-error.ts';

export type Row = Record<string, unknown>;
export type SqlValue = string | number | Buffer | null;

export const SEAL_TYPES: readonly SealType[] = ['shamir', 'awskms', 'pkcs11', 'dev'];
export const IVK_STATES: readonly IvkState[] = ['ACTIVE', 'GRACE', 'DEPRECATED', 'REVOKED'];
export const L2_STATES: readonly L2State[] = ['ACTIVE', 'SUSPENDED', 'REVOKED'];

export const CLUSTER_COLUMNS = [
  'cluster_id',
  'region',
  'seal_type',
  'threshold',
  'share_count',
  'split_id',
  'kcv',
  'ceremony_public_key',
  'manifest',
  'seal_provider',
  'seal_key_id',
  'seal_key_version',
  'seal_encrypted_data_key',
  'seal_wrapped_master_key',
  'seal_created_at',
  'created_at',
  'init_state',
  'ivk_digest',
  'mac',
] as const;
export const IVK_COLUMNS = [
  'version',
  'state',
  'created_at',
  'retired_at',
  'hard_expiry',
  'wraps',
  'wrapped',
  'mac',
] as const;
export const L2_COLUMNS = [
  'tenant',
  'version',
  'state',
  'ivk_version',
  'wrapped_active',
  'wrapped_sovereign',
  'created_at',
  'mac',
] as const;

export function bad(op: string, field: string, want: string): never {
  throw storeError('internal_error', `${op}: ${field} must be ${want}`);
}

/** A safe integer to bind; throws `internal_error` naming `op` and `field`. */
export function checkInt(op: string, field: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) bad(op, field, 'a safe integer');
  return v;
}

export function checkIntOrNull(op: string, field: string, v: unknown): number | null {
  return v === null ? null : checkInt(op, field, v);
}

export function checkBuf(op: string, field: string, v: unknown): Buffer {
  if (!Buffer.isBuffer(v)) bad(op, field, 'a Buffer');
  return v;
}

export function checkBufOrNull(op: string, field: string, v: unknown): Buffer | null {
  return v === null ? null : checkBuf(op, field, v);
}

/** A string to bind (no NUL); throws `internal_error`. */
export function checkText(op: string, field: string, v: unknown): string {
  if (typeof v !== 'string' || v.includes('\0')) bad(op, field, 'a string without NUL');
  return v;
}

export function checkEnum<T extends string>(op: string, field: string, v: unknown, allowed: readonly T[]): T {
  if (!(allowed as readonly unknown[]).includes(v)) bad(op, field, `one of ${allowed.join('|')}`);
  return v as T;
}

/** Parameters of a cluster row in CLUSTER_COLUMNS order. */
export function clusterParams(op: string, r: ClusterRecord): SqlValue[] {
  const s = r.seal;
  if (s !== null && typeof s !== 'object') bad(op, 'seal', 'an object or null');
  return [
    checkText(op, 'clusterId', r.clusterId),
    checkText(op, 'region', r.region),
    checkEnum(op, 'sealType', r.sealType, SEAL_TYPES),
    checkInt(op, 'threshold', r.threshold),
    checkInt(op, 'shareCount', r.shareCount),
    checkBuf(op, 'splitId', r.splitId),
    checkBuf(op, 'kcv', r.kcv),
    checkBuf(op, 'ceremonyPublicKey', r.ceremonyPublicKey),
    checkText(op, 'manifest', r.manifest),
    s === null ? null : checkEnum(op, 'seal.provider', s.provider, ['awskms', 'pkcs11', 'dev']),
    s === null ? null : checkText(op, 'seal.keyId', s.keyId),
    s === null ? null : checkText(op, 'seal.keyVersion', s.keyVersion),
    s === null ? null : checkBuf(op, 'seal.encryptedDataKey', s.encryptedDataKey),
    s === null ? null : checkBuf(op, 'seal.wrappedMasterKey', s.wrappedMasterKey),
    s === null ? null : checkInt(op, 'seal.createdAt', s.createdAt),
    checkInt(op, 'createdAt', r.createdAt),
    checkEnum(op, 'initState', r.initState, ['pending', 'confirmed']),
    checkBuf(op, 'ivkDigest', r.ivkDigest),
    checkBuf(op, 'mac', r.mac),
  ];
}

/** Parameters of an IVK row in IVK_COLUMNS order. */
export function ivkParams(op: string, r: IvkRecord): SqlValue[] {
  return [
    checkInt(op, 'version', r.version),
    checkEnum(op, 'state', r.state, IVK_STATES),
    checkInt(op, 'createdAt', r.createdAt),
    checkIntOrNull(op, 'retiredAt', r.retiredAt),
    checkInt(op, 'hardExpiry', r.hardExpiry),
    checkInt(op, 'wraps', r.wraps),
    checkBuf(op, 'wrapped', r.wrapped),
    checkBuf(op, 'mac', r.mac),
  ];
}

/** Parameters of an L2 row in L2_COLUMNS order. */
export function l2Params(op: string, r: L2Record): SqlValue[] {
  return [
    checkText(op, 'tenant', r.tenant),
    checkInt(op, 'version', r.version),
    checkEnum(op, 'state', r.state, L2_STATES),
    checkInt(op, 'ivkVersion', r.ivkVersion),
    checkBuf(op, 'wrappedActive', r.wrappedActive),
    checkBufOrNull(op, 'wrappedSovereign', r.wrappedSovereign),
    checkInt(op, 'createdAt', r.createdAt),
    checkBuf(op, 'mac', r.mac),
  ];
}

// ---- rows → records. A value of the wrong type here means a corrupt or foreign database.

export function corrupt(field: string): never {
  throw storeError('internal_error', `stored ${field} has an unexpected type`);
}

/** A stored integer: number (SQLite), or string/bigint (PostgreSQL BIGINT, count(*)). */
export function intOf(field: string, v: unknown): number {
  const n = typeof v === 'string' && /^-?\d+$/.test(v) ? Number(v) : typeof v === 'bigint' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n)) corrupt(field);
  return n;
}

export function intOrNullOf(field: string, v: unknown): number | null {
  return v === null ? null : intOf(field, v);
}

export function bufOf(field: string, v: unknown): Buffer {
  if (!Buffer.isBuffer(v)) corrupt(field);
  return v;
}

export function textOf(field: string, v: unknown): string {
  if (typeof v !== 'string') corrupt(field);
  return v;
}

export function enumOf<T extends string>(field: string, v: unknown, allowed: readonly T[]): T {
  if (!(allowed as readonly unknown[]).includes(v)) corrupt(field);
  return v as T;
}

function sealOf(row: Row): SealBlobRecord | null {
  const cols = [
    'seal_provider',
    'seal_key_id',
    'seal_key_version',
    'seal_encrypted_data_key',
    'seal_wrapped_master_key',
    'seal_created_at',
  ];
  const nulls = cols.filter((c) => row[c] === null).length;
  if (nulls === cols.length) return null;
  if (nulls !== 0) corrupt('seal (partially null)');
  return {
    provider: enumOf('seal_provider', row.seal_provider, ['awskms', 'pkcs11', 'dev'] as const),
    keyId: textOf('seal_key_id', row.seal_key_id),
    keyVersion: textOf('seal_key_version', row.seal_key_version),
    encryptedDataKey: bufOf('seal_encrypted_data_key', row.seal_encrypted_data_key),
    wrappedMasterKey: bufOf('seal_wrapped_master_key', row.seal_wrapped_master_key),
    createdAt: intOf('seal_created_at', row.seal_created_at),
  };
}

export function clusterOf(row: Row): ClusterRecord {
  return {
    clusterId: textOf('cluster_id', row.cluster_id),
    region: textOf('region', row.region),
    sealType: enumOf('seal_type', row.seal_type, SEAL_TYPES),
    threshold: intOf('threshold', row.threshold),
    shareCount: intOf('share_count', row.share_count),
    splitId: bufOf('split_id', row.split_id),
    kcv: bufOf('kcv', row.kcv),
    ceremonyPublicKey: bufOf('ceremony_public_key', row.ceremony_public_key),
    seal: sealOf(row),
    manifest: textOf('manifest', row.manifest),
    createdAt: intOf('created_at', row.created_at),
    initState: enumOf('init_state', row.init_state, ['pending', 'confirmed'] as const),
    ivkDigest: bufOf('ivk_digest', row.ivk_digest),
    mac: bufOf('mac', row.mac),
  };
}

export function ivkOf(row: Row): IvkRecord {
  return {
    version: intOf('version', row.version),
    state: enumOf('state', row.state, IVK_STATES),
    createdAt: intOf('created_at', row.created_at),
    retiredAt: intOrNullOf('retired_at', row.retired_at),
    hardExpiry: intOf('hard_expiry', row.hard_expiry),
    wraps: intOf('wraps', row.wraps),
    wrapped: bufOf('wrapped', row.wrapped),
    mac: bufOf('mac', row.mac),
  };
}

export function l2Of(row: Row): L2Record {
  return {
    tenant: textOf('tenant', row.tenant),
    version: intOf('version', row.version),
    state: enumOf('state', row.state, L2_STATES),
    ivkVersion: intOf('ivk_version', row.ivk_version),
    wrappedActive: bufOf('wrapped_active', row.wrapped_active),
    wrappedSovereign: row.wrapped_sovereign === null ? null : bufOf('wrapped_sovereign', row.wrapped_sovereign),
    createdAt: intOf('created_at', row.created_at),
    mac: bufOf('mac', row.mac),
  };
}
