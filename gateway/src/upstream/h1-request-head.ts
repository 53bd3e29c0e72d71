/**
 * The request half of the HTTP/1.1 client (h1-client.ts): what a request
 * is, and its head as bytes. Nothing that could split the message is ever
 * written: a method that is not a token, a target that is not visible ASCII,
 * a header name that is not a token, or a value with a control character or
 * a char past 0xFF is refused (`bad_request`) before anything is sent.
 */
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
const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH']);

/** Bodies up to this size are copied behind the head and sent in one write; larger ones go in a corked writev. */
export const COPY_BODY_MAX = 16 * 1024;

/**
 * What a connection writes for `r`, in order: one buffer holding the head
 * and a body of at most {@link COPY_BODY_MAX} behind it (one allocation, one
 * copy of the body, one plain write); or the head, then a larger body (two
 * writes, corked). Throws `bad_request` like {@link requestHead}.
 */
export function requestWrites(r: H1Request, host: string): readonly Buffer[] {
  const head = headText(r, host);
  const body = r.body;
  if (!body || body.length === 0) return [Buffer.from(head, 'latin1')];
  if (body.length > COPY_BODY_MAX) return [Buffer.from(head, 'latin1'), body];
  const out = Buffer.allocUnsafe(head.length + body.length);
  out.write(head, 0, 'latin1');
  body.copy(out, head.length);
  return [out];
}

/** The request head, or `bad_request` when a name, value or the target could split the message. */
export function requestHead(r: H1Request, host: string): Buffer {
  return Buffer.from(headText(r, host), 'latin1');
}

/** The head as a byte string (one char per byte; requestHead's checks). */
function headText(r: H1Request, host: string): string {
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
  return `${head}\r\n`;
}
