/**
 * The edge's subscription to the Core's key events (GET /v1/edge/events):
 * events are applied in seq order as they arrive, then acknowledged (acks
 * coalesce: a burst costs one POST for its highest seq). When the stream
 * ends, errors, or goes silent for three heartbeat intervals, the session is
 * dropped and the subscription reconnects with exponential backoff and full
 * jitter, resuming after the last applied seq (the Core replays what was
 * missed). The backoff resets once a stream opens.
 *
 * A line this edge cannot read (an event type from a newer Core, a damaged
 * line) must neither be skipped silently nor stop the stream for good (the
 * replay would send it again and again, and block every later revocation):
 * the edge fails closed instead. `forget` drops the cached keys of the
 * tenant the line names, or of every tenant when it names none readable, so
 * they are leased again from the Core, which enforces whatever the event
 * said; then the event counts as applied (and is acknowledged when it has a
 * seq) and the stream goes on.
 */
import type { ClientHttp2Stream, IncomingHttpHeaders } from 'node:http2';
import { EDGE_PATHS, parseWireLine, type WireEvent } from '../../../common/src/format/edge-wire.ts';
import { isTenantId } from '../../../common/src/format/ids.ts';
import { type BackoffPolicy, backoffDelay } from './backoff.ts';
import type { CoreSession, LiveSession } from './core-session.ts';

export interface EventSubscriptionOptions {
  session: CoreSession;
  backoff: BackoffPolicy;
  /** Resume after this seq (events up to it were applied earlier). */
  afterSeq: number;
  /** Applies one event synchronously (destroying keys as it says). */
  apply: (e: WireEvent) => void;
  /** Drops the cached keys of `tenant`, or of every tenant when undefined (an unreadable line). */
  forget: (tenant: string | undefined) => void;
  log: (msg: string) => void;
  /** Called when a stream opens (hello received) or ends. */
  onLink?: (up: boolean) => void;
  /** Called after an ack the Core accepted. */
  onAck?: (seq: number) => void;
  random?: () => number;
}

export class EventSubscription {
  #lastSeq: number;
  #acked: number;
  #ackWanted = 0;
  #acking = false;
  #stopped = false;
  #stream: ClientHttp2Stream | null = null;
  #wake: (() => void) | null = null;
  #running: Promise<void> | null = null;
  #up = false;

  constructor(private readonly o: EventSubscriptionOptions) {
    this.#lastSeq = o.afterSeq;
    this.#acked = o.afterSeq;
  }

  /** Highest event seq applied. */
  get lastSeq(): number {
    return this.#lastSeq;
  }

  /** Highest seq the Core confirmed as acknowledged by this edge. */
  get ackedSeq(): number {
    return this.#acked;
  }

  /** True while a stream is open and has said hello. */
  get connected(): boolean {
    return this.#up;
  }

  start(): void {
    this.#running ??= this.#loop();
  }

