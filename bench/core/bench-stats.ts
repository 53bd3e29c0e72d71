/** Percentiles of a sample (ms), for the edge benchmarks' printouts. */
export interface Summary {
  n: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

/** Exact percentiles (nearest rank) of `samples`; NaN fields when empty. */
export function summarize(samples: readonly number[]): Summary {
  const s = [...samples].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)] ?? Number.NaN;
  return {
    n: s.length,
    p50: at(0.5),
    p90: at(0.9),
    p99: at(0.99),
    p999: at(0.999),
    max: s[s.length - 1] ?? Number.NaN,
  };
}

export function row(name: string, x: Summary): string {
  const f = (v: number) => v.toFixed(3).padStart(9);
  return `${name.padEnd(44)} n=${String(x.n).padStart(6)}  p50 ${f(x.p50)} ms  p99 ${f(x.p99)} ms  max ${f(x.max)} ms`;
}

/** Header for `fullRow`. */
export const FULL_HEADER = `${'ms'.padEnd(44)} ${'n'.padStart(6)} ${['p50', 'p90', 'p99', 'p99.9', 'max'].map((h) => h.padStart(8)).join(' ')}`;

/** p50/p90/p99/p99.9/max in ms, and under it each as a ratio to `base` (same percentile) when given. */
export function fullRow(name: string, x: Summary, base?: Summary): string {
  const keys = ['p50', 'p90', 'p99', 'p999', 'max'] as const;
  const line = `${name.padEnd(44)} ${String(x.n).padStart(6)} ${keys.map((k) => x[k].toFixed(3).padStart(8)).join(' ')}`;
  if (!base) return line;
  const ratio = keys.map((k) => `${(x[k] / base[k]).toFixed(2)}×`.padStart(8)).join(' ');
  return `${line}\n${'  ratio to baseline'.padEnd(44)} ${''.padStart(6)} ${ratio}`;
}

export function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? dflt) : dflt;
}

/**
 * Noise floor of this machine, measured in the same run (ENVIRONMENT.md): the
 * calling thread spins on the clock for `ms` and records every gap of at
 * least 20 µs (the hypervisor or another process took the CPU). Returns the
 * share of time lost, the number of gaps and the longest (ms).
 */
export function noiseFloor(ms = 1000): { lostPct: number; gaps: number; maxGapMs: number } {
  const end = performance.now() + ms;
  let prev = performance.now();
  let lost = 0;
  let gaps = 0;
  let maxGap = 0;
  for (let t = prev; t < end; t = performance.now()) {
    const d = t - prev;
    if (d >= 0.02) {
      lost += d;
      gaps++;
      if (d > maxGap) maxGap = d;
    }
    prev = t;
  }
  return { lostPct: (100 * lost) / ms, gaps, maxGapMs: maxGap };
}
