/**
 * Hiccup meter, one process per CPU (jHiccup-style, spinning): started pinned
 * to one CPU by {@link ../harness/hiccup.ts}, it reads the clock in a tight
 * loop for `--seconds` and records every gap between two consecutive reads
 * longer than `--threshold-us` (default 20 µs): time during which this CPU
 * ran something else (hypervisor steal, another process, an interrupt).
 * performance.now() is used instead of hrtime.bigint() because it allocates
 * nothing: a BigInt per read would make the meter's own GC show up as gaps.
 * Prints one JSON line: { seconds, reads, gaps: [µs, …] }.
 *
 *   taskset -c 0 node --import tsx bench/harness/hiccup-child.ts --seconds 2
 */
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: { seconds: { type: 'string', default: '2' }, 'threshold-us': { type: 'string', default: '20' } },
});
const seconds = Number(values.seconds);
const thresholdMs = Number(values['threshold-us']) / 1000;
if (!(seconds > 0) || !(thresholdMs > 0)) throw new Error('hiccup-child: --seconds and --threshold-us must be > 0');

function spin(): { seconds: number; reads: number; gaps: number[] } {
  const gaps = new Float64Array(1 << 20);
  let n = 0;
  let reads = 0;
  const start = performance.now();
  const end = start + seconds * 1000;
  let last = start;
  for (;;) {
    const now = performance.now();
    reads++;
    const d = now - last;
    if (d > thresholdMs && n < gaps.length) gaps[n++] = d * 1000;
    last = now;
    if (now >= end) break;
  }
  return { seconds: (last - start) / 1000, reads, gaps: Array.from(gaps.subarray(0, n), (g) => Math.round(g)) };
}

// A short untimed spin first, so the measured loop runs optimised code.
const warm = performance.now() + 50;
while (performance.now() < warm) {}
process.stdout.write(`${JSON.stringify(spin())}\n`);
