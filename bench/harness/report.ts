/**
 * The run's outputs, all in one directory: report.md (the Markdown summary),
 * results.json (every number), one .hgrm per endpoint per scenario (open-loop
 * latency from the intended send time, values in ms) and per CPU for the
 * hiccup meter, and one SVG percentile plot per scenario.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { MachineFacts } from '../aead/machine.ts';
import { addedMedian, inconclusive } from './gate.ts';
import { gapHistogram, maxOf, type NoiseFloor, type NoiseWindow } from './hiccup.ts';
import { hgrmText, type LatencySummary, ms } from './histogram.ts';
import { ADR604, absoluteVerdict, addedVerdict, BUCKETS_US, bucketOf, type GateCheck, type Q } from './judge.ts';
import {
  type EndpointResult,
  type MeasureConfig,
  median,
  type ScenarioResult,
  trialMedianSummary,
  trialPairs,
} from './measure.ts';
import type { Pinning } from './pinning.ts';
import { histogramPoints, noiseSeries, percentilePlot } from './svg.ts';

export interface RunData {
  mode: 'full' | 'ci';
  date: string;
  machine: MachineFacts;
  loadAverage: number[];
  pinning: Pinning;
  nginx: string | null;
  injectedDelayMs: number;
  config: MeasureConfig;
  noiseWindows: NoiseWindow[];
  noise: NoiseFloor;
  results: ScenarioResult[];
  skipped: { id: string; title: string; reason: string }[];
  failed: { id: string; error: string }[];
  gate?: GateCheck[];
  seconds: number;
}

const COLORS = ['#1f77b4', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2'];
const pct = (x: number) => (Number.isFinite(x) ? `${(x * 100).toFixed(1)}%` : 'n/a');
const ratio = (x: number) => (Number.isFinite(x) ? `${x.toFixed(2)}×` : 'n/a');
const slug = (s: string) =>
  s
    .replace(/[^A-Za-z0-9]+/g, '-')
    .replace(/^-|-$/g, '')
    .toLowerCase();

function latencyCells(s: LatencySummary): string {
  return [s.p50, s.p90, s.p99, s.p999, s.max].map(ms).join(' | ');
}

function endpointFile(r: ScenarioResult, e: EndpointResult): string {
  return `${r.scenario.id}--${slug(e.endpoint.label)}.hgrm`;
}

export function writeReport(d: RunData, outDir: string): string {
  mkdirSync(outDir, { recursive: true });
  const L: string[] = [];
  const files: string[] = ['report.md', 'results.json'];
  L.push(`# OpenKCM benchmark suite: ${d.mode === 'ci' ? '`npm run bench:ci`' : '`npm run bench`'}`, '');
  L.push(`- Date: ${d.date}; run took ${d.seconds.toFixed(0)} s`);
  L.push(
    `- Machine: ${d.machine.cpuModel}, ${d.machine.nproc} CPUs, ${d.machine.platform}, Node ${d.machine.node} (OpenSSL ${d.machine.nodeOpenssl}); load average at start ${d.loadAverage.map((x) => x.toFixed(2)).join(' ')}`,
  );
  L.push(`- Pinning: ${d.pinning.note}`);
  L.push(`- nginx: ${d.nginx ?? 'not installed (its scenarios are skipped)'}`);
  L.push(
    `- Load: open loop at **${d.config.rate} req/s** per target, ${d.config.openSecondsEach} s per target per trial × ${d.config.trials} trial(s), gateway and baselines interleaved in 250 ms blocks; latency from the intended send time. Closed loop: ${d.config.connections} connections, ${d.config.closedRounds} rounds × ${d.config.closedSeconds} s per target, interleaved.`,
  );
  if (d.injectedDelayMs > 0) {
    L.push(
      `- **FAULT INJECTED**: KCM_TEST_HOOKS=1 KCM_BENCH_INJECT_DELAY_MS=${d.injectedDelayMs}: every gateway encrypt waits ${d.injectedDelayMs} ms`,
    );
  }
  L.push('');

  // Noise floor
  L.push('## Machine noise floor (same run)', '');
  L.push(
    'Hiccup meter: one process per CPU spinning on the clock, recording every gap > 20 µs, in windows between the load phases. "Delay at pX" is what a request arriving at a random instant would wait from the machine alone (both CPUs), see bench/README.md.',
    '',
  );
  L.push('| window | CPU | seconds | time lost in gaps | gaps/s | longest gap (ms) |', '|---|---|--:|--:|--:|--:|');
  for (const w of d.noiseWindows) {
    for (const c of w.cpus) {
      const lost = c.gaps.reduce((a, g) => a + g, 0) / (c.seconds * 1e6);
      L.push(
        `| ${w.label} | ${c.cpu} | ${c.seconds.toFixed(1)} | ${pct(lost)} | ${(c.gaps.length / c.seconds).toFixed(0)} | ${ms(maxOf(c.gaps))} |`,
      );
    }
  }
  const n = d.noise.at;
  L.push(
    '',
    `Noise floor (all windows): p50 ${ms(n.p50)} ms, p90 ${ms(n.p90)} ms, p99 ${ms(n.p99)} ms, p99.9 ${ms(n.p999)} ms, p99.99 ${ms(n.p9999)} ms.`,
    '',
  );
  for (const cpu of Object.keys(d.noise.maxGap)) {
    const f = `hiccups-cpu${cpu}.hgrm`;
    writeFileSync(join(outDir, f), hgrmText(gapHistogram(d.noiseWindows, cpu)));
    files.push(f);
  }

  // Summary
  L.push('## Latency and throughput', '');
  L.push(
    "Open-loop latency (ms) at the fixed rate; throughput from the closed loop, with the server's CPU time and run-queue wait per request over the same rounds (/proc schedstat, whole process tree). Ratios are to the scenario's bare baseline (row 2 of each scenario) from this run: latency ratio p50 / p99; throughput ratio = median of per-round req/s ratios; CPU capacity ratio = baseline CPU/request ÷ this row's (the throughput ratio if CPU were the only limit; robust to other load).",
    '',
  );
  L.push(
    '| scenario | endpoint | p50 | p90 | p99 | p99.9 | max | errors | req/s (closed) | server CPU µs/req | run-queue wait µs/req | lat. ratio p50 / p99 | thr. ratio | CPU capacity ratio |',
    '|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|',
  );
  for (const r of d.results) {
    const b = r.endpoints[1] as EndpointResult;
    r.endpoints.forEach((e, i) => {
      const lr = i === 1 ? '1' : `${ratio(e.summary.p50 / b.summary.p50)} / ${ratio(e.summary.p99 / b.summary.p99)}`;
      const tr = i === 1 ? '1' : ratio(median(r.rpsRatioRounds[i] ?? []));
      const cr = i === 1 ? '1' : ratio(median(r.capacityRatioRounds[i] ?? []));
      L.push(
        `| ${i === 0 ? r.scenario.id : ''} | ${e.endpoint.label} | ${latencyCells(e.summary)} | ${e.errors}${e.firstError ? ` (${e.firstError})` : ''} | ${e.rpsMedian.toFixed(0)} | ${e.cpuPerRequest.toFixed(1)} | ${e.waitPerRequest.toFixed(1)} | ${lr} | ${tr} | ${cr} |`,
      );
    });
  }
  L.push('');

  // Added latency
  L.push('## Added latency over the same-run baseline', '');
  L.push(
    'gateway(q) − baseline(q) in ms, median over the trials (each trial interleaves both). Noise floor of this run beside it.',
    '',
  );
  L.push(
    '| scenario | added p50 | added p90 | added p99 | added p99.9 | noise p50 | noise p99 | noise p99.9 |',
    '|---|--:|--:|--:|--:|--:|--:|--:|',
  );
  for (const r of d.results) {
    const g = r.endpoints[0] as EndpointResult;
    const b = r.endpoints[1] as EndpointResult;
    L.push(
      `| ${r.scenario.id} | ${(['p50', 'p90', 'p99', 'p999'] as const).map((q) => ms(addedMedian(g, b, q))).join(' | ')} | ${ms(n.p50)} | ${ms(n.p99)} | ${ms(n.p999)} |`,
    );
  }
  L.push('');

  // ADR-604 verdicts
  const adr = d.results.filter((r) => r.scenario.adr604);
  if (adr.length > 0) {
    L.push('## ADR-604 verdict', '');
    L.push(
      "Targets / failure thresholds: p50 0.2 / 0.5 ms, p99 1 / 5 ms, p99.9 10 / 50 ms. Absolute: PASS when ≤ target whatever the noise; WARN (> target) or FAIL (> fail) only when the run was quiet enough to judge (noise floor and baseline at that percentile ≤ half the threshold), else NOISY = machine too noisy to judge absolute tails. Gateway and baseline at q are the median trial (each percentile the median over the trials; the merged figures are in the latency table), and a FAIL needs most of the trials whose own interleaved baseline was quiet (≤ half the threshold) over the fail threshold (a machine stall shows in its trial's baseline too; a tail of the gateway's own shows in quiet trials), so machine stalls do not decide a verdict; each trial's value is listed. Added: the gateway's latency over its same-run baseline against the same thresholds.",
      '',
    );
    L.push(
      '| scenario | q | gateway (ms) | gateway per trial (ms) | bucket | baseline (ms) | noise floor (ms) | target | fail | absolute | added (ms) | added verdict |',
      '|---|---|--:|--:|---|--:|--:|--:|--:|---|--:|---|',
    );
    for (const r of adr) {
      const g = r.endpoints[0] as EndpointResult;
      const b = r.endpoints[1] as EndpointResult;
      const gm = trialMedianSummary(g);
      const bm = trialMedianSummary(b);
      for (const q of ['p50', 'p99', 'p999'] as Q[]) {
        const v = absoluteVerdict(gm, bm, d.noise, q, trialPairs(g, b, q));
        const added = addedMedian(g, b, q);
        const each = g.perTrial.map((t) => ms(t[q])).join(' / ') || ms(g.summary[q]);
        L.push(
          `| ${q === 'p50' ? r.scenario.id : ''} | ${ADR604[q].name} | ${ms(gm[q])} | ${each} | ${bucketOf(gm[q])} | ${ms(bm[q])} | ${ms(d.noise.at[q])} | ${ADR604[q].target / 1000} | ${ADR604[q].fail / 1000} | **${v.verdict}**${v.verdict === 'PASS' ? '' : `: ${v.why}`} | ${ms(added)} | ${addedVerdict(added, q)} |`,
        );
      }
    }
    L.push('');
    L.push(
      "Share of requests at or below each ADR-604 bucket bound (cumulative, as the gateway's Prometheus histogram would count them):",
      '',
    );
    L.push(`| scenario | endpoint | ${BUCKETS_US.map((x) => `≤ ${x / 1000} ms`).join(' | ')} |`);
    L.push(`|---|---|${BUCKETS_US.map(() => '--:').join('|')}|`);
    for (const r of adr) {
      for (const e of r.endpoints.slice(0, 2)) {
        const h = e.latency;
        const shares = BUCKETS_US.map((u) => (h.totalCount === 0 ? Number.NaN : countAtOrBelow(h, u) / h.totalCount));
        L.push(`| ${r.scenario.id} | ${e.endpoint.label} | ${shares.map(pct).join(' | ')} |`);
      }
    }
    L.push('');
  }

  // Peers
  const peerRows: string[] = [];
  for (const r of d.results) {
    r.endpoints.forEach((e, i) => {
      if (i < 2) return;
      const g = r.endpoints[0] as EndpointResult;
      peerRows.push(
        `| ${r.scenario.id} | ${g.endpoint.label} vs ${e.endpoint.label} | ${ratio(g.summary.p50 / e.summary.p50)} | ${ratio(g.summary.p99 / e.summary.p99)} | ${ms(g.summary.p50 - e.summary.p50)} | ${ratio(g.rpsMedian / e.rpsMedian)} | ${g.cpuPerRequest > 0 && e.cpuPerRequest > 0 ? ratio(e.cpuPerRequest / g.cpuPerRequest) : '–'} |`,
      );
    });
  }
  if (peerRows.length > 0) {
    L.push(
      '## Against peers (same run)',
      '',
      "Throughput ratio = the gateway's closed-loop req/s ÷ the peer's. CPU capacity ratio = the peer's server CPU µs/request ÷ the gateway's: how many more requests the gateway serves per CPU-second. For the proxy rows the two differ because the sample app shares the proxies' CPU: the req/s ratio is that of the whole proxy-plus-app system, the CPU ratio that of the proxies alone.",
      '',
    );
    L.push(
      '| scenario | comparison | p50 ratio | p99 ratio | p50 difference (ms) | throughput ratio | CPU capacity ratio |',
      '|---|---|--:|--:|--:|--:|--:|',
    );
    L.push(...peerRows, '');
  }

  if (d.skipped.length > 0 || d.failed.length > 0) {
    L.push('## Not measured', '', '| scenario | why |', '|---|---|');
    for (const s of d.skipped) L.push(`| ${s.id} (${s.title}) | skipped: ${s.reason} |`);
    for (const f of d.failed) L.push(`| ${f.id} | **run failed**: ${f.error} |`);
    L.push('');
  }

  if (d.gate) {
    const red = d.gate.some((c) => !c.ok);
    const unsure = !red && inconclusive(d.gate);
    L.push(
      `## CI gate: ${red ? '**RED**' : unsure ? '**GREEN, latency INCONCLUSIVE** (machine saturated: the latency shift could not be judged)' : '**GREEN**'}`,
      '',
    );
    L.push('| scenario | check | value | limit | result |', '|---|---|---|---|---|');
    for (const c of d.gate) {
      L.push(
        `| ${c.scenario} | ${c.check} | ${c.value} | ${c.limit} | ${c.ok ? (c.judged ? 'ok' : 'not judged (noise)') : '**FAIL**'} |`,
      );
    }
    L.push('');
  }

  // Files: HDR + SVG per scenario
  for (const r of d.results) {
    for (const e of r.endpoints) {
      const f = endpointFile(r, e);
      writeFileSync(join(outDir, f), hgrmText(e.latency));
      files.push(f);
    }
    const series = r.endpoints.map((e, i) => ({
      label: `${e.endpoint.label}: p50 ${ms(e.summary.p50)} / p99 ${ms(e.summary.p99)} ms`,
      color: COLORS[i % COLORS.length] as string,
      points: histogramPoints(e.latency),
    }));
    series.push(noiseSeries(d.noise.at) as (typeof series)[number]);
    const svg = `${r.scenario.id}.svg`;
    writeFileSync(
      join(outDir, svg),
      percentilePlot(`${r.scenario.title} at ${d.config.rate} req/s (open loop)`, series, r.scenario.adr604),
    );
    files.push(svg);
  }
  L.push('## Files', '', ...files.map((f) => `- \`${f}\``), '');
  const md = `${L.join('\n')}\n`;
  writeFileSync(join(outDir, 'report.md'), md);
  writeFileSync(join(outDir, 'results.json'), `${JSON.stringify(jsonOf(d), null, 2)}\n`);
  return md;
}

function countAtOrBelow(h: EndpointResult['latency'], us: number): number {
  // Percentile search: the smallest percentile whose value exceeds `us`.
  let lo = 0;
  let hi = 100;
  if (h.getValueAtPercentile(100) <= us) return h.totalCount;
  if (h.getValueAtPercentile(0) > us) return 0;
  for (let i = 0; i < 50; i++) {
    const mid = (lo + hi) / 2;
    if (h.getValueAtPercentile(mid) <= us) lo = mid;
    else hi = mid;
  }
  return Math.round((lo / 100) * h.totalCount);
}

function jsonOf(d: RunData): unknown {
  return {
    ...d,
    results: d.results.map((r) => ({
      scenario: r.scenario,
      seconds: r.seconds,
      rpsRatioRounds: r.rpsRatioRounds,
      endpoints: r.endpoints.map((e) => ({
        label: e.endpoint.label,
        role: e.endpoint.role,
        front: e.endpoint.front,
        server: e.endpoint.server,
        latencyUs: e.summary,
        serviceTimeUs: { p50: e.service.getValueAtPercentile(50), p99: e.service.getValueAtPercentile(99) },
        perTrialUs: e.perTrial,
        rps: e.rps,
        rpsMedian: e.rpsMedian,
        errors: e.errors,
        firstError: e.firstError,
      })),
    })),
    noiseWindows: d.noiseWindows.map((w) => ({
      label: w.label,
      cpus: w.cpus.map((c) => ({ cpu: c.cpu, seconds: c.seconds, reads: c.reads, gaps: c.gaps.length })),
    })),
  };
}
