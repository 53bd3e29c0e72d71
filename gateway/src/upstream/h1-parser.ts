/**
 * Incremental parser of ONE HTTP/1.1 response (RFC 9112) read from an
 * upstream connection, for the gateway's own upstream client (h1-client.ts).
 *
 * Contract:
 * - `feed(chunk)` returns the complete response once its last byte arrived
 *   (undefined before), `end()` when the connection ended (completes a body
 *   delimited by the close, else throws). After a response completes, any
 *   further byte is an error (the client never pipelines).
 * - Every violation throws {@link UpstreamFailure} `bad_response` (a status
 *   outside 100–599 included: RFC 9110 §15 calls it invalid); a body
 *   over `maxBodyBytes` throws `too_large`. No error carries upstream bytes.
 * - Interim 1xx answers (100, 102, 103) are skipped; 101 is refused (the
 *   gateway never asks for an upgrade). A response to HEAD, and 204 / 304,
 *   have no body whatever their headers say (RFC 9112 §6.3). A 205 is framed
 *   like any response (§6.3 does not exempt it: `Content-Length: 0`, an
 *   empty chunked body and a close are all valid, RFC 9110 §15.3.6) but MUST
 *   NOT carry content: a declared length over 0 or any body byte is
 *   `bad_response`. So every bodiless status reaches the proxy empty, and the
 *   response transform, which skips them, never lets content through
 *   unmasked. Transfer-Encoding ending in `chunked` wins over
 *   Content-Length; conflicting Content-Lengths are refused; without either
 *   the body runs to the close (not reusable).
 * - A response with both Transfer-Encoding and Content-Length is read by
 *   Transfer-Encoding and is not reusable (`keepAlive` false): RFC 9112 §6.1
 *   says to close the connection after it: the two headers together are
 *   the mark of a smuggling or desync attempt, and what follows on that
 *   connection cannot be trusted. It is not refused: RFC 9112 lets the
 *   recipient read it by Transfer-Encoding, and some honest servers send both.
 * - Header names are lower-cased; a repeated header becomes an array in
 *   arrival order. Header bytes are read as Latin-1 (RFC 9110 §5.5).
 * - A body that arrived in one chunk is a view of that chunk (no copy),
 *   unless the chunks are `borrowed` (valid only during `feed`, e.g. a
 *   socket's reused read buffer): then every byte the parser keeps (an
 *   incomplete head or line, the body) is copied out before `feed` returns.
 */
import { UpstreamFailure } from './upstream-failure.ts';

export type ResponseHeaders = Record<string, string | string[]>;

export interface H1Response {
  status: number;
  headers: ResponseHeaders;
  body: Buffer;
  /** The connection may carry another request (no `Connection: close`, not HTTP/1.0 without keep-alive, not close-delimited). */
  keepAlive: boolean;
}

