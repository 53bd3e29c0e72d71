/**
 * The gateway's HTTP/1.1 client for one upstream origin: a pool of
 * keep-alive connections (plain TCP or TLS), one request per connection at a
 * time (no pipelining), a bounded FIFO queue when every connection is busy.
 *
 * Why not undici: on the proxy's hot path undici cost about a third of the
 * gateway's CPU per request (a Request object, a body stream, an AbortSignal
 * listener, and a setImmediate hop before every write on a reused socket).
 * This client writes the head and body in one write (one buffer up to 16 KB
 * of body, a corked writev above), parses the answer with h1-parser.ts and
 * hands back one Buffer (bench/README.md has the figures).
 *
 * This file is the pool and its wait queue; h1-connection.ts is one
 * connection (write, parse, deadlines, retry), h1-request-head.ts the head.
 *
 * Contract:
 * - `request()` resolves with the whole response or rejects with
 *   {@link UpstreamFailure}: `unavailable` (refused, reset, closed early),
 *   `timeout` (connect / headers / body-idle deadline), `bad_response`,
 *   `too_large`, `bad_request` (a header or path with control characters:
 *   nothing is sent), `aborted` (the caller's `onAbort` fired: the connection
 *   is destroyed), `busy` (every connection busy and `maxQueue` requests
 *   already waiting: refused at once, nothing sent).
 * - The wait for a connection is bounded: at most `maxQueue` requests wait
 *   (each holds its body), and one that waited `queueTimeoutMs` fails with
 *   `timeout` and leaves the queue; the connect / headers / body deadlines
 *   start only once it has a connection. One timer per pool watches the
 *   oldest waiter; a request that leaves the queue (aborted) is only marked
 *   and skipped later, so leaving costs O(1) (amortised, with compaction).
 * - A request that fails on a REUSED connection before any response byte
 *   arrived is retried once on a new connection when its method is
 *   idempotent (the upstream may have closed the idle connection as we wrote).
 * - Idle connections are closed after `keepAliveTimeoutMs`, or at once when
 *   the upstream closes them or sends unsolicited bytes. An upstream that
 *   announces its own idle limit (`Keep-Alive: timeout=N`, RFC 9112 §9.3 /
 *   the Keep-Alive header of RFC 2068) shortens it to N s less
 *   {@link KEEP_ALIVE_MARGIN_MS}; with N ≤ 1 the connection is not reused.
 *   A connection is never taken from the idle list past its limit, so a
 *   request (POST included, which is not retried) is not written onto a
 *   connection the upstream is about to close: e.g. Gunicorn closes after 2 s,
 *   Node's http server after 5 s.
 */
import { Conn, type Exchange } from './h1-connection.ts';
import type { H1Response } from './h1-parser.ts';
import { type H1Request, requestWrites } from './h1-request-head.ts';
import { UpstreamFailure } from './upstream-failure.ts';

export type { H1Request, RequestHeaders } from './h1-request-head.ts';

export interface H1PoolOptions {
  connections: number;
  /** Requests that may wait for a connection when all are busy (0: none); past it → `busy`. */
  maxQueue: number;
  /** Longest wait for a connection; past it → `timeout`. */
  queueTimeoutMs: number;
  connectTimeoutMs: number;
  headersTimeoutMs: number;
  bodyTimeoutMs: number;
  keepAliveTimeoutMs: number;
  maxResponseBytes: number;
  maxHeadBytes?: number;
  /** PEM CA bundle for https origins (default: Node's roots). */
  ca?: Buffer;
}

/** Slots of the wait queue that may be dropped before a compaction is worth it. */
const QUEUE_SLACK = 32;

export class H1Pool {
  readonly #idle: Conn[] = [];
  readonly #all = new Set<Conn>();
  /**
   * Exchanges waiting for a connection, oldest at #head. Slots before #head
   * are empty; an exchange that left (queuedAt −1) stays in its slot until
   * dequeued or compacted away.
   */
  #queue: (Exchange | undefined)[] = [];
  #head = 0;
  /** Exchanges in #queue still waiting. */
  #waiting = 0;
  /** One timer per pool, due when the oldest waiter's wait ends. */
  #queueTimer: NodeJS.Timeout | undefined;
  readonly #host: string;
  #closed = false;
  #sweeper: NodeJS.Timeout | undefined;

