/**
 * Settings of the key hierarchy (config section `keys`) and of one L3 service
 * key (per (tenant, service), stored in L3ServiceRecord). Validated once, with
 * errors that name the field.
 */
import { KcmError } from '../../../../common/src/errors.ts';
import { GCM_RANDOM_NONCE_LIMIT } from '../../../../native/index.ts';

const DAY = 86_400_000;

export interface KeyHierarchyConfig {
  /** Unwrapped L2 handles kept in locked memory (LRU). */
  l2CacheMax: number;
  /** Unwrapped L3 handles kept in locked memory (LRU). */
  l3CacheMax: number;
  /** Defaults of new service keys. */
  service: ServiceSettings;
  /** Due rotations handled per tick. */
  rotationBatch: number;
  /** How often each linked tenant's L1 is probed by the ticker (0 = only suspended ones). */
  l1ProbeMs: number;
  /** L1 probes per tick at most. */
  l1ProbeBatch: number;
  /**
   * How long a tenant record and a service's settings and versions are served
   * from memory (ms, 0 = never cached). Changes made by this Core apply at
   * once; this bounds how long one made by another replica may go unseen.
   */
  metadataCacheMs: number;
}

/** Per service key (ADR-601). */
export interface ServiceSettings {
  /** Rotate this long after a version became ACTIVE (1 min … 10 years). */
  rotatePeriodMs: number;
  /** Edge-reported encryptions per version; rotation is forced at 90 % of it (1 … 2^32, SP 800-38D §8.3). */
  encryptionBudget: number;
  /** EXPIRED versions are revoked this long after expiry; 0 = kept until revoked by an operator. */
  expiredRetentionMs: number;
}

export const DEFAULT_SERVICE_SETTINGS: ServiceSettings = {
  rotatePeriodMs: 30 * DAY,
  // Half the random-nonce limit: L4 keys wrapped per L3 version stay far below 2^32.
  encryptionBudget: 2 ** 31,
  expiredRetentionMs: 0,
};

export const DEFAULT_KEY_HIERARCHY_CONFIG: KeyHierarchyConfig = {
  l2CacheMax: 10_000,
  l3CacheMax: 100_000,
  service: DEFAULT_SERVICE_SETTINGS,
  rotationBatch: 100,
  l1ProbeMs: 5 * 60_000,
  l1ProbeBatch: 50,
  metadataCacheMs: 1000,
};

/** Forced rotation point of a budget: 90 % of it (at least one encryption before it). */
export function forcedRotationAt(budget: number): number {
  return Math.max(1, Math.floor(budget * 0.9));
}

function int(
  v: unknown,
  field: string,
  min: number,
  max: number,
  dflt: number,
  code: 'invalid_config' | 'bad_request',
) {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
    throw new KcmError(code, `${field} must be an integer from ${min} to ${max}`);
  }
  return v;
}

function object(v: unknown, field: string, code: 'invalid_config' | 'bad_request'): Record<string, unknown> {
  if (v === undefined) return {};
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new KcmError(code, `${field} must be an object`);
  return v as Record<string, unknown>;
}

/**
 * Service settings from `v` over `base`; unknown fields refused. Throws `code`
 * (`bad_request` for API input, `invalid_config` for the file) naming the field.
 */
export function serviceSettings(
  v: unknown,
  base: ServiceSettings = DEFAULT_SERVICE_SETTINGS,
  field = 'settings',
  code: 'invalid_config' | 'bad_request' = 'bad_request',
): ServiceSettings {
  const o = object(v, field, code);
  for (const k of Object.keys(o)) {
    if (!Object.hasOwn(DEFAULT_SERVICE_SETTINGS, k)) throw new KcmError(code, `${field}.${k} is not a setting`);
  }
  return {
    rotatePeriodMs: int(o.rotatePeriodMs, `${field}.rotatePeriodMs`, 60_000, 3650 * DAY, base.rotatePeriodMs, code),
    encryptionBudget: int(
      o.encryptionBudget,
      `${field}.encryptionBudget`,
      1,
      GCM_RANDOM_NONCE_LIMIT,
      base.encryptionBudget,
      code,
    ),
    expiredRetentionMs: int(
      o.expiredRetentionMs,
      `${field}.expiredRetentionMs`,
      0,
      3650 * DAY,
      base.expiredRetentionMs,
      code,
    ),
  };
}

/** The `keys` config section; throws `invalid_config` naming the field. */
export function keyHierarchyConfig(v: unknown): KeyHierarchyConfig {
  const o = object(v, 'keys', 'invalid_config');
  const d = DEFAULT_KEY_HIERARCHY_CONFIG;
  return {
    l2CacheMax: int(o.l2CacheMax, 'keys.l2CacheMax', 1, 10_000_000, d.l2CacheMax, 'invalid_config'),
    l3CacheMax: int(o.l3CacheMax, 'keys.l3CacheMax', 1, 10_000_000, d.l3CacheMax, 'invalid_config'),
    service: serviceSettings(o.service, d.service, 'keys.service', 'invalid_config'),
    rotationBatch: int(o.rotationBatch, 'keys.rotationBatch', 1, 10_000, d.rotationBatch, 'invalid_config'),
    l1ProbeMs: int(o.l1ProbeMs, 'keys.l1ProbeMs', 0, 30 * DAY, d.l1ProbeMs, 'invalid_config'),
    l1ProbeBatch: int(o.l1ProbeBatch, 'keys.l1ProbeBatch', 1, 10_000, d.l1ProbeBatch, 'invalid_config'),
    metadataCacheMs: int(o.metadataCacheMs, 'keys.metadataCacheMs', 0, 60_000, d.metadataCacheMs, 'invalid_config'),
  };
}
