/**
 * The uWebSockets.js front adapter (HTTP/1.1, optional TLS): the fast path
 * for loopback, sidecar and in-cluster callers, identified by network
 * position (uWS cannot verify client certificates: ENVIRONMENT.md).
 *
 * Refuses to start unless uws-load.ts proved the native binary loaded. uWS
 * rules (STYLE.md): onAborted before anything async; method, URL, headers and
 * peer address copied synchronously (the request object dies with the
 * handler); every onData chunk copied (its ArrayBuffer is detached after the
 * callback); writes corked; tryEnd/onWritable for backpressure; nothing
 * written after an abort.
 */
import type { HttpRequest, HttpResponse, TemplatedApp, us_listen_socket } from '@trufflesuite/uws-js-unofficial';
import { KcmError } from '../../../common/src/errors.ts';
import { hasLoneSurrogate } from '../../../common/src/format/unicode.ts';
import type { PipelineResponse, RequestContext } from '../pipeline/context.ts';
import { type AdapterRequest, Pipeline } from '../pipeline/pipeline.ts';
import { reportedLength, withoutContent } from './framing.ts';
import { statusLine } from './status-line.ts';
import { loadUws } from './uws-load.ts';

type Uws = typeof import('@trufflesuite/uws-js-unofficial');

export interface UwsAdapterOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** Serve HTTPS (server certificate only: uWS cannot do mTLS). */
  tls?: { certFile: string; keyFile: string };
}

export interface UwsListener {
  readonly port: number;
  /** Path of the native binary that serves (for /metrics and doctor). */
  readonly binary: string;
  /** Stops accepting and closes every connection (call it after draining: answers still pending are cut). */
  close(): void;
}

/** The uWS module, or a KcmError `native_unavailable` naming why the fast path cannot run. */
export function requireNativeUws(): { uws: Uws; binary: string } {
  const loaded = loadUws();
  if (!loaded.uws || !loaded.binary) {
    throw new KcmError('native_unavailable', `uWebSockets.js fast path refused: ${loaded.error ?? 'unknown'}`);
  }
  return { uws: loaded.uws as Uws, binary: loaded.binary };
}

const NON_ASCII = /[^\t\x20-\x7e]/;

/**
 * uWS hands header values over decoded as UTF-8; the pipeline's convention
 * (node:http's and node:http2's) is one char per byte, so the value is
 * re-encoded to its bytes: what the upstream client writes is then exactly
 * what the client sent, and no char can carry a CR or LF in its low byte.
 */
function byteString(v: string): string {
  return Buffer.from(v, 'utf8').toString('latin1');
}

const EMPTY = Buffer.alloc(0);

/** uWS's peer address text (ASCII, at most 45 bytes) as a string, without a TextDecoder call. */
function addressText(ab: ArrayBuffer): string {
  return String.fromCharCode.apply(null, new Uint8Array(ab) as unknown as number[]);
}
const BEYOND_LATIN1 = /[\u0100-\uffff]/;

/**
 * A response header value as uWS should write it. Header strings hold one
 * byte per char (h1-parser.ts reads upstream heads as Latin-1, RFC 9110
 * §5.5), but uWS writes a string as UTF-8: a value with chars 0x80–0xFF goes
 * as its Latin-1 bytes, so the client gets the upstream's bytes (é stays E9,
 * not C3 A9). Visible ASCII (nearly every value) goes as the string, with no
 * allocation. A char past 0xFF is no byte (only our own code could make one):
 * it stays UTF-8, whose bytes are never CR, LF or NUL, where truncating it
 * to Latin-1 could turn U+010D U+010A into CR LF.
 */
function headerValue(v: string): string | Buffer {
  if (!NON_ASCII.test(v) || BEYOND_LATIN1.test(v)) return v;
  return Buffer.from(v, 'latin1');
}

