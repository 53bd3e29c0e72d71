import { type ErrorCode, KcmError } from '../errors.ts';

/**
 * A cursor over bytes that checks every length before it slices: reading past
 * the end throws `KcmError(code)` (default `format_header`), never returns
 * short data. Slices are views (no copy).
 */
export class ByteReader {
  #pos = 0;
  constructor(
    readonly bytes: Uint8Array,
    private readonly errorCode: ErrorCode = 'format_header',
  ) {}

  get position(): number {
    return this.#pos;
  }

  get remaining(): number {
    return this.bytes.length - this.#pos;
  }

  fail(detail: string): never {
    throw new KcmError(this.errorCode, `${detail} at byte ${this.#pos}`);
  }

  u8(what: string): number {
    if (this.remaining < 1) this.fail(`truncated ${what}`);
    return this.bytes[this.#pos++] as number;
  }

  u32(what: string): number {
    if (this.remaining < 4) this.fail(`truncated ${what}`);
    const b = this.bytes;
    const p = this.#pos;
    this.#pos += 4;
    return (
      (((b[p] as number) << 24) | ((b[p + 1] as number) << 16) | ((b[p + 2] as number) << 8) | (b[p + 3] as number)) >>>
      0
    );
  }

  take(n: number, what: string): Uint8Array {
    if (n > this.remaining) this.fail(`truncated ${what} (need ${n}, have ${this.remaining})`);
    const out = this.bytes.subarray(this.#pos, this.#pos + n);
    this.#pos += n;
    return out;
  }

  /** `n` bytes as a latin1 string (ids are ASCII; their charset is checked by the caller). */
  latin1(n: number, what: string): string {
    const b = this.take(n, what);
    return Buffer.from(b.buffer, b.byteOffset, b.length).toString('latin1');
  }

  rest(): Uint8Array {
    return this.take(this.remaining, 'rest');
  }
}

/** Appends bytes; grows by doubling. */
export class ByteWriter {
  #buf: Buffer;
  #len = 0;
  constructor(capacity = 128) {
    this.#buf = Buffer.allocUnsafe(capacity);
  }

  #ensure(n: number): void {
    if (this.#len + n <= this.#buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.#buf.length * 2, this.#len + n));
    this.#buf.copy(next, 0, 0, this.#len);
    this.#buf = next;
  }

  u8(v: number): this {
    this.#ensure(1);
    this.#buf[this.#len++] = v;
    return this;
  }

  u32(v: number): this {
    this.#ensure(4);
    this.#buf.writeUInt32BE(v >>> 0, this.#len);
    this.#len += 4;
    return this;
  }

  bytes(b: Uint8Array): this {
    this.#ensure(b.length);
    this.#buf.set(b, this.#len);
    this.#len += b.length;
    return this;
  }

  ascii(s: string): this {
    this.#ensure(s.length);
    this.#len += this.#buf.write(s, this.#len, 'latin1');
    return this;
  }

  /** The written bytes (a view of the internal buffer; do not write after). */
  finish(): Buffer {
    return this.#buf.subarray(0, this.#len);
  }
}
