/**
 * The two load models.
 *
 * Open loop ({@link openLoop}): requests are sent at fixed intended times
 * (rate R: the i-th at t0 + i/R), whatever happened to earlier ones; a send
 * that falls behind goes out as soon as the generator can, and its latency is
 * still measured from its INTENDED time (no coordinated omission, as wrk2).
 * Latency = completion − intended send, in µs, into an HDR histogram; the
 * service time (completion − actual send) goes into a second one. With
 * several targets the time is cut into blocks (default 250 ms) that go to the
 * targets in turn (A B A B …), each at rate R: the gateway and its baselines
 * then share the same minutes of machine noise instead of following each other.
 *
 * Closed loop ({@link closedLoop}): saturation throughput, `connections`
 * requests always outstanding — autocannon for HTTP/1.1; for h2 (autocannon
 * speaks HTTP/1.1 only) the same model with that many concurrent streams.
 */
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import { setImmediate as immediate, setTimeout as sleep } from 'node:timers/promises';
import type { RequestSpec, Sender } from './clients.ts';
import { type Histogram, newHistogram, recordMicros } from './histogram.ts';

export interface OpenLoopResult {
  label: string;
  /** Completion − intended send (µs). */
  latency: Histogram;
  /** Completion − actual send (µs): what a closed-loop tool would report. */
  service: Histogram;
  sent: number;
  errors: number;
  firstError?: string;
  /** Achieved send rate while this target had the turn (req/s). */
  achievedRate: number;
}

export interface OpenLoopOptions {
  rate: number;
  /** Measured seconds per target. */
  secondsEach: number;
  blockMs?: number;
}

export async function openLoop(senders: readonly Sender[], o: OpenLoopOptions): Promise<OpenLoopResult[]> {
  if (!(o.rate > 0) || !(o.secondsEach > 0) || senders.length === 0) throw new Error('openLoop: bad options');
  const blockMs = o.blockMs ?? 250;
  const n = senders.length;
  const intervalMs = 1000 / o.rate;
  const res: OpenLoopResult[] = senders.map((s) => ({
    label: s.label,
    latency: newHistogram(),
    service: newHistogram(),
    sent: 0,
    errors: 0,
    achievedRate: 0,
  }));
  const inflight = new Set<Promise<void>>();
  const t0 = performance.now() + 5;
  const tEnd = t0 + o.secondsEach * 1000 * n;
  for (let i = 0; ; i++) {
    const intended = t0 + i * intervalMs;
    if (intended >= tEnd) break;
    let now = performance.now();
    if (intended > now) {
      if (intended - now > 1.5) await sleep(intended - now - 1);
      while (now < intended) {
        await immediate();
        now = performance.now();
      }
    }
    const k = Math.floor((intended - t0) / blockMs) % n;
    const r = res[k] as OpenLoopResult;
    const sender = senders[k] as Sender;
    r.sent++;
    const p = sender.send().then(
      () => {
        const done = performance.now();
        recordMicros(r.latency, (done - intended) * 1000);
        recordMicros(r.service, (done - now) * 1000);
      },
      (err: unknown) => {
        r.errors++;
        r.firstError ??= err instanceof Error ? err.message : String(err);
      },
    );
    inflight.add(p);
    void p.finally(() => inflight.delete(p));
  }
  await Promise.all(inflight);
  for (const r of res) r.achievedRate = r.sent / o.secondsEach;
  return res;
}

/** The part of autocannon's API used here (the package ships no types). */
interface AutocannonResult {
  requests: { total: number };
  duration: number;
  non2xx: number;
  errors: number;
  timeouts: number;
}
type Autocannon = (o: {
  url: string;
  method: string;
  headers: Record<string, string>;
  body?: string;
  connections: number;
  pipelining: number;
  duration: number;
}) => Promise<AutocannonResult>;
const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

export interface ClosedLoopResult {
  rps: number;
  requests: number;
  errors: number;
}

/** autocannon against 127.0.0.1:port for `seconds`, `connections` outstanding (HTTP/1.1). */
export async function closedLoopHttp1(
  port: number,
  spec: RequestSpec,
  seconds: number,
  connections: number,
): Promise<ClosedLoopResult> {
  const r = await autocannon({
    url: `http://127.0.0.1:${port}${spec.path}`,
    method: spec.method,
    headers: spec.headers,
    ...(spec.body !== undefined ? { body: spec.body } : {}),
    connections,
    pipelining: 1,
    duration: seconds,
  });
  const expectedOk = (spec.status ?? 200) < 300;
  return {
    rps: r.requests.total / Math.max(0.001, r.duration),
    requests: r.requests.total,
    errors: r.errors + r.timeouts + (expectedOk ? r.non2xx : 0),
  };
}

/** The closed-loop model over any sender (used for h2): `concurrency` loops of back-to-back sends. */
export async function closedLoopSender(s: Sender, seconds: number, concurrency: number): Promise<ClosedLoopResult> {
  const end = performance.now() + seconds * 1000;
  let done = 0;
  let errors = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        try {
          await s.send();
          done++;
        } catch {
          errors++;
        }
      }
    }),
  );
  return { rps: done / ((performance.now() - t0) / 1000), requests: done, errors };
}
