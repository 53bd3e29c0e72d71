/**
 * One persistent HTTP/2 + mTLS session from an edge to the Core (ADR-401),
 * re-established on demand after it drops. Each live session carries its own
 * lease transport key (RFC 5705 export, imported into native memory on first
 * use, wiped when the session ends), so a lease is unwrapped with the key of
 * the very connection that carried it.
 */
import {
  type ClientHttp2Session,
  type ClientHttp2Stream,
  connect,
  constants,
  type IncomingHttpHeaders,
} from 'node:http2';
import { sessionTransportKey } from '../../../common/src/crypto/lease-transport.ts';
import { ERRORS, type ErrorCode, KcmError } from '../../../common/src/errors.ts';
import type { Crypto, KeyHandle } from '../../../native/index.ts';

/** PEM material of the edge: its client certificate and key, and the CA that issued the Core's certificate. */
export interface EdgeClientTls {
  cert: string | Buffer;
  key: string | Buffer;
  ca: string | Buffer | (string | Buffer)[];
  /** Name to verify in the Core's certificate when it differs from the URL host. */
  servername?: string;
}

/** A connected session and its transport key. */
export class LiveSession {
  #transport: KeyHandle | null = null;
  #closed = false;

  constructor(
    readonly h2: ClientHttp2Session,
    private readonly crypto: Crypto,
  ) {}

  get closed(): boolean {
    return this.#closed || this.h2.closed || this.h2.destroyed;
  }

  /** The session transport key; throws `core_unavailable` once the session ended. */
  transportKey(): KeyHandle {
    if (this.closed) throw new KcmError('core_unavailable', 'the connection to the Core closed');
    this.#transport ??= sessionTransportKey(this.crypto, this.h2.socket as never);
    return this.#transport;
  }

  /** Wipes the transport key; idempotent. */
  end(): void {
    this.#closed = true;
    this.#transport?.destroy();
    this.#transport = null;
  }
}

export interface CoreSessionOptions {
  url: string;
  tls: EdgeClientTls;
  crypto: Crypto;
  connectTimeoutMs: number;
  requestTimeoutMs: number;
  log: (msg: string) => void;
}

/** A JSON answer and the session that carried it. */
export interface JsonReply {
  live: LiveSession;
  body: unknown;
}

export class CoreSession {
  #live: LiveSession | null = null;
  #connecting: Promise<LiveSession> | null = null;
  #closed = false;

  constructor(private readonly o: CoreSessionOptions) {}

  /** The live session, connecting if there is none; throws `core_unavailable` when the Core cannot be reached. */
  get(): Promise<LiveSession> {
    if (this.#closed) return Promise.reject(new KcmError('core_unavailable', 'client closed'));
    if (this.#live && !this.#live.closed) return Promise.resolve(this.#live);
    this.#connecting ??= this.#connect().finally(() => {
      this.#connecting = null;
    });
    return this.#connecting;
  }

  #connect(): Promise<LiveSession> {
    const { tls } = this.o;
    return new Promise<LiveSession>((resolve, reject) => {
      const h2 = connect(this.o.url, {
        cert: tls.cert,
        key: tls.key,
        ca: tls.ca,
        minVersion: 'TLSv1.2',
        ...(tls.servername ? { servername: tls.servername } : {}),
      });
      const live = new LiveSession(h2, this.o.crypto);
      const timer = setTimeout(() => fail(new Error('connect timeout')), this.o.connectTimeoutMs);
      const fail = (err: Error) => {
        clearTimeout(timer);
        h2.destroy();
        live.end();
        reject(new KcmError('core_unavailable', `connect: ${err.message}`));
      };
      h2.once('error', fail);
      h2.once('connect', () => {
        clearTimeout(timer);
        h2.off('error', fail);
        h2.on('error', (err) => this.o.log(`core session error: ${err.message}`));
        if (this.#closed) {
          h2.destroy();
          return reject(new KcmError('core_unavailable', 'client closed'));
        }
        this.#live = live;
        resolve(live);
      });
      h2.once('close', () => {
        live.end();
        if (this.#live === live) this.#live = null;
      });
      h2.once('goaway', () => {
        if (this.#live === live) this.#live = null;
      });
    });
  }

  /** Opens a request stream on the live session (for the event stream). */
  async open(headers: Record<string, string>): Promise<{ live: LiveSession; stream: ClientHttp2Stream }> {
    const live = await this.get();
    try {
      return { live, stream: live.h2.request(headers) };
    } catch (err) {
      throw new KcmError('core_unavailable', `request: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  /**
   * A JSON request. Resolves with the 2xx body; throws the Core's KcmError for
   * an error answer, `core_unavailable` when the request could not complete.
   */
  async json(method: 'GET' | 'POST', path: string, body?: unknown): Promise<JsonReply> {
    const text = body === undefined ? '' : JSON.stringify(body);
    const { live, stream } = await this.open({
      ':method': method,
      ':path': path,
      ...(text ? { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)) } : {}),
    });
    const reply = await new Promise<{ status: number; data: string }>((resolve, reject) => {
      let status = 0;
      const chunks: Buffer[] = [];
      stream.setTimeout(this.o.requestTimeoutMs, () => {
        stream.close(constants.NGHTTP2_CANCEL);
        reject(new KcmError('core_unavailable', `${path}: no answer in ${this.o.requestTimeoutMs} ms`));
      });
      stream.on('response', (h: IncomingHttpHeaders) => {
        status = Number(h[':status']);
      });
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => resolve({ status, data: Buffer.concat(chunks).toString('utf8') }));
      stream.on('error', (err) => reject(new KcmError('core_unavailable', `${path}: ${err.message}`)));
      // GET streams are already half-closed by node:http2: end() without data.
      if (text) stream.end(text);
      else stream.end();
    });
    let parsed: unknown;
    try {
      parsed = reply.data ? JSON.parse(reply.data) : {};
    } catch {
      throw new KcmError('core_unavailable', `${path}: answer is not JSON (status ${reply.status})`);
    }
    if (reply.status >= 200 && reply.status < 300) return { live, body: parsed };
    throw coreError(reply.status, parsed);
  }

  /** Closes the session; later calls throw `core_unavailable`. */
  close(): void {
    this.#closed = true;
    const live = this.#live;
    this.#live = null;
    live?.end();
    live?.h2.close();
    live?.h2.destroy();
  }
}

/**
 * The Core's `{error: {code, message}}` as a KcmError of the same code
 * (unknown codes → `core_unavailable`). Exported for its test.
 */
export function coreError(status: number, body: unknown): KcmError {
  const e = (body as { error?: { code?: unknown; message?: unknown } } | null)?.error;
  // Own names only: `constructor` or `toString` from the Core is an unknown code, not a member of Object.
  const code = typeof e?.code === 'string' && Object.hasOwn(ERRORS, e.code) ? (e.code as ErrorCode) : null;
  if (!code) return new KcmError('core_unavailable', `unexpected answer (status ${status})`);
  const prefix = `${ERRORS[code].message}: `;
  const msg = typeof e?.message === 'string' ? e.message : '';
  return new KcmError(code, msg.startsWith(prefix) ? msg.slice(prefix.length) : undefined);
}
