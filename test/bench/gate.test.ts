/**
 * The bench:ci gate (bench/harness/gate.ts) on made-up results: which checks
 * go red, and that machine stalls in some trials do not fail the absolute
 * tail checks while a tail in every trial does.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ciGate } from '../../bench/harness/gate.ts';
import type { NoiseFloor } from '../../bench/harness/hiccup.ts';
import type { LatencySummary } from '../../bench/harness/histogram.ts';
import { type EndpointResult, type ScenarioResult, trialMedianSummary } from '../../bench/harness/measure.ts';

/** A latency summary (µs) with the given p50 and p99; the other percentiles follow from them. */
function lat(p50: number, p99: number): LatencySummary {
  return {
    count: 3000,
    p10: p50 * 0.8,
    p50,
    p90: p50 * 1.5,
    p99,
    p999: p99 * 1.5,
    p9999: p99 * 2,
    max: p99 * 3,
    mean: p50,
  };
}

function endpoint(label: string, trials: LatencySummary[], cpu: number): EndpointResult {
  // The merged histogram's tail is about the worst trial's.
  const merged = { ...(trials[0] as LatencySummary) };
  for (const t of trials) {
    merged.p99 = Math.max(merged.p99, t.p99);
    merged.p999 = Math.max(merged.p999, t.p999);
  }
  return {
    endpoint: { label } as EndpointResult['endpoint'],
    latency: {} as EndpointResult['latency'],
    service: {} as EndpointResult['service'],
    summary: merged,
    perTrial: trials,
    rps: [10_000],
    rpsMedian: 10_000,
    cpuPerRequest: cpu,
    waitPerRequest: 0,
    errors: 0,
  };
}

function scenario(gateway: LatencySummary[], baseline: LatencySummary[]): ScenarioResult {
  return {
    scenario: { id: 'direct-decrypt-1KB', ci: true } as ScenarioResult['scenario'],
    endpoints: [endpoint('gateway', gateway, 70), endpoint('baseline', baseline, 21)],
    rpsRatioRounds: [[0.3]],
    capacityRatioRounds: [[0.3]],
    seconds: 30,
  };
}

/** A quiet enough machine: p99 noise 2 ms (≤ half the 5 ms failure threshold). */
const NOISE: NoiseFloor = {
  at: { p10: 0, p50: 0, p90: 22, p99: 2010, p999: 5070, p9999: 7170 },
  lostFraction: {},
  maxGap: {},
  gapsPerSecond: {},
  seconds: 6,
};

const red = (r: ScenarioResult) => ciGate([r], NOISE).filter((c) => !c.ok);

describe('bench:ci gate', () => {
  const base = [lat(150, 1300), lat(148, 1350), lat(149, 600)];

  test('the run that failed CI on 2026-11-29: one trial with an 87 ms p99 (machine stall) is green', () => {
    const r = scenario([lat(210, 2670), lat(207, 2360), lat(212, 87_400)], base);
    assert.deepEqual(red(r), []);
    // The merged view still shows the stall; the median trial does not.
    assert.equal(r.endpoints[0]?.summary.p99, 87_400);
    assert.equal(trialMedianSummary(r.endpoints[0] as EndpointResult).p99, 2670);
  });

  test('the run that failed CI on 2026-11-29 (second): p99 over 5 ms in two trials of three, 1.8 ms in the third, is green', () => {
    // Encrypt 1 KB on a box losing 8–13% of its time in gaps of up to 10 ms:
    // gateway p99 6.80 / 5.43 / 1.81 ms, baseline 3.27 / 2.49 / 2.36 ms.
    const r = scenario(
      [lat(341, 6799), lat(385, 5435), lat(251, 1809)],
      [lat(240, 3269), lat(293, 2491), lat(196, 2355)],
    );
    assert.deepEqual(red(r), []);
    const abs = ciGate([r], NOISE).find((c) => c.check.startsWith('absolute p99 '));
    assert.ok(abs && !abs.judged && abs.value.includes('1 of the 2 trials whose baseline was quiet'), abs?.value);
  });

  test('a gateway over the fail threshold in two of three trials whose baselines were quiet is red', () => {
    // A tail of the gateway's own (a pause every few seconds) that misses one 3 s trial.
    const r = scenario([lat(210, 6500), lat(207, 6800), lat(212, 4900)], base);
    const checks = red(r).map((c) => c.check);
    assert.ok(
      checks.some((c) => c.startsWith('absolute p99 ')),
      checks.join('\n'),
    );
  });

  test('a gateway over the fail threshold in every trial is red on absolute p99 and p99.9', () => {
    const r = scenario([lat(210, 34_000), lat(207, 40_000), lat(212, 87_400)], base);
    const checks = red(r).map((c) => c.check);
    assert.ok(
      checks.some((c) => c.startsWith('absolute p99 ')),
      checks.join('\n'),
    );
    assert.ok(checks.some((c) => c.startsWith('absolute p99.9')));
  });

  test('a slow median is red on absolute p50 and on added p50', () => {
    const r = scenario([lat(800, 2000), lat(760, 2100), lat(820, 2200)], base);
    const checks = red(r).map((c) => c.check);
    assert.ok(checks.some((c) => c.startsWith('absolute p50')));
    assert.ok(checks.some((c) => c.startsWith('added p50')));
  });

  test('absolute tails are not judged on a machine too noisy for them', () => {
    const r = scenario([lat(210, 40_000), lat(207, 40_000), lat(212, 87_400)], base);
    const loud = { ...NOISE, at: { ...NOISE.at, p99: 4000, p999: 30_000 } };
    const abs = ciGate([r], loud).filter((c) => c.check.startsWith('absolute p99'));
    assert.ok(abs.length === 2 && abs.every((c) => c.ok && !c.judged));
  });

  test('failed requests and a gateway twice as heavy per request are red', () => {
    const r = scenario([lat(210, 2000), lat(207, 2000), lat(212, 2000)], base);
    (r.endpoints[0] as EndpointResult).errors = 1;
    r.capacityRatioRounds = [[0.12]];
    const checks = red(r).map((c) => c.check);
    assert.ok(checks.includes('failed requests'));
    assert.ok(checks.some((c) => c.startsWith('CPU capacity ratio')));
  });

  test('trialMedianSummary: the merged summary when there are no trials, else the median per percentile', () => {
    const one = endpoint('x', [lat(100, 1000)], 1);
    assert.deepEqual(trialMedianSummary({ summary: one.summary, perTrial: [] }), one.summary);
    const m = trialMedianSummary({ summary: one.summary, perTrial: [lat(100, 1000), lat(300, 9000), lat(200, 2000)] });
    assert.equal(m.p50, 200);
    assert.equal(m.p99, 2000);
    assert.equal(m.count, one.summary.count);
  });
});
