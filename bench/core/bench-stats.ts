/** Percentiles of a sample (ms), for the edge benchmarks' printouts. */
export interface Summary {
  n: number;
  p50: number;
  p99: number;
  max: number;
}

export function summarize(samples: readonly number[]): Summary {
  const s = [...samples].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)] ?? Number.NaN;
  return { n: s.length, p50: at(0.5), p99: at(0.99), max: s[s.length - 1] ?? Number.NaN };
}

export function row(name: string, x: Summary): string {
  const f = (v: number) => v.toFixed(3).padStart(9);
  return `${name.padEnd(44)} n=${String(x.n).padStart(6)}  p50 ${f(x.p50)} ms  p99 ${f(x.p99)} ms  max ${f(x.max)} ms`;
}

export function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? dflt) : dflt;
}