/**
 * Writes one response with backpressure; `res` must be corked by the caller.
 * `head`: the request was HEAD. uWS writes a `Date` of its own, so a `date`
 * in r.headers (an upstream's) is not copied. uWS frames the body itself (it writes
 * Content-Length), so a `content-length` in r.headers is never copied,
 * except as the reported length of an answer without content:
 *
 * - 204: no Content-Length at all (RFC 9110 §8.6);
 * - HEAD and 304: the length a GET would have got (RFC 9110 §8.6, §15.4.5):
 *   a valid `content-length` of the answer (the upstream's, when forwarded),
 *   else for HEAD the body's own length (our error answers), else none. The
 *   body is never sent.
 *
 * Such a length is written as a header, then `endWithoutBody()`: in uWS.js
 * 20.30 `endWithoutBody(n)` with n > 0 leaves the response pending (the
 * next request on the connection closes it) and `endWithoutBody(undefined,
 * true)` writes a bogus length. So an answer without content that must
 * close the connection (`r.close`: an error that left the request body
 * unread) ends with `end(empty, true)`, i.e. `Content-Length: 0`: uWS cannot
 * both close and omit the length (test/gateway/http/uws-response.test.ts).
 */
export function writeResponse(res: HttpResponse, r: PipelineResponse, head: boolean): void {
  res.writeStatus(statusLine(r.status));
  for (const name in r.headers) {
    // uWS writes the length, and a Date of its own: a forwarded `date` would make a second one (RFC 9110 §6.6.1: one).
    if (name === 'content-length' || name === 'date') continue;
    const v = r.headers[name] as string | string[];
    if (typeof v === 'string') res.writeHeader(name, headerValue(v));
    else for (const one of v) res.writeHeader(name, headerValue(one));
  }
  // A well-formed string body goes to uWS as it is (uWS writes it as UTF-8,
  // the bytes Buffer.byteLength counts): no Buffer unless the socket pushes
  // back. A lone surrogate would go out as its invalid 3-byte form (ED A0 80)
  // where Buffer.from writes U+FFFD, so such a string is converted whole. A
  // string whose UTF-8 length is its length is ASCII (every other char takes
  // 2 or more bytes), so it holds no surrogate and is not searched for one.
  let body = r.body;
  let length = typeof body === 'string' ? Buffer.byteLength(body) : body.length;
  if (typeof body === 'string' && length !== body.length && hasLoneSurrogate(body)) {
    body = Buffer.from(body);
    length = body.length;
  }
  if (withoutContent(r.status, head)) {
    endWithoutContent(res, r, head, length);
    return;
  }
  if (r.close) {
    res.end(body, true);
    return;
  }
  const start = res.getWriteOffset();
  const [ok, done] = res.tryEnd(body, length);
  if (ok || done) return;
  const bytes = typeof body === 'string' ? Buffer.from(body) : body;
  res.onWritable((offset) => {
    const [ok2] = res.tryEnd(bytes.subarray(offset - start), length);
    return ok2;
  });
}

/** Ends an answer that carries no content (HEAD, 204, 304), see writeResponse. `own`: the body's length. */
function endWithoutContent(res: HttpResponse, r: PipelineResponse, head: boolean, own: number): void {
  if (r.close) {
    res.end(EMPTY, true);
    return;
  }
  const length = reportedLength(r, head, own);
  if (length !== undefined) res.writeHeader('content-length', length);
  res.endWithoutBody();
}

/** The TCP peer of a request on a public listener. */
const tcpPeer = (res: HttpResponse): string => addressText(res.getRemoteAddressAsText());

/**
 * The client a request on the internal listener came from: the address in
 * the PROXY v2 header the native front starts each tunnel with (uWS reads
 * it). Only the native front can reach that listener (startUwsUnixAdapter);
 * it closes a tunnel whose client bytes carry a PROXY signature, so no
 * client can name its own address here.
 */
const proxiedPeer = (res: HttpResponse): string => addressText(res.getProxiedRemoteAddressAsText());

