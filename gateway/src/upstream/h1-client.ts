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
import net from 'node:net';
import tls from 'node:tls';
import { type H1Response, ResponseParser } from './h1-parser.ts';
import { UpstreamFailure } from './upstream-failure.ts';

export type RequestHeaders = Record<string, string | string[]>;

export interface H1Request {
  method: string;
  /** Origin-form target: path and query. */
  path: string;
  /** End-to-end headers (no host, content-length, transfer-encoding, connection). */
  headers: RequestHeaders;
  body?: Buffer | undefined;
  /** Registers a callback run if the caller gives up; the client then aborts the request. */
  onAbort?: (abort: () => void) => void;
}

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

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/**
 * Header values are byte strings (one char per byte, as node:http and
 * node:http2 give them and the uWS adapter makes them): a control other than
 * HTAB, or a char above 0xFF (which the Latin-1 encoding of the head would
 * truncate to its low byte: U+010D U+010A would become CR LF), is refused.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is what this pattern is for
const BAD_VALUE = /[\0-\x08\x0a-\x1f\x7f\u0100-\uffff]/;
/** The request target is visible ASCII only (RFC 9112 §3.2); percent-encode anything else. */
const BAD_TARGET = /[^\x21-\x7e]/;
/** How long before an upstream's announced keep-alive timeout the gateway stops reusing the connection. */
export const KEEP_ALIVE_MARGIN_MS = 1000;
const KEEP_ALIVE_TIMEOUT = /(?:^|[,;\s])timeout\s*=\s*"?(\d{1,9})/i;

/**
 * How long a connection may stay idle after this answer: `defaultMs`, or less
 * when the upstream announced `Keep-Alive: timeout=N` (N s − the margin; 0:
 * do not reuse). Malformed or absent values leave `defaultMs`.
 */
export function idleLimitMs(keepAlive: string | string[] | undefined, defaultMs: number): number {
  if (keepAlive === undefined) return defaultMs;
  const m = KEEP_ALIVE_TIMEOUT.exec(typeof keepAlive === 'string' ? keepAlive : keepAlive.join(','));
  if (!m) return defaultMs;
  return Math.max(0, Math.min(defaultMs, Number(m[1]) * 1000 - KEEP_ALIVE_MARGIN_MS));
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);
const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH']);

/** Bodies up to this size are copied behind the head and sent in one write; larger ones go in a corked writev. */
const COPY_BODY_MAX = 16 * 1024;

/** The request head, or `bad_request` when a name, value or the target could split the message. */
export function requestHead(r: H1Request, host: string): Buffer {
  if (BAD_TARGET.test(r.path) || !TOKEN.test(r.method)) {
    throw new UpstreamFailure('bad_request', 'request target or method not sendable');
  }
  let head = `${r.method} ${r.path} HTTP/1.1\r\nhost: ${host}\r\n`;
  for (const name in r.headers) {
    const v = r.headers[name] as string | string[];
    if (!TOKEN.test(name)) throw new UpstreamFailure('bad_request', 'header name not sendable');
    if (typeof v === 'string') {
      if (BAD_VALUE.test(v)) throw new UpstreamFailure('bad_request', `header ${name} not sendable`);
      head += `${name}: ${v}\r\n`;
    } else {
      for (const one of v) {
        if (BAD_VALUE.test(one)) throw new UpstreamFailure('bad_request', `header ${name} not sendable`);
        head += `${name}: ${one}\r\n`;
      }
    }
  }
  if (r.body) head += `content-length: ${r.body.length}\r\n`;
  else if (BODY_METHODS.has(r.method)) head += 'content-length: 0\r\n';
  head += '\r\n';
  return Buffer.from(head, 'latin1');
}

interface Exchange {
  req: H1Request;
  head: Buffer;
  resolve(r: H1Response): void;
  reject(e: Error): void;
  retried: boolean;
  done: boolean;
  /** performance.now() when it joined the wait queue; -1 when not waiting. */
  queuedAt: number;
  /** The connection carrying it now, if any. */
  conn?: Conn;
}

/** One connection; carries one exchange at a time. */
class Conn {
  readonly socket: net.Socket;
  ready = false;
  reused = false;
  idleSince = 0;
  /** Idle time after which this connection is not reused (idleLimitMs of its last answer). */
  idleLimit = 0;
  #x: Exchange | undefined;
  #parser: ResponseParser | undefined;
  #timer: NodeJS.Timeout | undefined;
  #timerMs = 0;
  /** Counts reads, so a deadline can tell whether bytes arrived meanwhile. */
  #progress = 0;
  #phase: 'connect' | 'headers' | 'body' = 'connect';

