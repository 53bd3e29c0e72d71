/**
 * The bench:ci gate over the CI scenarios' results (thresholds in
 * bench/README.md "CI gate"). For every CI scenario, RED when:
 *  1. any request failed (open or closed loop);
 *  2. added p50 (gateway − same-run baseline at p50, median over the trials)
 *     > 0.5 ms, judged when the run's noise floor at p50 ≤ 0.5 ms;
 *  3. added p99 (the same at p99) > 5 ms, judged when the noise floor at p99 ≤ 5 ms;
 *  2b. when (2) cannot be judged (the machine is saturated: the machine alone
 *     delays most requests by more than 0.5 ms), the shift is judged lower in
 *     the distribution instead: added p10 > 0.5 ms, when the noise floor at
 *     p10 ≤ 0.5 ms. A constant delay in the gateway shifts every percentile;
 *     machine noise spares the fastest requests first;
 *  4. an absolute ADR-604 FAIL (p50 > 0.5, p99 > 5, p99.9 > 50 ms) that the
 *     noise rule allows to be judged (bench/harness/judge.ts), on the median
 *     trial (trialMedianSummary: each percentile the median over the trials,
 *     gateway and baseline alike), and a FAIL only when most of the trials
 *     whose own baseline was quiet are over the fail threshold: a machine
 *     stall shows in the interleaved baseline of its trial (two of three on
 *     2026-11-29), a tail of the gateway's own shows in quiet trials;
 *  5. CPU capacity ratio (baseline server CPU µs per request ÷ the gateway's,
 *     closed loop, median of interleaved rounds) below the scenario's floor
 *     (CI_THROUGHPUT_FLOOR): the throughput the gateway would reach next to its
 *     baseline if CPU were the only limit. CPU time per request is measured
 *     from /proc (bench/harness/cpu.ts) and does not grow while a server waits
 *     for the CPU, so other load on the box does not move it the way it moves
 *     wall-clock req/s (reported beside it).
 * When neither (2) nor (2b) can be judged the latency verdict is INCONCLUSIVE
 * (say so; run.ts measures once more if time allows).
 */
import type { NoiseFloor } from './hiccup.ts';
import { ADR604, absoluteVerdict, CI_THROUGHPUT_FLOOR, type GateCheck, type Q } from './judge.ts';
import { type EndpointResult, median, type ScenarioResult, trialMedianSummary, trialPairs } from './measure.ts';

const msText = (us: number) => `${(us / 1000).toFixed(3)} ms`;

/** Added latency at q: median over trials of gateway(q) − baseline(q), µs. */
export function addedMedian(g: EndpointResult, b: EndpointResult, q: Q | 'p10' | 'p90' | 'p9999' | 'max'): number {
  return median(trialPairs(g, b, q).map((p) => p.gateway - p.baseline));
}

/** True when a CI scenario's latency shift could not be judged at p50 nor at p10 (machine saturated). */
export function inconclusive(checks: readonly GateCheck[]): boolean {
  const byScenario = new Map<string, boolean>();
  for (const c of checks) {
    if (!c.check.startsWith('added p50') && !c.check.startsWith('added p10')) continue;
    byScenario.set(c.scenario, (byScenario.get(c.scenario) ?? false) || c.judged);
  }
  return [...byScenario.values()].some((judged) => !judged);
}

export function ciGate(results: readonly ScenarioResult[], noise: NoiseFloor): GateCheck[] {
  const checks: GateCheck[] = [];
  for (const r of results) {
    if (!r.scenario.ci) continue;
    const id = r.scenario.id;
    const g = r.endpoints[0] as EndpointResult;
    const b = r.endpoints[1] as EndpointResult;
    const errs = r.endpoints.reduce((a, e) => a + e.errors, 0);
    checks.push({
      scenario: id,
      check: 'failed requests',
      value: String(errs),
      limit: '0',
      ok: errs === 0,
      judged: true,
    });
    let p50Judged = false;
    for (const q of ['p50', 'p99'] as const) {
      const added = addedMedian(g, b, q);
      const limit = ADR604[q].fail;
      const judged = noise.at[q] <= limit;
      if (q === 'p50') p50Judged = judged;
      checks.push({
        scenario: id,
        check: `added ${ADR604[q].name} (gateway − baseline, median of ${g.perTrial.length} trials)`,
        value: judged
          ? msText(added)
          : `${msText(added)}; not judged: noise floor ${ADR604[q].name} ${msText(noise.at[q])}`,
        limit: `≤ ${limit / 1000} ms`,
        ok: !judged || added <= limit,
        judged,
      });
    }
    if (!p50Judged) {
      const added = addedMedian(g, b, 'p10');
      const judged = noise.at.p10 <= ADR604.p50.fail;
      checks.push({
        scenario: id,
        check: 'added p10 (saturated machine: the shift judged where noise spares requests)',
        value: judged ? msText(added) : `${msText(added)}; not judged: noise floor p10 ${msText(noise.at.p10)}`,
        limit: `≤ ${ADR604.p50.fail / 1000} ms`,
        ok: !judged || added <= ADR604.p50.fail,
        judged,
      });
    }
    for (const q of ['p50', 'p99', 'p999'] as const) {
      const v = absoluteVerdict(trialMedianSummary(g), trialMedianSummary(b), noise, q, trialPairs(g, b, q));
      checks.push({
        scenario: id,
        check: `absolute ${ADR604[q].name} (ADR-604 fail threshold; median of ${Math.max(1, g.perTrial.length)} trials)`,
        value: `${msText(v.measured)}: ${v.verdict} (${v.why})`,
        limit: `≤ ${ADR604[q].fail / 1000} ms when judgeable`,
        ok: v.verdict !== 'FAIL',
        judged: v.verdict !== 'NOISY',
      });
    }
    const floor = CI_THROUGHPUT_FLOOR[id];
    if (floor !== undefined) {
      const cap = median(r.capacityRatioRounds[0] ?? []);
      const rps = median(r.rpsRatioRounds[0] ?? []);
      checks.push({
        scenario: id,
        check: 'CPU capacity ratio: baseline CPU/request ÷ gateway CPU/request (median of rounds)',
        value: `${cap.toFixed(2)}× (${b.cpuPerRequest.toFixed(1)} ÷ ${g.cpuPerRequest.toFixed(1)} µs; wall-clock req/s ratio ${rps.toFixed(2)}×: ${g.rpsMedian.toFixed(0)} ÷ ${b.rpsMedian.toFixed(0)})`,
        limit: `≥ ${floor}×`,
        ok: cap >= floor,
        judged: true,
      });
    }
  }
  return checks;
}
