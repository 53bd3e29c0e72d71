/**
 * Timing core of the AEAD benchmark: throughput of interleaved contestants.
 *
 * Contract:
 *  - A {@link Timed} contestant produces one {@link RoundSample} per call of
 *    `round(ms)`: how many units (ops) it completed and in how many wall-clock
 *    seconds. In-process contestants come from {@link loopTimer}; external ones
 *    (openssl speed) implement `round` themselves and may ignore `ms`.
 *  - {@link interleave} warms every contestant up once, then runs `rounds`
 *    rounds; each round runs every contestant once, the start rotating by one
 *    per round (A B C D, B C D A, …) so machine noise and GC debt are shared
 *    alike. Every contestant therefore has exactly `rounds` samples, and
 *    sample i of each was taken in the same round (usable for paired ratios).
 *  - Rates are wall-clock (process.hrtime), single-threaded, synchronous.
 *  - A contestant marked `forks` (it spawns a process: openssl speed) gets no
 *    warm-up, and whichever contestant runs right after it first runs
 *    `settleMs` untimed: measured here, for ~150 ms after a fork every 16 KB
 *    seal in this process (native and node:crypto alike) runs 5–10× slower
 *    (copy-on-write faults on the parent's pages), which would otherwise be
 *    charged to whoever follows openssl.
 */

export interface RoundSample {
  /** Units (ops) completed. */
  units: number;
  /** Wall-clock seconds they took. */
  seconds: number;
}

export interface Timed {
  readonly name: string;
  /** True when a round forks a child process (see the file comment). */
  readonly forks?: boolean;
  /** Runs about `ms` milliseconds (external contestants: their own fixed time). */
  round(ms: number): RoundSample;
}

/** Median, minimum and maximum of a list of rates. */
export interface Spread {
  median: number;
  min: number;
  max: number;
}

/** Rates (units/s) of each round, in round order, per contestant name. */
export type RoundRates = Map<string, number[]>;

/** A value derived from every op's output accumulates here, so no op can be optimised away. */
let sink = 0;

/** The sink's value (print or ignore it; reading it keeps the loop's work observable). */
export function sinkValue(): number {
  return sink;
}

/**
 * Wraps a synchronous op in a timed loop. The clock is read once per chunk of
 * ops; the chunk is sized on the first call (the warm-up) so that one chunk
 * takes about `chunkMs`, keeping timer overhead well under 1% even for
 * sub-microsecond ops. `op` must return a number derived from its output.
 */
export function loopTimer(name: string, op: () => number, chunkMs = 0.5): Timed {
  let chunk = 0;
  const calibrate = (ms: number): RoundSample => {
    const start = process.hrtime.bigint();
    const deadline = start + BigInt(Math.round(ms * 1e6));
    let n = 0;
    let now = start;
    let acc = 0;
    do {
      acc += op();
      n++;
      now = process.hrtime.bigint();
    } while (now < deadline);
    sink += acc;
    const seconds = Number(now - start) / 1e9;
    chunk = Math.max(1, Math.round((n / seconds) * (chunkMs / 1000)));
    return { units: n, seconds };
  };
  return {
    name,
    round(ms: number): RoundSample {
      if (chunk === 0) return calibrate(ms);
      const start = process.hrtime.bigint();
      const deadline = start + BigInt(Math.round(ms * 1e6));
      let n = 0;
      let now = start;
      let acc = 0;
      do {
        for (let i = 0; i < chunk; i++) acc += op();
        n += chunk;
        now = process.hrtime.bigint();
      } while (now < deadline);
      sink += acc;
      return { units: n, seconds: Number(now - start) / 1e9 };
    },
  };
}

export interface InterleaveOptions {
  rounds: number;
  /** Target duration of one contestant's timed round. */
  roundMs: number;
  /** Duration of the single warm-up round of each contestant (also calibrates loop timers). */
  warmupMs: number;
  /** Untimed run of the contestant that follows a forking one. */
  settleMs: number;
  /** Called after each round, for progress output. */
  onRound?: (round: number) => void;
}

/** Runs the contestants interleaved round by round; returns each one's per-round rates (units/s). */
export function interleave(contestants: readonly Timed[], opts: InterleaveOptions): RoundRates {
  const names = new Set<string>();
  for (const c of contestants) {
    if (names.has(c.name)) throw new Error(`duplicate contestant name: ${c.name}`);
    names.add(c.name);
  }
  for (const c of contestants) if (!c.forks) c.round(opts.warmupMs);
  const rates: RoundRates = new Map(contestants.map((c) => [c.name, [] as number[]]));
  const n = contestants.length;
  let forked = false;
  for (let r = 0; r < opts.rounds; r++) {
    for (let k = 0; k < n; k++) {
      const c = contestants[(r + k) % n] as Timed;
      if (forked && !c.forks) c.round(opts.settleMs);
      forked = c.forks === true;
      const s = c.round(opts.roundMs);
      if (!(s.units > 0 && s.seconds > 0)) throw new Error(`${c.name}: empty sample in round ${r + 1}`);
      rates.get(c.name)?.push(s.units / s.seconds);
    }
    opts.onRound?.(r + 1);
  }
  return rates;
}

/** Median (mean of the two middle values for an even count), min and max. Throws on an empty list. */
export function spread(values: readonly number[]): Spread {
  if (values.length === 0) throw new Error('spread of no values');
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
  return { median, min: s[0] as number, max: s[s.length - 1] as number };
}

/** Per-round ratios a[i] / b[i] of two paired rate lists (same rounds), as a spread. */
export function pairedRatio(a: readonly number[], b: readonly number[]): Spread {
  if (a.length !== b.length) throw new Error('paired ratio of lists of different lengths');
  return spread(a.map((x, i) => x / (b[i] as number)));
}