  /** Stops reconnecting and closes the stream. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#stream?.close();
    this.#wake?.();
    await this.#running;
  }

  async #loop(): Promise<void> {
    let attempt = 0;
    while (!this.#stopped) {
      const opened = await this.#once().catch((err: unknown) => {
        this.o.log(`event stream: ${err instanceof Error ? err.message : String(err)}`);
        return false;
      });
      this.#setUp(false);
      if (this.#stopped) break;
      attempt = opened ? 0 : attempt + 1;
      const delay = backoffDelay(this.o.backoff, attempt, this.o.random);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, delay);
        this.#wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.#wake = null;
    }
  }

  #setUp(up: boolean): void {
    if (this.#up === up) return;
    this.#up = up;
    this.o.onLink?.(up);
  }

  /** One stream, until it ends; resolves true when it had opened (said hello). */
  async #once(): Promise<boolean> {
    const { live, stream } = await this.o.session.open({
      ':method': 'GET',
      ':path': `${EDGE_PATHS.events}?after=${this.#lastSeq}`,
    });
    if (this.#stopped) {
      stream.close();
      return false;
    }
    this.#stream = stream;
    return new Promise<boolean>((resolve) => {
      let opened = false;
      let status = 0;
      let buf = '';
      let lastData = Date.now();
      let watchdog: NodeJS.Timeout | undefined;
      const finish = () => {
        clearInterval(watchdog);
        this.#stream = null;
        resolve(opened);
      };
      stream.setEncoding('utf8');
      stream.on('response', (h: IncomingHttpHeaders) => {
        status = Number(h[':status']);
      });
      stream.on('data', (chunk: string) => {
        lastData = Date.now();
        if (status !== 200) {
          buf += chunk;
          return;
        }
        buf += chunk;
        let nl = buf.indexOf('\n');
        while (nl >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          nl = buf.indexOf('\n');
          if (line.length === 0) continue;
          try {
            const l = parseWireLine(line);
            if (l.kind === 'hello') {
              opened = true;
              this.#setUp(true);
              clearInterval(watchdog);
              watchdog = setInterval(() => {
                if (Date.now() - lastData > 3 * l.heartbeatMs) this.#dropDead(live, stream);
              }, l.heartbeatMs);
              watchdog.unref();
              if (this.#lastSeq > this.#acked) this.#ack(this.#lastSeq);
            } else if (l.kind === 'event') {
              this.#event(l);
            }
          } catch (err) {
            this.#unreadable(line, err);
          }
        }
      });
      stream.on('end', () => {
        if (status !== 200) this.o.log(`event stream refused: status ${status} ${buf.slice(0, 200)}`);
      });
      stream.on('error', () => {});
      stream.on('close', finish);
    });
  }

  /** An event stream line that does not parse: fail closed (file comment), then go on. */
  #unreadable(line: string, err: unknown): void {
    let v: { kind?: unknown; seq?: unknown; tenant?: unknown } | undefined;
    try {
      v = JSON.parse(line);
    } catch {
      v = undefined;
    }
    const seq = typeof v?.seq === 'number' && Number.isSafeInteger(v.seq) && v.seq > 0 ? v.seq : undefined;
    if (v?.kind === 'heartbeat' || (seq !== undefined && seq <= this.#lastSeq)) return;
    const tenant = typeof v?.tenant === 'string' && isTenantId(v.tenant) ? v.tenant : undefined;
    const what = err instanceof Error ? err.message : 'unreadable';
    this.o.log(
      `event stream: unreadable line${seq === undefined ? '' : ` (seq ${seq})`}: ${what}; cached keys of ${tenant ?? 'every tenant'} dropped`,
    );
    this.o.forget(tenant);
    if (seq !== undefined) {
      this.#lastSeq = seq;
      this.#ack(seq);
    }
  }

  #event(e: WireEvent): void {
    if (e.seq <= this.#lastSeq) return;
    try {
      this.o.apply(e);
    } catch (err) {
      // Never skip an event silently: stop here, the replay after reconnect retries it.
      this.o.log(`applying event ${e.seq} failed: ${err instanceof Error ? err.message : String(err)}`);
      this.#stream?.close();
      return;
    }
    this.#lastSeq = e.seq;
    this.#ack(e.seq);
  }

  #dropDead(live: LiveSession, stream: ClientHttp2Stream): void {
    this.o.log('event stream silent for 3 heartbeats: dropping the connection');
    stream.close();
    live.h2.destroy();
  }

  #ack(seq: number): void {
    this.#ackWanted = Math.max(this.#ackWanted, seq);
    if (this.#acking) return;
    this.#acking = true;
    void (async () => {
      try {
        while (this.#ackWanted > this.#acked && !this.#stopped) {
          const s = this.#ackWanted;
          await this.o.session.json('POST', EDGE_PATHS.ack, { seq: s });
          this.#acked = Math.max(this.#acked, s);
          this.o.onAck?.(s);
        }
      } catch (err) {
        // Retried on the next event or the next hello.
        this.o.log(`ack failed: ${err instanceof Error ? err.message : String(err)}`);
      } finally {
        this.#acking = false;
      }
    })();
  }
}
