/**
 * The machine's noise floor, measured in the same run as the scenarios: one
 * spinning hiccup meter per watched CPU ({@link ./hiccup-child.ts}), all at
 * once, in windows between the load phases (a spinning meter beside a server
 * on its CPU would steal that CPU from the server, so they never overlap).
 *
 * From the gaps a meter saw, {@link noiseFloor} derives the delay a request
 * arriving at a random instant would suffer from the machine alone: an instant
 * inside a gap of length g waits the rest of it (uniform on 0…g), so
 *   P(delay > d) = Σ over gaps g > d of (g − d) / T.
 * A request needs both CPUs (load generator and server), so the CPUs' tail
 * probabilities are added (a union bound: slightly pessimistic). The noise
 * floor at percentile q is the smallest d with P(delay > d) ≤ 1 − q.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { type Histogram, newHistogram, recordMicros } from './histogram.ts';
import { pinnedCommand } from './pinning.ts';

const CHILD = fileURLToPath(new URL('./hiccup-child.ts', import.meta.url));

export interface CpuHiccups {
  cpu: number | 'unpinned';
  seconds: number;
  reads: number;
  /** Gap lengths, µs. */
  gaps: number[];
}

export interface NoiseWindow {
  label: string;
  cpus: CpuHiccups[];
}

function meter(cpu: number | undefined, seconds: number): Promise<CpuHiccups> {
  const [cmd, args] = pinnedCommand(cpu, process.execPath, ['--import', 'tsx', CHILD, '--seconds', String(seconds)]);
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.once('error', reject);
    child.once('exit', (code) => {
      if (code !== 0) return reject(new Error(`hiccup meter on CPU ${cpu ?? 'any'} exited with ${code}`));
      const r = JSON.parse(out) as { seconds: number; reads: number; gaps: number[] };
      resolve({ cpu: cpu ?? 'unpinned', ...r });
    });
  });
}

/** Runs one meter per CPU of `cpus` (or one unpinned meter when `pinned` is false), concurrently. */
export async function measureNoise(
  label: string,
  cpus: readonly number[],
  pinned: boolean,
  seconds: number,
): Promise<NoiseWindow> {
  const list = pinned ? cpus.map((c) => meter(c, seconds)) : [meter(undefined, seconds)];
  return { label, cpus: await Promise.all(list) };
}

export interface NoiseFloor {
  /** Delay (µs) at p50, p90, p99, p99.9, p99.99 from the machine alone. */
  at: { p10: number; p50: number; p90: number; p99: number; p999: number; p9999: number };
  /** Share of wall time lost in gaps, per CPU (0…1). */
  lostFraction: Record<string, number>;
  /** Longest gap seen (µs), per CPU. */
  maxGap: Record<string, number>;
  /** Gaps per second, per CPU. */
  gapsPerSecond: Record<string, number>;
  seconds: number;
}

/** Largest value (0 for none), without spreading: a window can hold 10^5+ gaps. */
export function maxOf(xs: readonly number[]): number {
  let m = 0;
  for (const x of xs) if (x > m) m = x;
  return m;
}

function tailProbability(per: readonly { gaps: readonly number[]; seconds: number }[], d: number): number {
  let p = 0;
  for (const c of per) {
    let s = 0;
    for (const g of c.gaps) if (g > d) s += g - d;
    p += s / (c.seconds * 1e6);
  }
  return p;
}

/** The noise floor of all windows together (gaps of the same CPU pooled). */
export function noiseFloor(windows: readonly NoiseWindow[]): NoiseFloor {
  const byCpu = new Map<string, { gaps: number[]; seconds: number }>();
  for (const w of windows) {
    for (const c of w.cpus) {
      const k = String(c.cpu);
      const e = byCpu.get(k) ?? { gaps: [], seconds: 0 };
      for (const g of c.gaps) e.gaps.push(g);
      e.seconds += c.seconds;
      byCpu.set(k, e);
    }
  }
  const per = [...byCpu.values()];
  const maxGap = per.reduce((m, c) => Math.max(m, maxOf(c.gaps)), 0);
  const quantile = (q: number) => {
    let lo = 0;
    let hi = maxGap;
    if (tailProbability(per, 0) <= 1 - q) return 0;
    for (let i = 0; i < 40 && hi - lo > 0.5; i++) {
      const mid = (lo + hi) / 2;
      if (tailProbability(per, mid) <= 1 - q) hi = mid;
      else lo = mid;
    }
    return Math.round(hi);
  };
  const rec = (f: (c: { gaps: number[]; seconds: number }) => number) =>
    Object.fromEntries([...byCpu].map(([k, c]) => [k, f(c)]));
  return {
    at: {
      p10: quantile(0.1),
      p50: quantile(0.5),
      p90: quantile(0.9),
      p99: quantile(0.99),
      p999: quantile(0.999),
      p9999: quantile(0.9999),
    },
    lostFraction: rec((c) => c.gaps.reduce((a, g) => a + g, 0) / (c.seconds * 1e6)),
    maxGap: rec((c) => maxOf(c.gaps)),
    gapsPerSecond: rec((c) => c.gaps.length / c.seconds),
    seconds: Math.max(0, ...per.map((c) => c.seconds)),
  };
}

/** Histogram of the raw gaps of one CPU over all windows (µs), for the .hgrm file. */
export function gapHistogram(windows: readonly NoiseWindow[], cpu: string): Histogram {
  const h = newHistogram();
  for (const w of windows)
    for (const c of w.cpus) if (String(c.cpu) === cpu) for (const g of c.gaps) recordMicros(h, g);
  return h;
}
