/**
 * A latency-by-percentile plot as a standalone SVG (no dependency): x is the
 * percentile on HdrHistogram's log scale (50, 90, 99, 99.9, 99.99 equally
 * spaced: log10 of 1/(1 − q)), y is latency in ms on a log scale. Optional
 * ADR-604 target and failure steps (0.2/1/10 ms and 0.5/5/50 ms from p50,
 * p99, p99.9 on).
 */
import type { Histogram } from './histogram.ts';

export interface Series {
  label: string;
  color: string;
  dashed?: boolean;
  /** [percentile 0…100, µs] pairs, percentile ascending. */
  points: [number, number][];
}

const W = 760;
const H = 440;
const M = { left: 70, right: 20, top: 40, bottom: 110 };

/** Percentile → value points of a histogram, from p50 up to the last percentile its count supports. */
export function histogramPoints(h: Histogram): [number, number][] {
  const out: [number, number][] = [];
  if (h.totalCount === 0) return out;
  for (let k = 0; ; k++) {
    const tail = 0.5 * 10 ** (-k / 10);
    if (1 / tail > h.totalCount) break;
    const q = 100 * (1 - tail);
    out.push([q, h.getValueAtPercentile(q)]);
  }
  out.push([100 * (1 - 1 / h.totalCount), h.maxValue]);
  return out;
}

const xOf = (q: number) => Math.log10(1 / Math.max(1e-7, 1 - q / 100));
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function percentilePlot(title: string, series: readonly Series[], adr604: boolean): string {
  const all = series.flatMap((s) => s.points);
  const xMax = Math.max(xOf(99.99), ...all.map(([q]) => xOf(q)));
  const xMin = xOf(50);
  const vals = all.map(([, v]) => Math.max(1, v) / 1000);
  if (adr604) vals.push(0.2, 50);
  const yMin = 10 ** Math.floor(Math.log10(Math.min(...vals, 1)));
  const yMax = 10 ** Math.ceil(Math.log10(Math.max(...vals, 1)));
  const px = (q: number) => M.left + ((xOf(q) - xMin) / (xMax - xMin)) * (W - M.left - M.right);
  const py = (msv: number) =>
    M.top + (1 - (Math.log10(msv) - Math.log10(yMin)) / (Math.log10(yMax) - Math.log10(yMin))) * (H - M.top - M.bottom);
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="20" text-anchor="middle" font-size="14">${esc(title)}</text>`,
  );
  for (const q of [50, 90, 99, 99.9, 99.99, 99.999].filter((q) => xOf(q) <= xMax + 1e-9)) {
    const x = px(q).toFixed(1);
    parts.push(
      `<line x1="${x}" y1="${M.top}" x2="${x}" y2="${H - M.bottom}" stroke="#ddd"/>`,
      `<text x="${x}" y="${H - M.bottom + 16}" text-anchor="middle">${q}%</text>`,
    );
  }
  for (let d = yMin; d <= yMax * 1.0001; d *= 10) {
    const y = py(d).toFixed(1);
    parts.push(
      `<line x1="${M.left}" y1="${y}" x2="${W - M.right}" y2="${y}" stroke="#ddd"/>`,
      `<text x="${M.left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${d >= 1 ? d : d.toPrecision(1)}</text>`,
    );
  }
  parts.push(
    `<text x="${W / 2}" y="${H - M.bottom + 34}" text-anchor="middle">percentile (log scale of 1/(1−q))</text>`,
    `<text x="16" y="${(M.top + H - M.bottom) / 2}" text-anchor="middle" transform="rotate(-90 16 ${(M.top + H - M.bottom) / 2})">latency (ms, log)</text>`,
  );
  if (adr604) {
    const step = (v: [number, number, number], color: string, label: string) => {
      const right = 100 * (1 - 10 ** -xMax);
      const pts = [
        [50, v[0]],
        [99, v[0]],
        [99, v[1]],
        [99.9, v[1]],
        [99.9, v[2]],
        [right, v[2]],
      ]
        .map(([q, m]) => `${px(q as number).toFixed(1)},${py(m as number).toFixed(1)}`)
        .join(' ');
      parts.push(
        `<polyline points="${pts}" fill="none" stroke="${color}" stroke-width="1.5" stroke-dasharray="6 4"/>`,
        `<text x="${(px(50) + 4).toFixed(1)}" y="${(py(v[0]) - 4).toFixed(1)}" fill="${color}">${label}</text>`,
      );
    };
    step([0.2, 1, 10], '#2a9d2a', 'ADR-604 target');
    step([0.5, 5, 50], '#d62728', 'ADR-604 fail');
  }
  for (const s of series) {
    if (s.points.length === 0) continue;
    const pts = s.points.map(([q, v]) => `${px(q).toFixed(1)},${py(Math.max(1, v) / 1000).toFixed(1)}`).join(' ');
    parts.push(
      `<polyline points="${pts}" fill="none" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="3 3"' : ''}/>`,
    );
  }
  series.forEach((s, i) => {
    const y = H - M.bottom + 52 + i * 16;
    parts.push(
      `<line x1="${M.left}" y1="${y}" x2="${M.left + 24}" y2="${y}" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="3 3"' : ''}/>`,
      `<text x="${M.left + 30}" y="${y}" dominant-baseline="middle">${esc(s.label)}</text>`,
    );
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}

/** Noise floor as a percentile series (from the derived p50 … p99.99 values). */
export function noiseSeries(at: { p50: number; p90: number; p99: number; p999: number; p9999: number }): Series {
  return {
    label: 'machine noise floor (hiccup meter, both CPUs)',
    color: '#888',
    dashed: true,
    points: [
      [50, at.p50],
      [90, at.p90],
      [99, at.p99],
      [99.9, at.p999],
      [99.99, at.p9999],
    ],
  };
}
