/**
 * One keep-alive connection of an upstream pool (h1-client.ts): carries one
 * exchange at a time, writes its head and body in one write (one buffer up
 * to 16 KB of body, a corked writev above), reads plain TCP into one shared
 * buffer (no stream machinery per read), parses the answer with
 * h1-parser.ts, runs the connect / headers / body-idle deadline, retries an
 * idempotent request once when a reused connection was lost before any
 * answer byte, and goes back to its pool while the upstream's keep-alive
 * limit allows (idleLimitMs).
 */
import net from 'node:net';
import tls from 'node:tls';
import { type H1Response, type ParserLimits, ResponseParser } from './h1-parser.ts';
import type { H1Request } from './h1-request-head.ts';
import { UpstreamFailure } from './upstream-failure.ts';

/** What a connection needs from its pool. */
export interface ConnOwner {
  readonly origin: URL;
  readonly options: {
    readonly connectTimeoutMs: number;
    readonly headersTimeoutMs: number;
    readonly bodyTimeoutMs: number;
    readonly keepAliveTimeoutMs: number;
    readonly maxResponseBytes: number;
    readonly maxHeadBytes?: number | undefined;
    readonly ca?: Buffer | undefined;
  };
  /** This connection is idle and reusable. */
  release(c: Conn): void;
  /** This connection is gone. */
  forget(c: Conn): void;
  /** Runs `x` again (its one retry), on a fresh connection when `fresh`. */
  dispatch(x: Exchange, fresh: boolean): void;
}

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
  const text = typeof keepAlive === 'string' ? keepAlive : keepAlive.join(',');
  const announced = announcedSeconds(text);
  if (announced === undefined) return defaultMs;
  return Math.max(0, Math.min(defaultMs, announced * 1000 - KEEP_ALIVE_MARGIN_MS));
}

// An upstream sends the same Keep-Alive value on every answer: the last one read is kept.
let lastKeepAlive = '';
let lastSeconds: number | undefined;

/** The `timeout=N` of a Keep-Alive value, or undefined when it has none. */
function announcedSeconds(text: string): number | undefined {
  if (text !== lastKeepAlive) {
    const m = KEEP_ALIVE_TIMEOUT.exec(text);
    lastSeconds = m ? Number(m[1]) : undefined;
    lastKeepAlive = text;
  }
  return lastSeconds;
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

export interface Exchange {
  req: H1Request;
  /** requestWrites(req): one buffer (head and a small body), or the head and then a large body. */
  writes: readonly Buffer[];
  resolve(r: H1Response): void;
  reject(e: Error): void;
  retried: boolean;
  done: boolean;
  /** performance.now() when it joined the wait queue; -1 when not waiting. */
  queuedAt: number;
  /** The connection carrying it now, if any. */
  conn?: Conn;
}

/**
 * Where every plain-TCP upstream connection reads (the `onread` option of
 * net.connect): a read is handled to the end (parsed, kept bytes copied)
 * before the next one is made, all on the event loop thread, so one buffer
 * serves them all. TLS sockets read through the stream as usual.
 */
const READ_BUFFER = Buffer.alloc(64 * 1024);

/** One connection; carries one exchange at a time. */
export class Conn {
  readonly socket: net.Socket;
  ready = false;
  reused = false;
  idleSince = 0;
  /** Idle time after which this connection is not reused (idleLimitMs of its last answer). */
  idleLimit = 0;
  #x: Exchange | undefined;
  #parser: ResponseParser | undefined;
  /** The parser limits of this connection's pool (made on the first exchange). */
  #limits: ParserLimits | undefined;
  #timer: NodeJS.Timeout | undefined;
  #timerMs = 0;
  /** Counts reads, so a deadline can tell whether bytes arrived meanwhile. */
  #progress = 0;
  #phase: 'connect' | 'headers' | 'body' = 'connect';
  /** Reads land in READ_BUFFER (plain TCP), valid only until #data returns. */
  readonly #borrowed: boolean;

  constructor(
    readonly pool: ConnOwner,
    x: Exchange,
  ) {
    const o = pool.options;
    this.idleLimit = o.keepAliveTimeoutMs;
    const url = pool.origin;
    const port = Number(url.port) || (url.protocol === 'https:' ? 443 : 80);
    const host = url.hostname.replace(/^\[|\]$/g, '');
    this.#x = x;
    x.conn = this;
    this.#borrowed = url.protocol !== 'https:';
    this.socket = this.#borrowed
      ? // Plain TCP reads straight into the shared buffer: no stream machinery, no buffer per read.
        net.connect({
          host,
          port,
          onread: {
            buffer: READ_BUFFER,
            callback: (n: number, buf: Uint8Array): boolean => {
              this.#data((buf as Buffer).subarray(0, n));
              return true; // false would pause the socket
            },
          },
        })
      : tls.connect({
          host,
          port,
          ...(net.isIP(host) ? {} : { servername: host }),
          ALPNProtocols: ['http/1.1'],
          ...(o.ca ? { ca: o.ca } : {}),
        });
    this.socket.setNoDelay(true);
    this.#arm(o.connectTimeoutMs);
    this.socket.once(this.#borrowed ? 'connect' : 'secureConnect', () => {
      this.ready = true;
      const cur = this.#x;
      if (cur) this.#send(cur);
    });
    if (!this.#borrowed) this.socket.on('data', (chunk: Buffer) => this.#data(chunk));
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
    this.#limits ??= {
      maxHeadBytes: this.pool.options.maxHeadBytes ?? 65_536,
      maxBodyBytes: this.pool.options.maxResponseBytes,
    };
    this.#parser = new ResponseParser(this.#limits, x.req.method === 'HEAD', this.#borrowed);
    this.#phase = 'headers';
    this.#arm(this.pool.options.headersTimeoutMs);
    const s = this.socket;
    const [first, second] = x.writes;
    if (!second) s.write(first as Buffer);
    else {
      s.cork();
      s.write(first as Buffer);
      s.write(second);
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
