/**
 * The one retry policy for every seal provider (ADR-501): exponential backoff
 * with full jitter (delay before retry n = random() × min(maxMs, baseMs × 2^(n-1)),
 * AWS Architecture Blog, "Exponential Backoff and Jitter", 2015), retrying
 * only SealProviderError with `retryable` (rate_limited, unavailable).
 *
 * Errors that are not SealProviderError are rethrown at once, unchanged and
 * unretried: providers normalise every failure they know of, so anything else
 * is a bug (a TypeError, a broken invariant) that retrying would only delay
 * and wrapping as `unavailable` would disguise as an outage.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { SealProviderError } from './seal-provider.ts';

export interface RetryOptions {
  /** Total attempts including the first; integer ≥ 1. */
  attempts: number;
  /** Backoff base in ms (cap of the first retry's delay); ≥ 0. */
  baseMs: number;
  /** Cap of any delay in ms; ≥ baseMs. */
  maxMs: number;
  /** Aborts the wait between attempts and prevents further attempts; rejects with `signal.reason`. */
  signal?: AbortSignal;
  /** Called before each wait with the error, the attempt that failed (1-based) and the chosen delay. */
  onRetry?: (err: SealProviderError, attempt: number, delayMs: number) => void;
  /** Injectable wait (tests); default node:timers/promises setTimeout honouring `signal`. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Injectable uniform [0, 1) source for the jitter (tests); default Math.random (jitter needs no secrecy). */
  random?: () => number;
}

/**
 * Calls `fn(attempt)` until it resolves, a non-retryable error occurs, or
 * `attempts` calls have failed; then rethrows the last error. Throws RangeError
 * (naming the option) for invalid options, before calling `fn`.
 */
export async function withRetry<T>(fn: (attempt: number) => Promise<T>, opts: RetryOptions): Promise<T> {
  validate(opts);
  const sleep = opts.sleep ?? defaultSleep;
  const random = opts.random ?? Math.random;
  for (let attempt = 1; ; attempt++) {
    opts.signal?.throwIfAborted();
    try {
      return await fn(attempt);
    } catch (err) {
      if (!(err instanceof SealProviderError) || !err.retryable || attempt >= opts.attempts) throw err;
      const ms = backoffDelay(attempt, opts.baseMs, opts.maxMs, random);
      opts.onRetry?.(err, attempt, ms);
      try {
        await sleep(ms, opts.signal);
      } catch (sleepErr) {
        opts.signal?.throwIfAborted();
        throw sleepErr;
      }
    }
  }
}

/** Full-jitter delay before the retry that follows failed attempt `attempt` (1-based). */
export function backoffDelay(
  attempt: number,
  baseMs: number,
  maxMs: number,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** (attempt - 1));
  return Math.floor(random() * ceiling);
}

function validate(opts: RetryOptions): void {
  if (!Number.isInteger(opts?.attempts) || opts.attempts < 1) {
    throw new RangeError(`withRetry: attempts must be an integer >= 1 (got ${opts?.attempts})`);
  }
  if (!Number.isFinite(opts.baseMs) || opts.baseMs < 0) {
    throw new RangeError(`withRetry: baseMs must be a finite number >= 0 (got ${opts.baseMs})`);
  }
  if (!Number.isFinite(opts.maxMs) || opts.maxMs < opts.baseMs) {
    throw new RangeError(`withRetry: maxMs must be a finite number >= baseMs (got ${opts.maxMs})`);
  }
}

async function defaultSleep(ms: number, signal?: AbortSignal): Promise<void> {
  await delay(ms, undefined, signal ? { signal } : {});
}
