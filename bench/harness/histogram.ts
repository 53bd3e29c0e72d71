/**
 * HDR histograms of latency in microseconds (hdr-histogram-js, 3 significant
 * digits, 1 µs … 120 s), their percentile summary, and the standard `.hgrm`
 * percentile-distribution text (values written in milliseconds, as
 * HdrHistogram's plotter and jHiccup expect).
 */
import * as hdr from 'hdr-histogram-js';

export type Histogram = hdr.Histogram;

/** The percentiles every report shows, in order. */
export const PERCENTILES = [50, 90, 99, 99.9, 99.99] as const;

export interface LatencySummary {
  count: number;
  /** µs */
  p10: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  p9999: number;
  max: number;
  mean: number;
}

/** A fresh histogram of µs values (1 µs … 120 s, 3 significant digits). */
export function newHistogram(): Histogram {
  return hdr.build({
    bitBucketSize: 64,
    lowestDiscernibleValue: 1,
    highestTrackableValue: 120_000_000,
    numberOfSignificantValueDigits: 3,
    useWebAssembly: false,
  });
}

/** Records one value in µs (clamped to 1 µs … the histogram's highest value). */
export function recordMicros(h: Histogram, us: number): void {
  h.recordValue(Math.min(120_000_000, Math.max(1, Math.round(us))));
}

export function summarize(h: Histogram): LatencySummary {
  const at = (p: number) => (h.totalCount === 0 ? Number.NaN : h.getValueAtPercentile(p));
  return {
    count: h.totalCount,
    p10: at(10),
    p50: at(50),
    p90: at(90),
    p99: at(99),
    p999: at(99.9),
    p9999: at(99.99),
    max: h.totalCount === 0 ? Number.NaN : h.maxValue,
    mean: h.totalCount === 0 ? Number.NaN : h.mean,
  };
}

/** The value (µs) at each of {@link PERCENTILES}. */
export function percentileValues(s: LatencySummary): number[] {
  return [s.p50, s.p90, s.p99, s.p999, s.p9999];
}

/** `.hgrm` text: HdrHistogram's percentile distribution, values in ms. */
export function hgrmText(h: Histogram): string {
  return h.outputPercentileDistribution(5, 1000);
}

/** A new histogram holding every value of `parts`. */
export function merged(parts: readonly Histogram[]): Histogram {
  const h = newHistogram();
  for (const p of parts) h.add(p);
  return h;
}

/** µs → "0.123 ms" style text with 3 significant decimals where useful. */
export function ms(us: number): string {
  if (!Number.isFinite(us)) return 'n/a';
  const v = us / 1000;
  if (v >= 100) return v.toFixed(0);
  if (v >= 10) return v.toFixed(1);
  if (v >= 1) return v.toFixed(2);
  return v.toFixed(3);
}
