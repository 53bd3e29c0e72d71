import { KcmError } from '../errors.ts';

/** ADR-103: tenant ids are 1–40 characters of `A-Z a-z 0-9 - . _ ~`, never reused. */
export const TENANT_ID_MAX = 40;
/** Key ids (L3 service key names and internal key names): 1–64 characters of the same set. */
export const KEY_ID_MAX = 64;
/** Key versions are uint32 and start at 1 (0 means "no version", used only for L4 data keys). */
export const KEY_VERSION_MAX = 0xffff_ffff;

const ID_CHARS = /^[A-Za-z0-9._~-]+$/;

/** True when `s` is a valid tenant id. */
export function isTenantId(s: string): boolean {
  return s.length >= 1 && s.length <= TENANT_ID_MAX && ID_CHARS.test(s);
}

/** True when `s` is a valid key id. */
export function isKeyId(s: string): boolean {
  return s.length >= 1 && s.length <= KEY_ID_MAX && ID_CHARS.test(s);
}

/** True when `v` is a usable key version (1 … 2^32−1). */
export function isKeyVersion(v: number): boolean {
  return Number.isInteger(v) && v >= 1 && v <= KEY_VERSION_MAX;
}

/** Throws `invalid_tenant_id` (naming the value's length, not the value) unless valid. */
export function assertTenantId(s: unknown): asserts s is string {
  if (typeof s !== 'string' || !isTenantId(s)) {
    throw new KcmError('invalid_tenant_id', `need 1-${TENANT_ID_MAX} characters of A-Z a-z 0-9 - . _ ~`);
  }
}

/** Throws `invalid_key_id` unless valid. */
export function assertKeyId(s: unknown): asserts s is string {
  if (typeof s !== 'string' || !isKeyId(s)) {
    throw new KcmError('invalid_key_id', `need 1-${KEY_ID_MAX} characters of A-Z a-z 0-9 - . _ ~`);
  }
}

/** Throws `invalid_key_version` unless 1 … 2^32−1. */
export function assertKeyVersion(v: unknown): asserts v is number {
  if (typeof v !== 'number' || !isKeyVersion(v)) {
    throw new KcmError('invalid_key_version', `need an integer from 1 to ${KEY_VERSION_MAX}`);
  }
}