export interface ParserLimits {
  /** Largest status line + headers (bytes). */
  maxHeadBytes: number;
  /** Largest body (bytes) → `too_large` past it. */
  maxBodyBytes: number;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Status 100–599 only: RFC 9110 §15 calls 600–999 invalid, and a proxy must not relay them as they are. */
const STATUS_LINE = /^HTTP\/1\.([01]) ([1-5][0-9]{2})(?: [^\r\n]*)?$/;
const CHUNK_SIZE = /^([0-9A-Fa-f]{1,8})[ \t]*(?:;[^\r\n]*)?$/;
const EMPTY = Buffer.alloc(0);

enum State {
  Head,
  Fixed,
  ChunkSize,
  ChunkData,
  ChunkEnd,
  Trailers,
  UntilClose,
  Done,
}

function bad(what: string): UpstreamFailure {
  return new UpstreamFailure('bad_response', `not a valid HTTP response: ${what}`);
}

const BAD_VALUE_CHAR = /[\0\r\n]/;

/**
 * Lines of a head (no final CRLF CRLF), Latin-1. One pass with indexOf: no
 * array of lines. A value's CR or LF can only be a lone one (lines end at
 * CRLF), and is refused like NUL.
 */
function parseHead(text: string): { version: 0 | 1; status: number; headers: ResponseHeaders } {
  let end = text.indexOf('\r\n');
  if (end < 0) end = text.length;
  const m = STATUS_LINE.exec(text.slice(0, end));
  if (!m) throw bad('status line');
  // No prototype: a header named `constructor` or `__proto__` is a header like any other.
  const headers: ResponseHeaders = Object.create(null);
  let at = end + 2;
  while (at <= text.length) {
    end = text.indexOf('\r\n', at);
    if (end < 0) end = text.length;
    const colon = text.indexOf(':', at);
    if (colon <= at || colon >= end) throw bad('header line');
    const name = text.slice(at, colon);
    if (!TOKEN.test(name)) throw bad('header name');
    const value = text.slice(colon + 1, end).trim();
    if (BAD_VALUE_CHAR.test(value)) throw bad('header value');
    const key = name.toLowerCase();
    const prev = headers[key];
    if (prev === undefined) headers[key] = value;
    else if (typeof prev === 'string') headers[key] = [prev, value];
    else prev.push(value);
    at = end + 2;
  }
  return { version: m[1] === '0' ? 0 : 1, status: Number(m[2]), headers };
}

/** The comma-separated tokens of a header, lower-cased (a single plain token without a comma: no split). */
function tokens(v: string | string[] | undefined): string[] {
  if (v === undefined) return [];
  if (typeof v === 'string' && !v.includes(',')) {
    const one = v.trim().toLowerCase();
    return one ? [one] : [];
  }
  return (typeof v === 'string' ? v : v.join(','))
    .split(',')
    .map((t) => t.trim().toLowerCase())
    .filter(Boolean);
}

function contentLength(v: string | string[] | undefined): number | undefined {
  if (v === undefined) return undefined;
  const values = (typeof v === 'string' ? [v] : v).flatMap((x) => x.split(',').map((t) => t.trim()));
  const first = values[0] as string;
  if (!/^[0-9]{1,15}$/.test(first) || values.some((x) => x !== first)) throw bad('Content-Length');
  return Number(first);
}

export class ResponseParser {
  #state = State.Head;
  /** Bytes of the head (or of a chunk-size / trailer line) not yet complete. */
  #pending: Buffer = EMPTY;
  #parts: Buffer[] = [];
  #bodyBytes = 0;
  #remaining = 0;
  #status = 0;
  #headers: ResponseHeaders = {};
  #keepAlive = true;

  constructor(
    readonly limits: ParserLimits,
    /** The request was HEAD: the response has no body. */
    readonly headRequest: boolean,
    /** Fed chunks are reused by the caller after `feed` returns: keep copies, never views. */
    readonly borrowed = false,
  ) {}

  /** True once any byte of a response arrived (the request cannot be retried safely after that). */
  get started(): boolean {
    return this.#state !== State.Head || this.#pending.length > 0;
  }

  feed(chunk: Buffer): H1Response | undefined {
    let buf = chunk;
    while (buf.length > 0) {
      switch (this.#state) {
        case State.Head: {
          const rest = this.#head(buf);
          if (rest === undefined) return undefined;
          buf = rest;
          break;
        }
        case State.Fixed:
          buf = this.#counted(buf, State.Done);
          break;
        case State.ChunkSize:
        case State.Trailers: {
          const line = this.#line(buf);
          if (line === undefined) return undefined;
          buf = line.rest;
          if (this.#state === State.Trailers) {
            if (line.text === '') this.#state = State.Done;
            break;
          }
          const m = CHUNK_SIZE.exec(line.text);
          if (!m) throw bad('chunk size');
          this.#remaining = Number.parseInt(m[1] as string, 16);
          this.#state = this.#remaining === 0 ? State.Trailers : State.ChunkData;
          break;
        }
        case State.ChunkData:
          buf = this.#counted(buf, State.ChunkEnd);
          break;
        case State.ChunkEnd: {
          const line = this.#line(buf);
          if (line === undefined) return undefined;
          if (line.text !== '') throw bad('chunk end');
          buf = line.rest;
          this.#state = State.ChunkSize;
          break;
        }
        case State.UntilClose:
          this.#body(buf);
          buf = EMPTY;
          break;
        case State.Done:
          throw bad('bytes after the response');
      }
      if (this.#state === State.Done) {
        if (buf.length > 0) throw bad('bytes after the response');
        return this.#done();
      }
    }
    return undefined;
  }

  /** The connection ended: the response if its body runs to the close, else `bad_response` (truncated). */
  end(): H1Response {
    if (this.#state === State.UntilClose) {
      this.#state = State.Done;
      return this.#done();
    }
    throw new UpstreamFailure('unavailable', 'the upstream closed the connection before the response ended');
  }

