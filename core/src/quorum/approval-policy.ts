/**
 * Quorum settings (ADR-404), validated once at construction:
 *
 * - `required` (M): distinct people a request needs, the proposer counted as
 *   the first of them; so M = 2 (the default) means the proposer plus one
 *   other operator's approval. At least 2 (four eyes), at most 16.
 * - `defaultTtlMs`: how long a request stays open when the proposer names no
 *   expiry: 7 days.
 * - `maxTtlMs`: the longest expiry a proposer may ask for: 30 days, and never
 *   more than 30 days whatever the configuration says.
 */
import { KcmError } from '../../../common/src/errors.ts';

export const DAY_MS = 24 * 60 * 60 * 1000;
/** ADR-404 public defaults. */
export const DEFAULT_REQUIRED = 2;
export const DEFAULT_TTL_MS = 7 * DAY_MS;
export const MAX_TTL_MS = 30 * DAY_MS;
/** Shortest expiry a proposer may ask for: a request nobody can reach in time is noise. */
export const MIN_TTL_MS = 60 * 1000;

export interface ApprovalPolicy {
  required: number;
  defaultTtlMs: number;
  maxTtlMs: number;
}

function check(name: string, v: number, min: number, max: number): number {
  if (!Number.isSafeInteger(v) || v < min || v > max) {
    throw new KcmError('invalid_config', `approvalPolicy: ${name} must be an integer from ${min} to ${max}, got ${v}`);
  }
  return v;
}

/** The policy with defaults filled in; throws `invalid_config` naming the bad field. */
export function approvalPolicy(o: Partial<ApprovalPolicy> = {}): ApprovalPolicy {
  const required = check('required', o.required ?? DEFAULT_REQUIRED, 2, 16);
  const maxTtlMs = check('maxTtlMs', o.maxTtlMs ?? MAX_TTL_MS, MIN_TTL_MS, MAX_TTL_MS);
  const defaultTtlMs = check(
    'defaultTtlMs',
    o.defaultTtlMs ?? Math.min(DEFAULT_TTL_MS, maxTtlMs),
    MIN_TTL_MS,
    maxTtlMs,
  );
  return { required, defaultTtlMs, maxTtlMs };
}

/** The expiry a proposal asks for, or `bad_request` when it is outside MIN_TTL_MS…policy.maxTtlMs. */
export function proposalTtl(policy: ApprovalPolicy, ttlMs: number | undefined): number {
  if (ttlMs === undefined) return policy.defaultTtlMs;
  if (!Number.isSafeInteger(ttlMs) || ttlMs < MIN_TTL_MS || ttlMs > policy.maxTtlMs) {
    throw new KcmError(
      'bad_request',
      `expiry must be from ${MIN_TTL_MS} ms to ${policy.maxTtlMs} ms (30 days at most)`,
    );
  }
  return ttlMs;
}