  constructor(
    readonly pool: H1Pool,
    x: Exchange,
  ) {
    const o = pool.options;
    this.idleLimit = o.keepAliveTimeoutMs;
    const url = pool.origin;
    const port = Number(url.port) || (url.protocol === 'https:' ? 443 : 80);
    const host = url.hostname.replace(/^\[|\]$/g, '');
    this.#x = x;
    x.conn = this;
    this.socket =
      url.protocol === 'https:'
        ? tls.connect({
            host,
            port,
            ...(net.isIP(host) ? {} : { servername: host }),
            ALPNProtocols: ['http/1.1'],
            ...(o.ca ? { ca: o.ca } : {}),
          })
        : net.connect({ host, port });
    this.socket.setNoDelay(true);
    this.#arm(o.connectTimeoutMs);
    this.socket.once(url.protocol === 'https:' ? 'secureConnect' : 'connect', () => {
      this.ready = true;
      const cur = this.#x;
      if (cur) this.#send(cur);
    });
    this.socket.on('data', (chunk: Buffer) => this.#data(chunk));
    this.socket.on('end', () => this.#ended());
    this.socket.on('error', () => this.#lost());
    this.socket.on('close', () => this.#lost());
  }

  /** Starts `x` on this idle, ready connection. */
  start(x: Exchange): void {
    this.reused = true;
    this.#x = x;
    x.conn = this;
    this.#send(x);
  }

  #send(x: Exchange): void {
    if (x.done) {
      this.#x = undefined;
      this.#disarm();
      this.pool.release(this);
      return;
    }
    this.#parser = new ResponseParser(
      { maxHeadBytes: this.pool.options.maxHeadBytes ?? 65_536, maxBodyBytes: this.pool.options.maxResponseBytes },
      x.req.method === 'HEAD',
    );
    this.#phase = 'headers';
    this.#arm(this.pool.options.headersTimeoutMs);
    const s = this.socket;
    const body = x.req.body;
    if (!body || body.length === 0) s.write(x.head);
    else if (body.length <= COPY_BODY_MAX) {
      // One buffer, one plain write: cheaper than cork + writev for the usual small JSON body.
      s.write(Buffer.concat([x.head, body], x.head.length + body.length));
    } else {
      s.cork();
      s.write(x.head);
      s.write(body);
      s.uncork();
    }
  }

  /** (Re)starts the one deadline of this connection: `ms` from now. */
  #arm(ms: number): void {
    if (this.#timer && this.#timerMs === ms) {
      this.#timer.refresh();
      return;
    }
    this.#disarm();
    this.#timerMs = ms;
    this.#timer = setTimeout(() => this.#timeout(), ms);
    this.#timer.unref();
  }

  #disarm(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /**
   * The deadline passed. It is judged after the poll phase that follows, so
   * bytes already waiting in the socket (a busy event loop runs timers
   * first) count as progress rather than as a timeout.
   */
  #timeout(): void {
    const x = this.#x;
    this.#timer = undefined;
    if (!x) return;
    const seen = this.#progress;
    setImmediate(() => {
      if (this.#x !== x || this.#progress !== seen || this.#timer) return;
      this.#fail(new UpstreamFailure('timeout', `upstream ${this.#phase} deadline passed`), false);
    });
  }

  #data(chunk: Buffer): void {
    this.#progress++;
    const x = this.#x;
    const p = this.#parser;
    if (!x || !p) {
      // Unsolicited bytes on an idle connection: it cannot be trusted for the next request.
      this.socket.destroy();
      return;
    }
    let res: H1Response | undefined;
    try {
      res = p.feed(chunk);
    } catch (err) {
      this.#fail(err as Error, false);
      return;
    }
    if (!res) {
      if (p.started && this.#phase === 'headers') this.#phase = 'body';
      this.#arm(this.#phase === 'body' ? this.pool.options.bodyTimeoutMs : this.pool.options.headersTimeoutMs);
      return;
    }
    this.#finish(x, res);
  }

  #finish(x: Exchange, res: H1Response): void {
    this.#disarm();
    this.#x = undefined;
    this.#parser = undefined;
    x.done = true;
    this.idleLimit = res.keepAlive ? idleLimitMs(res.headers['keep-alive'], this.pool.options.keepAliveTimeoutMs) : 0;
    if (this.idleLimit > 0) this.pool.release(this);
    else this.socket.destroy();
    x.resolve(res);
  }

  #ended(): void {
    const x = this.#x;
    const p = this.#parser;
    if (x && p) {
      let res: H1Response;
      try {
        res = p.end();
      } catch (err) {
        this.#fail(err as Error, true);
        return;
      }
      this.#finish(x, res);
      return;
    }
    this.socket.destroy();
  }

  #lost(): void {
    if (this.#x) this.#fail(new UpstreamFailure('unavailable', 'upstream connection failed or closed'), true);
    else this.#forget();
  }

  #forget(): void {
    this.#disarm();
    this.pool.forget(this);
    if (!this.socket.destroyed) this.socket.destroy();
  }

  /** Fails the current exchange (or retries it once when it may be, see the file comment). */
  #fail(err: Error, connectionLost: boolean): void {
    const x = this.#x;
    const started = this.#parser?.started ?? false;
    this.#x = undefined;
    this.#parser = undefined;
    this.#forget();
    if (!x || x.done) return;
    if (connectionLost && this.reused && !started && !x.retried && IDEMPOTENT.has(x.req.method)) {
      x.retried = true;
      this.pool.dispatch(x, true);
      return;
    }
    x.done = true;
    x.reject(err);
  }

  /** The caller gave up: drop the connection (the upstream may still be sending). */
  abort(x: Exchange): void {
    if (this.#x !== x) return;
    this.#x = undefined;
    this.#parser = undefined;
    this.#forget();
  }
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

  request(req: H1Request): Promise<H1Response> {
    if (this.#closed) return Promise.reject(new UpstreamFailure('unavailable', 'the gateway is shutting down'));
    let head: Buffer;
    try {
      head = requestHead(req, this.#host);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise<H1Response>((resolve, reject) => {
      const x: Exchange = { req, head, resolve, reject, retried: false, done: false, queuedAt: -1 };
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
