/**
 * Reconnect delays: exponential with full jitter (delay drawn uniformly from
 * [0, min(max, base·2^attempt)]), so many edges cut off by one Core restart
 * do not reconnect in lockstep.
 */
export interface BackoffPolicy {
  baseMs: number;
  maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: 100, maxMs: 10_000 };

/** The delay before attempt `attempt` (0-based); `random` returns [0, 1). */
export function backoffDelay(p: BackoffPolicy, attempt: number, random: () => number = Math.random): number {
  const cap = Math.min(p.maxMs, p.baseMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * cap);
}