  constructor(
    readonly origin: URL,
    readonly options: H1PoolOptions,
  ) {
    this.#host = origin.host;
  }

  /** Connections open now (busy and idle). */
  get size(): number {
    return this.#all.size;
  }

  /** Requests waiting for a connection now. */
  get waiting(): number {
    return this.#waiting;
  }

  /** Whether no request uses or waits for a connection (every open connection is idle). */
  get quiet(): boolean {
    return this.#waiting === 0 && this.#idle.length === this.#all.size;
  }

  request(req: H1Request): Promise<H1Response> {
    if (this.#closed) return Promise.reject(new UpstreamFailure('unavailable', 'the gateway is shutting down'));
    let writes: readonly Buffer[];
    try {
      writes = requestWrites(req, this.#host);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise<H1Response>((resolve, reject) => {
      const x: Exchange = { req, writes, resolve, reject, retried: false, done: false, queuedAt: -1 };
      req.onAbort?.(() => {
        if (x.done) return;
        x.done = true;
        x.conn?.abort(x);
        if (x.queuedAt >= 0) this.#leave(x);
        reject(new UpstreamFailure('aborted', 'the caller went away'));
      });
      if (!x.done) this.dispatch(x, false);
    });
  }

  /**
   * @internal Runs `x` on an idle connection, a new one, or queues it (or
   * fails it `busy` when the queue is full). `fresh`: never reuse, and queue
   * even when full (a retry or a dequeued exchange, already admitted).
   */
  dispatch(x: Exchange, fresh: boolean): void {
    if (this.#closed) {
      x.done = true;
      x.reject(new UpstreamFailure('unavailable', 'the gateway is shutting down'));
      return;
    }
    if (!fresh) {
      const c = this.#takeIdle();
      if (c) {
        c.start(x);
        return;
      }
    }
    if (this.#all.size < this.options.connections) {
      this.#all.add(new Conn(this, x));
      return;
    }
    this.#enqueue(x, fresh);
  }

  #enqueue(x: Exchange, admitted: boolean): void {
    if (!admitted && this.#waiting >= this.options.maxQueue) {
      x.done = true;
      x.reject(new UpstreamFailure('busy', `all upstream connections busy, ${this.#waiting} requests waiting`));
      return;
    }
    x.queuedAt = performance.now();
    this.#queue.push(x);
    this.#waiting++;
    // A pending timer is due no later than this waiter's deadline (it watches an older one).
    if (!this.#queueTimer) this.#armQueue(this.options.queueTimeoutMs);
  }

  /** The oldest exchange still waiting, taken off the queue; undefined when none waits. */
  #dequeue(): Exchange | undefined {
    const q = this.#queue;
    while (this.#head < q.length) {
      const x = q[this.#head];
      q[this.#head++] = undefined;
      if (x === undefined || x.queuedAt < 0) continue;
      x.queuedAt = -1;
      this.#waiting--;
      this.#compact();
      return x;
    }
    this.#compact();
    return undefined;
  }

  /** `x` leaves the queue (aborted): marked only, O(1); its slot goes at dequeue or compaction. */
  #leave(x: Exchange): void {
    x.queuedAt = -1;
    this.#waiting--;
    this.#compact();
  }

  /**
   * Drops empty and left slots once they outnumber the waiters (and
   * QUEUE_SLACK): each slot is copied at most once per compaction and a
   * compaction follows at least as many removals, so O(1) amortised.
   */
  #compact(): void {
    const q = this.#queue;
    if (this.#waiting === 0) {
      q.length = 0;
      this.#head = 0;
      return;
    }
    const gone = q.length - this.#waiting;
    if (gone <= QUEUE_SLACK || gone <= this.#waiting) return;
    this.#queue = q.filter((x) => x !== undefined && x.queuedAt >= 0);
    this.#head = 0;
  }

  #armQueue(ms: number): void {
    this.#queueTimer = setTimeout(() => this.#expire(), Math.max(1, Math.ceil(ms)));
    this.#queueTimer.unref();
  }

