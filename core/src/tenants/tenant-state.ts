/**
 * What a tenant's state allows (ADR-503), as pure functions of the record and
 * the time: ACTIVE → encrypt and decrypt; SUSPENDED → decrypt only, until the
 * grace period (30, 60 or 90 days from suspension) ends; REVOKED → nothing.
 */
import { KcmError } from '../../../common/src/errors.ts';
import type { TenantRecord } from '../store/records.ts';

export const GRACE_DAYS = [30, 60, 90] as const;
export type GraceDays = (typeof GRACE_DAYS)[number];
const DAY = 86_400_000;
/** The suspension reason of an automatic suspension; only it is resumed automatically. */
export const L1_UNREACHABLE = 'l1_unreachable';

/** End of the decrypt grace of a suspended tenant (ms epoch), or null. */
export function graceEndsAt(t: TenantRecord): number | null {
  if (t.state !== 'SUSPENDED' || t.suspendedAt === null || t.graceDays === null) return null;
  return t.suspendedAt + t.graceDays * DAY;
}

/**
 * Checks that `t` may decrypt at `now` and returns whether it may also
 * encrypt. Throws `tenant_not_found` (undefined), `tenant_revoked`,
 * `tenant_grace_ended`.
 */
export function usableTenant(t: TenantRecord | undefined, id: string, now: number): { canEncrypt: boolean } {
  if (!t) throw new KcmError('tenant_not_found', id);
  if (t.state === 'REVOKED') throw new KcmError('tenant_revoked', id);
  if (t.state === 'SUSPENDED') {
    const end = graceEndsAt(t);
    if (end !== null && now >= end) throw new KcmError('tenant_grace_ended', id);
    return { canEncrypt: false };
  }
  return { canEncrypt: true };
}

/** Like usableTenant, and throws `tenant_suspended` unless the tenant may encrypt (rotation, new keys). */
export function activeTenant(t: TenantRecord | undefined, id: string, now: number): TenantRecord {
  if (!usableTenant(t, id, now).canEncrypt) throw new KcmError('tenant_suspended', id);
  return t as TenantRecord;
}

/** Throws `bad_request` unless `v` is 30, 60 or 90 (default 30). */
export function graceDays(v: unknown): GraceDays {
  if (v === undefined) return 30;
  if (!GRACE_DAYS.includes(v as GraceDays)) throw new KcmError('bad_request', 'graceDays must be 30, 60 or 90');
  return v as GraceDays;
}

/** Public view of a tenant record (no MAC). */
export type TenantInfo = Omit<TenantRecord, 'mac'> & { graceEndsAt: number | null };

export function tenantInfo(t: TenantRecord): TenantInfo {
  const { mac: _m, ...rest } = t;
  return { ...rest, graceEndsAt: graceEndsAt(t) };
}
