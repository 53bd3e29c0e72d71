/**
 * ADR-604 verdicts and the bench:ci gate.
 *
 * ADR-604 (latency of L4 operations at the client): p50 < 0.2 ms (fail > 0.5),
 * p99 < 1 ms (fail > 5), p99.9 < 10 ms (fail > 50); histogram buckets 0.1,
 * 0.25, 0.5, 1, 2.5, 5, 10 ms, +Inf.
 *
 * Absolute verdict at percentile q (a noisy machine only ever adds latency):
 *  - measured ≤ target                     → PASS (whatever the noise);
 *  - target < measured ≤ fail threshold    → WARN, judged only when the noise
 *    floor at q (bench/harness/hiccup.ts) ≤ target/2;
 *  - measured > fail threshold             → FAIL, judged only when the noise
 *    floor at q ≤ fail/2 AND the same run's bare baseline at q ≤ fail/2 (the
 *    machine alone, and the same front with no crypto, use at most half the
 *    budget: a FAIL fails CI, so it must be the gateway's) AND, when the run
 *    had trials, most of the quiet trials are over the fail threshold (a
 *    quiet trial: its own interleaved baseline at q ≤ fail/2). The noise floor
 *    is measured between load phases, not during them; a machine stall inside
 *    a trial usually shows in that trial's baseline too (its blocks alternate
 *    with the gateway's every 250 ms), so such a trial is not held against the
 *    gateway, and a stall that spared the baseline in one trial is outvoted,
 *    while a tail of the gateway's own shows in most quiet trials;
 *  - otherwise                             → NOISY: "machine too noisy to judge absolute tails".
 *
 * Added latency at q = gateway(q) − baseline(q), same run, same rate,
 * interleaved blocks; judged against the same thresholds with no noise
 * condition (noise hits both alike).
 */
import type { NoiseFloor } from './hiccup.ts';
import type { LatencySummary } from './histogram.ts';

export type Q = 'p50' | 'p99' | 'p999';

export const ADR604: Record<Q, { name: string; target: number; fail: number }> = {
  p50: { name: 'p50', target: 200, fail: 500 },
  p99: { name: 'p99', target: 1000, fail: 5000 },
  p999: { name: 'p99.9', target: 10_000, fail: 50_000 },
};

/** ADR-604 histogram bucket bounds (µs), +Inf implied. */
export const BUCKETS_US = [100, 250, 500, 1000, 2500, 5000, 10_000] as const;

export type Verdict = 'PASS' | 'WARN' | 'FAIL' | 'NOISY';

export interface AbsoluteVerdict {
  q: Q;
  measured: number;
  verdict: Verdict;
  why: string;
}

function quiet(noise: NoiseFloor, baseline: LatencySummary | null, q: Q, threshold: number): string | null {
  const n = noise.at[q];
  if (n > threshold / 2) return `noise floor ${ADR604[q].name} ${(n / 1000).toFixed(2)} ms > ${threshold / 2000} ms`;
  const b = baseline?.[q];
  if (b !== undefined && b > threshold / 2) {
    return `baseline ${ADR604[q].name} ${(b / 1000).toFixed(2)} ms > ${threshold / 2000} ms`;
  }
  return null;
}

/** One trial's value at q: the gateway's and its interleaved baseline's (µs). */
export interface TrialPair {
  gateway: number;
  baseline: number;
}

/**
 * The verdict at q for `g` (the gateway's median trial) next to `baseline`
 * (the baseline's median trial); `trials`: each trial's pair at q (empty
 * when there were none: `g` is then the one measurement).
 */
export function absoluteVerdict(
  g: LatencySummary,
  baseline: LatencySummary,
  noise: NoiseFloor,
  q: Q,
  trials: readonly TrialPair[] = [],
): AbsoluteVerdict {
  const t = ADR604[q];
  const x = g[q];
  if (x <= t.target) return { q, measured: x, verdict: 'PASS', why: `≤ target ${t.target / 1000} ms` };
  const loud = x > t.fail ? quiet(noise, baseline, q, t.fail) : quiet(noise, null, q, t.target);
  if (loud) return { q, measured: x, verdict: 'NOISY', why: `machine too noisy to judge absolute tails (${loud})` };
  if (x > t.fail && trials.length > 0) {
    const calm = trials.filter((p) => p.baseline <= t.fail / 2);
    const over = calm.filter((p) => p.gateway > t.fail).length;
    if (over * 2 <= calm.length) {
      return {
        q,
        measured: x,
        verdict: 'NOISY',
        why: `over the fail threshold ${t.fail / 1000} ms in ${over} of the ${calm.length} trials whose baseline was quiet (≤ ${t.fail / 2000} ms): the other trials' baselines show a machine stall`,
      };
    }
  }
  return x > t.fail
    ? { q, measured: x, verdict: 'FAIL', why: `> fail ${t.fail / 1000} ms` }
    : { q, measured: x, verdict: 'WARN', why: `> target ${t.target / 1000} ms, ≤ fail ${t.fail / 1000} ms` };
}

export function addedVerdict(added: number, q: Q): Verdict {
  const t = ADR604[q];
  return added <= t.target ? 'PASS' : added <= t.fail ? 'WARN' : 'FAIL';
}

/** The ADR-604 bucket a value falls in, as Prometheus `le` text. */
export function bucketOf(us: number): string {
  const b = BUCKETS_US.find((x) => us <= x);
  return b === undefined ? '+Inf' : `le ${b / 1000} ms`;
}

/**
 * Throughput floors of bench:ci: CPU capacity ratio (bare baseline's server
 * CPU per request ÷ the gateway's, same run). Measured 2026-11-28 on a
 * loaded 2-vCPU box: encrypt 1 KB 0.19× (168 vs 32 µs), decrypt 1 KB
 * 0.30–0.35×. After the pipeline's fixed costs went (2026-11-29), CI gave
 * encrypt 0.31× on a box losing 13 % of its time and 0.46× on a calmer one
 * (47 vs 21.7 µs), decrypt 0.27–0.36×. Floors at about half the worst of
 * these, so a gateway that gets ~2× heavier per request is red.
 */
export const CI_THROUGHPUT_FLOOR: Record<string, number> = {
  'direct-encrypt-1KB': 0.15,
  'direct-decrypt-1KB': 0.15,
};

export interface GateCheck {
  scenario: string;
  check: string;
  value: string;
  limit: string;
  ok: boolean;
  judged: boolean;
}