  /** Fails with `timeout` every waiter whose wait reached queueTimeoutMs (they are the oldest), then re-arms. */
  #expire(): void {
    this.#queueTimer = undefined;
    const limit = this.options.queueTimeoutMs;
    const now = performance.now();
    const q = this.#queue;
    while (this.#head < q.length) {
      const x = q[this.#head];
      if (x !== undefined && x.queuedAt >= 0) {
        const left = x.queuedAt + limit - now;
        if (left > 0) {
          this.#armQueue(left);
          break;
        }
        x.queuedAt = -1;
        this.#waiting--;
        x.done = true;
        x.reject(new UpstreamFailure('timeout', `no upstream connection free within ${limit} ms`));
      }
      q[this.#head++] = undefined;
    }
    this.#compact();
  }

  /** The most recently used idle connection still within its idle limit; stale ones are closed on the way. */
  #takeIdle(): Conn | undefined {
    if (this.#idle.length === 0) return undefined;
    const now = Date.now();
    for (let c = this.#idle.pop(); c; c = this.#idle.pop()) {
      if (!c.socket.destroyed && now - c.idleSince < c.idleLimit) return c;
      this.forget(c);
      c.socket.destroy();
    }
    return undefined;
  }

  /** @internal A connection finished its exchange and may be reused. */
  release(c: Conn): void {
    if (!this.#all.has(c)) return;
    const next = this.#dequeue();
    if (next) {
      c.start(next);
      return;
    }
    if (this.#closed) {
      this.forget(c);
      c.socket.destroy();
      return;
    }
    c.idleSince = Date.now();
    this.#idle.push(c);
    this.#sweep();
  }

  /** @internal A connection is gone. */
  forget(c: Conn): void {
    if (!this.#all.delete(c)) return;
    const i = this.#idle.indexOf(c);
    if (i >= 0) this.#idle.splice(i, 1);
    // A queued exchange waits for a connection slot: open one for it.
    const next = this.#dequeue();
    if (next) this.dispatch(next, true);
  }

  /**
   * Closes idle connections past their idle limit (a timer runs only while
   * some are idle). Only frees them: #takeIdle never hands out a stale one,
   * whenever the sweep runs.
   */
  #sweep(): void {
    if (this.#sweeper) return;
    const every = Math.max(50, Math.min(1000, Math.floor(this.options.keepAliveTimeoutMs / 2)));
    this.#sweeper = setInterval(() => {
      const now = Date.now();
      for (const c of [...this.#idle]) {
        if (now - c.idleSince >= c.idleLimit) {
          this.forget(c);
          c.socket.destroy();
        }
      }
      if (this.#idle.length === 0 && this.#sweeper) {
        clearInterval(this.#sweeper);
        this.#sweeper = undefined;
      }
    }, every);
    this.#sweeper.unref();
  }

  /** Stops new requests; closes idle connections; busy ones finish unless `force` (destroyed, requests fail). */
  async close(force = false): Promise<void> {
    this.#closed = true;
    if (this.#sweeper) clearInterval(this.#sweeper);
    this.#sweeper = undefined;
    if (this.#queueTimer) clearTimeout(this.#queueTimer);
    this.#queueTimer = undefined;
    const waiting = this.#queue.slice(this.#head);
    this.#queue = [];
    this.#head = 0;
    this.#waiting = 0;
    for (const x of waiting) {
      if (x === undefined || x.queuedAt < 0) continue;
      x.queuedAt = -1;
      x.done = true;
      x.reject(new UpstreamFailure('unavailable', 'the gateway is shutting down'));
    }
    for (const c of this.#idle.splice(0)) {
      this.#all.delete(c);
      c.socket.destroy();
    }
    const busy = [...this.#all];
    if (force) for (const c of busy) c.socket.destroy();
    await Promise.all(
      busy.map((c) => (c.socket.destroyed ? undefined : new Promise<void>((r) => c.socket.once('close', () => r())))),
    );
  }
}
