/**
 * Rows ↔ records of the tenant family (schema v3): tenants, l3_services,
 * l3_keys. Same rules as row-codec.ts: parameters in the column order below,
 * writes validated first (`internal_error` naming the operation and field),
 * reads checked for the stored types (a mismatch means a corrupt database).
 */
import type { KeyMode, L1Ref, L3Record, L3ServiceRecord, L3State, TenantRecord, TenantState } from './records.ts';
import {
  bad,
  bufOf,
  checkBuf,
  checkEnum,
  checkInt,
  checkIntOrNull,
  checkText,
  corrupt,
  enumOf,
  intOf,
  intOrNullOf,
  type Row,
  type SqlValue,
  textOf,
} from './row-codec.ts';

export const TENANT_STATES: readonly TenantState[] = ['ACTIVE', 'SUSPENDED', 'REVOKED'];
export const KEY_MODES: readonly KeyMode[] = ['managed', 'byok', 'hyok'];
export const L3_STATES: readonly L3State[] = ['PENDING', 'ACTIVE', 'EXPIRED', 'REVOKED'];
/** The suspension grace periods a tenant may have (ADR-503). */
export const GRACE_DAYS: readonly number[] = [30, 60, 90];

export const TENANT_COLUMNS = [
  'id',
  'state',
  'key_mode',
  'l1_provider',
  'l1_key_id',
  'l1_region',
  'suspended_at',
  'grace_days',
  'reason',
  'revoked_at',
  'created_at',
  'updated_at',
  'mac',
] as const;
export const L3_SERVICE_COLUMNS = [
  'tenant',
  'service',
  'rotate_period_ms',
  'encryption_budget',
  'min_decrypt_version',
  'expired_retention_ms',
  'created_at',
  'updated_at',
  'mac',
] as const;
export const L3_COLUMNS = [
  'tenant',
  'service',
  'version',
  'state',
  'l2_version',
  'wrapped',
  'created_at',
  'activated_at',
  'rotate_after',
  'expired_at',
  'revoked_at',
  'encryptions',
  'mac',
] as const;

/** A string without NUL, or null; throws `internal_error`. */
export function checkTextOrNull(op: string, field: string, v: unknown): string | null {
  return v === null ? null : checkText(op, field, v);
}

/**
 * Parameters of a tenant row in TENANT_COLUMNS order. Refuses (besides the
 * types) an empty id, an `l1` that is not an object or null, a null `l1` unless keyMode is
 * `managed`, and a graceDays other than 30, 60, 90 or null.
 */
export function tenantParams(op: string, r: TenantRecord): SqlValue[] {
  const l1 = r.l1;
  if (l1 !== null && typeof l1 !== 'object') bad(op, 'l1', 'an object or null');
  const keyMode = checkEnum(op, 'keyMode', r.keyMode, KEY_MODES);
  if (l1 === null && keyMode !== 'managed') bad(op, 'l1', `set for keyMode ${keyMode}`);
  const graceDays = checkIntOrNull(op, 'graceDays', r.graceDays);
  if (graceDays !== null && !GRACE_DAYS.includes(graceDays)) bad(op, 'graceDays', '30, 60, 90 or null');
  const id = checkText(op, 'id', r.id);
  if (id === '') bad(op, 'id', 'non-empty'); // listTenants('') starts after ''
  return [
    id,
    checkEnum(op, 'state', r.state, TENANT_STATES),
    keyMode,
    l1 === null ? null : checkText(op, 'l1.provider', l1.provider),
    l1 === null ? null : checkText(op, 'l1.keyId', l1.keyId),
    l1 === null ? null : checkText(op, 'l1.region', l1.region),
    checkIntOrNull(op, 'suspendedAt', r.suspendedAt),
    graceDays,
    checkTextOrNull(op, 'reason', r.reason),
    checkIntOrNull(op, 'revokedAt', r.revokedAt),
    checkInt(op, 'createdAt', r.createdAt),
    checkInt(op, 'updatedAt', r.updatedAt),
    checkBuf(op, 'mac', r.mac),
  ];
}