function handle(pipeline: Pipeline, res: HttpResponse, req: HttpRequest, peerOf: (res: HttpResponse) => string): void {
  let ctx: RequestContext | undefined;
  let gone = false;
  res.onAborted(() => {
    gone = true;
    if (ctx) {
      ctx.aborted = true;
      ctx.body.abort();
    }
  });
  // No prototype: a header named `constructor` is a header like any other, not Object's.
  const headers: Record<string, string> = Object.create(null);
  req.forEach((k, v0) => {
    const v = NON_ASCII.test(v0) ? byteString(v0) : v0;
    const prev = headers[k];
    headers[k] = prev === undefined ? v : `${prev}, ${v}`;
  });
  const method = req.getMethod().toUpperCase();
  const head = method === 'HEAD';
  const init: AdapterRequest = {
    adapter: 'uws',
    method,
    path: req.getUrl(),
    query: req.getQuery() ?? '',
    headers,
    peer: { address: peerOf(res) },
    startedAt: process.hrtime.bigint(),
    responder: {
      send(r) {
        if (gone) return;
        res.cork(() => writeResponse(res, r, head));
      },
    },
  };
  const declared = Pipeline.declaredLength(headers);
  ctx = pipeline.newContext(init, declared);
  const body = ctx.body;
  if (declared === 0 || (declared === undefined && headers['transfer-encoding'] === undefined)) {
    body.end();
  } else {
    res.onData((chunk, isLast) => {
      if (chunk.byteLength > 0) body.push(Buffer.from(new Uint8Array(chunk)));
      if (isLast) body.end();
    });
  }
  pipeline.run(ctx);
}

/**
 * Starts the uWS listener. Throws `native_unavailable` on the emulated
 * fallback, `invalid_config` when the port cannot be bound.
 */
export function startUwsAdapter(pipeline: Pipeline, o: UwsAdapterOptions): Promise<UwsListener> {
  const { uws, binary } = requireNativeUws();
  const app: TemplatedApp = o.tls
    ? uws.SSLApp({ cert_file_name: o.tls.certFile, key_file_name: o.tls.keyFile })
    : uws.App();
  app.any('/*', (res, req) => handle(pipeline, res, req, tcpPeer));
  return new Promise((resolve, reject) => {
    app.listen(o.host, o.port, (socket: us_listen_socket | false) => {
      if (!socket) {
        reject(new KcmError('invalid_config', `uWS could not listen on ${o.host}:${o.port}`));
        return;
      }
      let open = true;
      resolve({
        port: uws.us_socket_local_port(socket as unknown as Parameters<Uws['us_socket_local_port']>[0]),
        binary,
        close() {
          if (!open) return;
          open = false;
          uws.us_listen_socket_close(socket);
          // Then every connection, idle keep-alive ones included: without
          // this, the process waits out uWS's 10 s idle timeout per client.
          // Answers still pending get onAborted (nothing more is written).
          (app as TemplatedApp & { close?: () => void }).close?.();
        },
      });
    });
  });
}

/**
 * The pipeline's internal listener for the native front's tunnels
 * (native-front/native-front.ts): plain HTTP/1.1 on the Unix socket `path`,
 * peers taken from the PROXY v2 header each tunnel starts with. The caller
 * puts `path` in a directory only the gateway's user can open. Throws
 * `native_unavailable` on the emulated fallback, `invalid_config` when the
 * socket cannot be bound.
 */
export function startUwsUnixAdapter(pipeline: Pipeline, path: string): Promise<{ close(): void }> {
  const { uws } = requireNativeUws();
  const app = uws.App();
  app.any('/*', (res, req) => handle(pipeline, res, req, proxiedPeer));
  return new Promise((resolve, reject) => {
    app.listen_unix((socket: us_listen_socket | false) => {
      if (!socket) {
        reject(new KcmError('invalid_config', "uWS could not listen on the native front's internal socket"));
        return;
      }
      let open = true;
      resolve({
        close() {
          if (!open) return;
          open = false;
          uws.us_listen_socket_close(socket);
          (app as TemplatedApp & { close?: () => void }).close?.();
        },
      });
    }, path);
  });
}
