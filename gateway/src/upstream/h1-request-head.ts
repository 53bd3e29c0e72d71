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