  #done(): H1Response {
    const parts = this.#parts;
    const body = parts.length === 0 ? EMPTY : parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
    return { status: this.#status, headers: this.#headers, body, keepAlive: this.#keepAlive };
  }

  /** Takes up to #remaining body bytes from `buf` (moving to `then` when none remain); returns the rest. */
  #counted(buf: Buffer, then: State): Buffer {
    const n = Math.min(this.#remaining, buf.length);
    this.#body(buf.subarray(0, n));
    this.#remaining -= n;
    if (this.#remaining === 0) this.#state = then;
    return buf.subarray(n);
  }

  #body(b: Buffer): void {
    if (b.length === 0) return;
    // RFC 9110 §15.3.6: a 205 has no content (its framing may still be chunked or close-delimited).
    if (this.#status === 205) throw bad('content in a 205 response');
    this.#bodyBytes += b.length;
    if (this.#bodyBytes > this.limits.maxBodyBytes) {
      throw new UpstreamFailure('too_large', `response body over ${this.limits.maxBodyBytes} bytes`);
    }
    this.#parts.push(this.borrowed ? Buffer.from(b) : b);
  }

  /** `all` kept for the next feed: a copy when it is (a view of) a borrowed chunk. */
  #keep(all: Buffer, chunk: Buffer): Buffer {
    return this.borrowed && all === chunk ? Buffer.from(all) : all;
  }

  /** One CRLF-terminated line (chunk size, chunk end, trailer), buffered across chunks. */
  #line(buf: Buffer): { text: string; rest: Buffer } | undefined {
    const all = this.#pending.length > 0 ? Buffer.concat([this.#pending, buf]) : buf;
    const at = all.indexOf('\r\n', 0, 'latin1');
    if (at < 0) {
      if (all.length > 4096) throw bad('line too long');
      this.#pending = this.#keep(all, buf);
      return undefined;
    }
    this.#pending = EMPTY;
    return { text: all.toString('latin1', 0, at), rest: all.subarray(at + 2) };
  }

  /** Consumes head bytes; returns the bytes after the head once it is complete. */
  #head(buf: Buffer): Buffer | undefined {
    const all = this.#pending.length > 0 ? Buffer.concat([this.#pending, buf]) : buf;
    const at = all.indexOf('\r\n\r\n', 0, 'latin1');
    if (at < 0) {
      if (all.length > this.limits.maxHeadBytes) throw bad('head too large');
      // A byte stream that does not start like a status line is refused at once.
      if (all.length >= 5 && all.toString('latin1', 0, 5) !== 'HTTP/') throw bad('status line');
      this.#pending = this.#keep(all, buf);
      return undefined;
    }
    if (at > this.limits.maxHeadBytes) throw bad('head too large');
    this.#pending = EMPTY;
    const { version, status, headers } = parseHead(all.toString('latin1', 0, at));
    const rest = all.subarray(at + 4);
    if (status === 101) throw bad('unexpected protocol switch');
    // An interim answer: the real head follows.
    if (status < 200) return rest.length > 0 ? this.#head(rest) : undefined;
    this.#status = status;
    this.#headers = headers;
    const conn = tokens(headers.connection);
    this.#keepAlive = version === 1 ? !conn.includes('close') : conn.includes('keep-alive');
    const te = tokens(headers['transfer-encoding']);
    if (this.headRequest || status === 204 || status === 304) {
      this.#state = State.Done;
    } else if (te.length > 0) {
      // Both framing headers (RFC 9112 §6.1): Transfer-Encoding wins, and the connection ends after this answer.
      if (headers['content-length'] !== undefined) this.#keepAlive = false;
      if (te[te.length - 1] === 'chunked') this.#state = State.ChunkSize;
      else {
        this.#state = State.UntilClose;
        this.#keepAlive = false;
      }
    } else {
      const n = contentLength(headers['content-length']);
      if (n === undefined) {
        this.#state = State.UntilClose;
        this.#keepAlive = false;
      } else if (n > 0 && status === 205) {
        throw bad('content in a 205 response');
      } else if (n > this.limits.maxBodyBytes) {
        throw new UpstreamFailure('too_large', `response body over ${this.limits.maxBodyBytes} bytes`);
      } else {
        this.#remaining = n;
        this.#state = n === 0 ? State.Done : State.Fixed;
      }
    }
    return rest;
  }
}