/** Parameters of an l3_services row in L3_SERVICE_COLUMNS order. */
export function l3ServiceParams(op: string, r: L3ServiceRecord): SqlValue[] {
  return [
    checkText(op, 'tenant', r.tenant),
    checkText(op, 'service', r.service),
    checkInt(op, 'rotatePeriodMs', r.rotatePeriodMs),
    checkInt(op, 'encryptionBudget', r.encryptionBudget),
    checkInt(op, 'minDecryptVersion', r.minDecryptVersion),
    checkInt(op, 'expiredRetentionMs', r.expiredRetentionMs),
    checkInt(op, 'createdAt', r.createdAt),
    checkInt(op, 'updatedAt', r.updatedAt),
    checkBuf(op, 'mac', r.mac),
  ];
}

/** Parameters of an l3_keys row in L3_COLUMNS order. */
export function l3Params(op: string, r: L3Record): SqlValue[] {
  return [
    checkText(op, 'tenant', r.tenant),
    checkText(op, 'service', r.service),
    checkInt(op, 'version', r.version),
    checkEnum(op, 'state', r.state, L3_STATES),
    checkInt(op, 'l2Version', r.l2Version),
    checkBuf(op, 'wrapped', r.wrapped),
    checkInt(op, 'createdAt', r.createdAt),
    checkIntOrNull(op, 'activatedAt', r.activatedAt),
    checkIntOrNull(op, 'rotateAfter', r.rotateAfter),
    checkIntOrNull(op, 'expiredAt', r.expiredAt),
    checkIntOrNull(op, 'revokedAt', r.revokedAt),
    checkInt(op, 'encryptions', r.encryptions),
    checkBuf(op, 'mac', r.mac),
  ];
}

// ---- rows → records

export function textOrNullOf(field: string, v: unknown): string | null {
  return v === null ? null : textOf(field, v);
}

function l1Of(row: Row): L1Ref | null {
  const cols = ['l1_provider', 'l1_key_id', 'l1_region'];
  const nulls = cols.filter((c) => row[c] === null).length;
  if (nulls === cols.length) return null;
  if (nulls !== 0) corrupt('l1 (partially null)');
  return {
    provider: textOf('l1_provider', row.l1_provider),
    keyId: textOf('l1_key_id', row.l1_key_id),
    region: textOf('l1_region', row.l1_region),
  };
}

export function tenantOf(row: Row): TenantRecord {
  return {
    id: textOf('id', row.id),
    state: enumOf('state', row.state, TENANT_STATES),
    keyMode: enumOf('key_mode', row.key_mode, KEY_MODES),
    l1: l1Of(row),
    suspendedAt: intOrNullOf('suspended_at', row.suspended_at),
    graceDays: intOrNullOf('grace_days', row.grace_days),
    reason: textOrNullOf('reason', row.reason),
    revokedAt: intOrNullOf('revoked_at', row.revoked_at),
    createdAt: intOf('created_at', row.created_at),
    updatedAt: intOf('updated_at', row.updated_at),
    mac: bufOf('mac', row.mac),
  };
}

export function l3ServiceOf(row: Row): L3ServiceRecord {
  return {
    tenant: textOf('tenant', row.tenant),
    service: textOf('service', row.service),
    rotatePeriodMs: intOf('rotate_period_ms', row.rotate_period_ms),
    encryptionBudget: intOf('encryption_budget', row.encryption_budget),
    minDecryptVersion: intOf('min_decrypt_version', row.min_decrypt_version),
    expiredRetentionMs: intOf('expired_retention_ms', row.expired_retention_ms),
    createdAt: intOf('created_at', row.created_at),
    updatedAt: intOf('updated_at', row.updated_at),
    mac: bufOf('mac', row.mac),
  };
}

export function l3Of(row: Row): L3Record {
  return {
    tenant: textOf('tenant', row.tenant),
    service: textOf('service', row.service),
    version: intOf('version', row.version),
    state: enumOf('state', row.state, L3_STATES),
    l2Version: intOf('l2_version', row.l2_version),
    wrapped: bufOf('wrapped', row.wrapped),
    createdAt: intOf('created_at', row.created_at),
    activatedAt: intOrNullOf('activated_at', row.activated_at),
    rotateAfter: intOrNullOf('rotate_after', row.rotate_after),
    expiredAt: intOrNullOf('expired_at', row.expired_at),
    revokedAt: intOrNullOf('revoked_at', row.revoked_at),
    encryptions: intOf('encryptions', row.encryptions),
    mac: bufOf('mac', row.mac),
  };
}
