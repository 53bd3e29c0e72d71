/**
 * The request body as the front adapters deliver it: chunks pushed as they
 * arrive (already copied out of any transport buffer), counted against a hard
 * cap, and read once by the stage that needs the whole body.
 *
 * Contract: Content-Length (when declared) is checked before anything is read;
 * bytes are counted while reading, so a chunked or lying body is cut at the
 * cap. Past the cap the chunks are dropped (never buffered) and the reader
 * fails with `body_too_large`; an abort fails it with {@link ClientAbortedError}.
 */
import { KcmError } from '../../../common/src/errors.ts';

/** The client went away before the body ended. Never sent to anyone: the pipeline only records it. */
export class ClientAbortedError extends Error {
  override readonly name = 'ClientAbortedError';
  constructor() {
    super('client aborted the request');
  }
}

type Waiter = { resolve: (b: Buffer) => void; reject: (e: Error) => void; limit: number };

export class RequestBody {
  readonly #chunks: Buffer[] = [];
  #received = 0;
  #ended = false;
  #failure: Error | undefined;
  #waiter: Waiter | undefined;
  #consumed = false;

  /**
   * @param declaredLength Content-Length, or undefined (chunked / h2 without it).
   * @param hardCap bytes buffered at most whatever the route says (the gateway's largest body limit).
   * @param onOverflow called once when the body passes the cap, so the adapter can stop reading.
   */
  constructor(
    readonly declaredLength: number | undefined,
    readonly hardCap: number,
    private readonly onOverflow: () => void = () => {},
  ) {}

  /** Bytes received so far. */
  get received(): number {
    return this.#received;
  }

  get ended(): boolean {
    return this.#ended;
  }

  /** Adapter: a chunk that the body owns (copied from the transport). */
  push(chunk: Buffer): void {
    if (this.#ended || this.#failure) return;
    this.#received += chunk.length;
    const limit = this.#waiter?.limit ?? this.hardCap;
    if (this.#received > limit) {
      this.#fail(new KcmError('body_too_large', `body over ${limit} bytes`));
      this.onOverflow();
      return;
    }
    this.#chunks.push(chunk);
  }

  /** Adapter: the body is complete. */
  end(): void {
    if (this.#ended || this.#failure) return;
    this.#ended = true;
    const w = this.#waiter;
    if (w) {
      this.#waiter = undefined;
      w.resolve(this.#concat());
    }
  }

  /** Adapter: the client aborted. */
  abort(): void {
    if (this.#ended) return;
    this.#fail(new ClientAbortedError());
  }

  #fail(err: Error): void {
    if (this.#failure) return;
    this.#failure = err;
    this.#chunks.length = 0;
    const w = this.#waiter;
    if (w) {
      this.#waiter = undefined;
      w.reject(err);
    }
  }

  #concat(): Buffer {
    const out = this.#chunks.length === 1 ? (this.#chunks[0] as Buffer) : Buffer.concat(this.#chunks, this.#received);
    this.#chunks.length = 0;
    return out;
  }

  /**
   * Adapter / respond stage: the answer was given without reading the body
   * (an early answer): nothing more of it is kept, and the adapter stops
   * reading (`onOverflow`). No effect on a body read, ended or failed.
   */
  discard(): void {
    if (this.#ended || this.#failure || this.#consumed) return;
    this.#fail(new KcmError('bad_request', 'body not read: the request was answered before'));
    this.onOverflow();
  }

  /**
   * The whole body, at most `limit` bytes (≤ the hard cap). Rejects with
   * `body_too_large` when Content-Length or the bytes counted pass `limit`,
   * with ClientAbortedError when the client went away. Call once.
   */
  readAll(limit: number): Promise<Buffer> {
    if (this.#consumed) return Promise.reject(new Error('request body read twice'));
    this.#consumed = true;
    const cap = Math.min(limit, this.hardCap);
    if (this.declaredLength !== undefined && this.declaredLength > cap) {
      // Refused by its declared length: nothing more of it is kept, and the adapter stops reading.
      this.#fail(new KcmError('body_too_large', `Content-Length over ${cap} bytes`));
      this.onOverflow();
      return Promise.reject(this.#failure);
    }
    if (this.#failure) return Promise.reject(this.#failure);
    if (this.#received > cap) {
      this.#fail(new KcmError('body_too_large', `body over ${cap} bytes`));
      this.onOverflow();
      return Promise.reject(this.#failure);
    }
    if (this.#ended) return Promise.resolve(this.#concat());
    return new Promise((resolve, reject) => {
      this.#waiter = { resolve, reject, limit: cap };
    });
  }
}
