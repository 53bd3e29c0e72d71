/**
 * IVK rotation policy (ADR-301/303/304) with the ADR defaults; validated once.
 */
import { KcmError } from '../../../common/src/errors.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

export interface IvkPolicy {
  /** Scheduled rotation: a new version when the ACTIVE one is this old. Default 30 days. */
  rotationPeriodMs: number;
  /** How long a retired version stays in memory as GRACE. Default 24 h, at least 1 h. */
  graceMs: number;
  /** Volume rotation: after this many L2 wraps under one version. Default 2^32. */
  maxWraps: number;
  /** Hard expiry after creation: the version is refused even for unwrapping. Default 730 days. */
  hardExpiryMs: number;
}

export const DEFAULT_IVK_POLICY: IvkPolicy = {
  rotationPeriodMs: 30 * DAY,
  graceMs: 24 * HOUR,
  maxWraps: 2 ** 32,
  hardExpiryMs: 730 * DAY,
};

/** Fills defaults and checks bounds; throws `invalid_config` naming the field. */
export function ivkPolicy(partial: Partial<IvkPolicy> = {}): IvkPolicy {
  const p = { ...DEFAULT_IVK_POLICY, ...partial };
  const bad = (field: keyof IvkPolicy, rule: string) => {
    throw new KcmError('invalid_config', `ivk.${field} ${rule} (got ${p[field]})`);
  };
  if (!Number.isSafeInteger(p.graceMs) || p.graceMs < HOUR) bad('graceMs', 'must be at least 1 hour');
  if (!Number.isSafeInteger(p.rotationPeriodMs) || p.rotationPeriodMs < HOUR)
    bad('rotationPeriodMs', 'must be at least 1 hour');
  if (!Number.isSafeInteger(p.maxWraps) || p.maxWraps < 1 || p.maxWraps > 2 ** 32) bad('maxWraps', 'must be 1 … 2^32');
  if (!Number.isSafeInteger(p.hardExpiryMs) || p.hardExpiryMs <= p.rotationPeriodMs + p.graceMs) {
    bad('hardExpiryMs', 'must exceed rotationPeriodMs + graceMs');
  }
  return p;
}
