/**
 * One connection pool per upstream origin (h1-client.ts: keep-alive
 * connections reused across requests), with the connect / headers / body
 * timeouts and the wait-queue bounds of the gateway configuration. Pools are
 * made on first use and closed together.
 */
import { readFileSync } from 'node:fs';
import { KcmError } from '../../../common/src/errors.ts';
import { H1Pool } from './h1-client.ts';

export interface UpstreamOptions {
  /** TCP (+TLS) connect deadline (default 2,000 ms). */
  connectTimeoutMs: number;
  /** Deadline for the response headers after the request is sent (default 30,000 ms). */
  headersTimeoutMs: number;
  /** Longest silence between two body chunks (default 30,000 ms). */
  bodyTimeoutMs: number;
  /** Idle keep-alive connections are closed after this (default 4,000 ms). */
  keepAliveTimeoutMs: number;
  /** Connections per upstream origin at most (default 128). */
  connections: number;
  /**
   * Requests per origin that may wait for a connection when all are busy
   * (default 8 × `connections`, 1,024 with the default; 0: none wait).
   * Past it → 503 `upstream_busy` at once. Each waiter holds its body, so
   * this bounds memory; 8 rounds of the pool is more than a burst needs.
   */
  maxQueue: number;
  /**
   * Longest wait for a free connection (default 5,000 ms); past it → 504
   * `upstream_timeout`. The upstream deadlines start after the wait.
   */
  queueTimeoutMs: number;
  /** Largest upstream response body the gateway reads (default 8 MiB); past it → 502 `upstream_bad_response`. */
  maxResponseBytes: number;
  /** PEM CA bundle for `https:` upstreams (default: Node's bundled roots). */
  caFile?: string;
}

export const DEFAULT_UPSTREAM_OPTIONS: UpstreamOptions = {
  connectTimeoutMs: 2_000,
  headersTimeoutMs: 30_000,
  bodyTimeoutMs: 30_000,
  keepAliveTimeoutMs: 4_000,
  connections: 128,
  maxQueue: 8 * 128,
  queueTimeoutMs: 5_000,
  maxResponseBytes: 8 * 1024 * 1024,
};

const BOUNDS: { [K in Exclude<keyof UpstreamOptions, 'caFile'>]: readonly [number, number] } = {
  connectTimeoutMs: [1, 600_000],
  headersTimeoutMs: [1, 3_600_000],
  bodyTimeoutMs: [1, 3_600_000],
  keepAliveTimeoutMs: [1, 600_000],
  connections: [1, 65_536],
  maxQueue: [0, 1_048_576],
  queueTimeoutMs: [1, 600_000],
  maxResponseBytes: [1, 1 << 30],
};

/**
 * Defaults applied to `o` (`maxQueue`: 8 × the `connections` given), every
 * number checked against its bounds. Throws KcmError `invalid_config` naming
 * the field (`upstream.<name>`).
 */
export function upstreamOptions(o: Partial<UpstreamOptions> = {}): UpstreamOptions {
  const out: UpstreamOptions = { ...DEFAULT_UPSTREAM_OPTIONS };
  if (o.maxQueue === undefined && o.connections !== undefined && Number.isInteger(o.connections)) {
    out.maxQueue = Math.min(BOUNDS.maxQueue[1], 8 * o.connections);
  }
  for (const k of Object.keys(BOUNDS) as (keyof typeof BOUNDS)[]) {
    const v = o[k];
    if (v === undefined) continue;
    const [lo, hi] = BOUNDS[k];
    if (!Number.isInteger(v) || v < lo || v > hi) {
      throw new KcmError('invalid_config', `upstream.${k} must be an integer from ${lo} to ${hi}`);
    }
    out[k] = v;
  }
  if (o.caFile !== undefined) out.caFile = o.caFile;
  return out;
}

/** How often pools retired by a policy reload are checked for quiet (then closed). */
const RETIRED_CHECK_MS = 1000;

export class UpstreamPools {
  readonly #pools = new Map<string, H1Pool>();
  /** Pools of origins no route forwards to any more: serving what they hold, closed once quiet. */
  readonly #retired = new Map<string, H1Pool>();
  #retiredTimer: NodeJS.Timeout | undefined;
  readonly #ca: Buffer | undefined;
  #closed = false;

  /** Throws `invalid_certificate` when `caFile` cannot be read. */
  constructor(readonly options: UpstreamOptions) {
    if (options.caFile !== undefined) {
      try {
        this.#ca = readFileSync(options.caFile);
      } catch {
        throw new KcmError('invalid_certificate', 'cannot read upstream.caFile');
      }
    }
  }

  /** The pool of `origin` (`http(s)://host:port`), made on first use. Throws `upstream_unavailable` after close. */
  pool(origin: string): H1Pool {
    let p = this.#pools.get(origin);
    if (p) return p;
    if (this.#closed) throw new KcmError('upstream_unavailable', 'the gateway is shutting down');
    // A request matched by the routes before a reload: the retired pool serves it (and is in use again).
    p = this.#retired.get(origin);
    if (p) {
      this.#retired.delete(origin);
      this.#pools.set(origin, p);
      return p;
    }
    const o = this.options;
    p = new H1Pool(new URL(origin), {
      connections: o.connections,
      maxQueue: o.maxQueue,
      queueTimeoutMs: o.queueTimeoutMs,
      connectTimeoutMs: o.connectTimeoutMs,
      headersTimeoutMs: o.headersTimeoutMs,
      bodyTimeoutMs: o.bodyTimeoutMs,
      keepAliveTimeoutMs: o.keepAliveTimeoutMs,
      maxResponseBytes: o.maxResponseBytes,
      ...(this.#ca ? { ca: this.#ca } : {}),
    });
    this.#pools.set(origin, p);
    return p;
  }

  /** Origins with a pool (tests, metrics). */
  get origins(): string[] {
    return [...this.#pools.keys()];
  }

  /**
   * Retires the pools of origins not in `keep` (after a policy reload): each
   * goes on serving the requests it holds, in flight or queued, and is closed
   * (idle connections with it) once quiet, checked now and every second. A
   * request matched by the old routes takes its retired pool back.
   * `close()` closes retired pools too.
   */
  retain(keep: ReadonlySet<string>): void {
    for (const [origin, p] of this.#pools) {
      if (keep.has(origin)) continue;
      this.#pools.delete(origin);
      this.#retired.set(origin, p);
    }
    this.#closeQuietRetired();
  }

  /** Origins of retired pools not closed yet (tests, metrics). */
  get retiredOrigins(): string[] {
    return [...this.#retired.keys()];
  }

  #closeQuietRetired(): void {
    for (const [origin, p] of this.#retired) {
      if (!p.quiet) continue;
      this.#retired.delete(origin);
      p.close(false).catch(() => {});
    }
    if (this.#retired.size === 0) {
      clearInterval(this.#retiredTimer);
      this.#retiredTimer = undefined;
    } else if (!this.#retiredTimer) {
      this.#retiredTimer = setInterval(() => this.#closeQuietRetired(), RETIRED_CHECK_MS);
      this.#retiredTimer.unref();
    }
  }

  /** Closes every pool: in-flight requests finish first unless `force`, which destroys them. */
  async close(force = false): Promise<void> {
    this.#closed = true;
    clearInterval(this.#retiredTimer);
    this.#retiredTimer = undefined;
    const pools = [...this.#pools.values(), ...this.#retired.values()];
    this.#pools.clear();
    this.#retired.clear();
    await Promise.all(pools.map((p) => p.close(force).catch(() => {})));
  }
}
