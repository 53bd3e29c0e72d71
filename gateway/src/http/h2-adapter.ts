/**
 * The node:http2 front adapter, for callers identified by certificate:
 *
 * - a TLS port serving h2 and HTTP/1.1 by ALPN, with mTLS enforced (a client
 *   without a certificate from the configured CA is refused in the
 *   handshake); the caller identity is the verified peer certificate, and
 *   only it (one without exactly one subject CN is refused with 401, never
 *   identified by its address); with a `crlFile`, a client certificate
 *   revoked by a CRL of its chain is refused in the handshake too, and the
 *   file is reloaded when it changes (common/src/tls/reloadable-crl.ts);
 * - a plaintext port serving h2c (prior knowledge) and HTTP/1.1 on the same
 *   socket, told apart by the 24-byte HTTP/2 connection preface
 *   (sniff-port.ts). Node does not support the h2c Upgrade header.
 *
 * Both feed the same pipeline as the uWS adapter.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import http2, { type Http2ServerRequest, type Http2ServerResponse } from 'node:http2';
import type { AddressInfo, Server, Socket } from 'node:net';
import type { SecureContextOptions, TLSSocket } from 'node:tls';
import { KcmError } from '../../../common/src/errors.ts';
import { loadTlsFiles, parsePemCertificates } from '../../../common/src/tls/cert-files.ts';
import { revokedInChain } from '../../../common/src/tls/crl-files.ts';
import { describePeer } from '../../../common/src/tls/peer-check.ts';
import { ReloadableCrl } from '../../../common/src/tls/reloadable-crl.ts';
import type { AdapterName, PipelineResponse, PresentedCertificate } from '../pipeline/context.ts';
import { Pipeline } from '../pipeline/pipeline.ts';
import { reportedLength, withoutContent } from './framing.ts';
import { createSniffServer } from './sniff-port.ts';

export interface H2TlsOptions {
  host: string;
  port: number;
  certFile: string;
  keyFile: string;
  /** CA bundle that client certificates must chain to (mTLS is always on). */
  caFile: string;
  /**
   * PEM CRLs (one per CA of the chain, each CA of caFile included; OpenSSL
   * checks the whole chain). Checked at start, reloaded on change; a CRL
   * past its nextUpdate refuses every client under its CA until replaced.
   */
  crlFile?: string;
  /** The slow-client limits (defaults: {@link FRONT_LIMITS}); tests shorten them. */
  limits?: Partial<FrontLimits>;
}

export interface H2PlainOptions {
  host: string;
  port: number;
  /** The slow-client limits (defaults: {@link FRONT_LIMITS}); tests shorten them. */
  limits?: Partial<FrontLimits>;
}

/** Limits against slow and greedy clients on the node fronts (see {@link FRONT_LIMITS}). */
export interface FrontLimits {
  /** h2: concurrent streams per connection. */
  maxStreams: number;
  /** h2: a stream without progress for this long is reset. */
  streamIdleMs: number;
  /** h2: a session without any frame for this long is closed. */
  sessionIdleMs: number;
  /** HTTP/1.1: the request headers must arrive within this (else 408, closed). */
  headersMs: number;
  /** HTTP/1.1: the whole request must arrive within this (else 408, closed). */
  requestMs: number;
}

export interface NodeListener {
  readonly port: number;
  /** Stops accepting and ends open connections; resolves when closed. */
  close(): Promise<void>;
}

type AnyRequest = IncomingMessage | Http2ServerRequest;
type AnyResponse = ServerResponse | Http2ServerResponse;

const ONE_CN = 'the client certificate must name exactly one CN';

/**
 * The client certificate of a request: undefined on the plaintext listener
 * (no TLS, no certificate); on the mTLS listener, always set, since every
 * connection there presented a verified certificate. A certificate that
 * cannot name a caller (no CN, an empty CN, several CNs; or, defensively, no
 * verified certificate at all) is returned as unusable, so the request is
 * refused instead of being identified by its address.
 */
function presentedCertificate(socket: TLSSocket | undefined): PresentedCertificate | undefined {
  if (socket?.encrypted !== true) return undefined;
  const c = typeof socket.getPeerCertificate === 'function' ? socket.getPeerCertificate() : undefined;
  const fingerprint256 = typeof c?.fingerprint256 === 'string' ? c.fingerprint256 : '';
  if (!socket.authorized || !c) return { unusable: 'no verified client certificate', fingerprint256 };
  const cn: unknown = c.subject?.CN;
  if (typeof cn !== 'string' || cn.length === 0) return { unusable: ONE_CN, fingerprint256 };
  const uris = (c.subjectaltname ?? '')
    .split(', ')
    .filter((s) => s.startsWith('URI:'))
    .map((s) => s.slice(4));
  return { cn, uris, fingerprint256 };
}

function copyHeaders(req: AnyRequest): Record<string, string> {
  // No prototype: a header named `__proto__` or `constructor` is a header like any other.
  const out: Record<string, string> = Object.create(null);
  for (const [k, v] of Object.entries(req.headers)) {
    if (k.startsWith(':') || v === undefined) continue;
    out[k] = Array.isArray(v) ? v.join(', ') : v;
  }
  return out;
}

/**
 * Writes one answer, framed as on the uWS front (framing.ts): an answer
 * without content (HEAD, 204, 304) sends none and reports `reportedLength`;
 * every other answer's length is its body's.
 */
function send(req: AnyRequest, res: AnyResponse, r: PipelineResponse): void {
  if (res.writableEnded || res.destroyed) return;
  const body = typeof r.body === 'string' ? Buffer.from(r.body) : r.body;
  const headers: Record<string, string | string[] | number> = { ...r.headers };
  const head = req.method === 'HEAD';
  const noContent = withoutContent(r.status, head);
  if (noContent) {
    const length = reportedLength(r, head, body.length);
    if (length === undefined) delete headers['content-length'];
    else headers['content-length'] = length;
  } else headers['content-length'] = body.length;
  // HTTP/1.1 only: h2 has no Connection header; an unread h2 body ends with the stream.
  if (r.close && req.httpVersionMajor === 1) headers.connection = 'close';
  (res as ServerResponse).writeHead(r.status, headers);
  if (noContent) (res as ServerResponse).end();
  else (res as ServerResponse).end(body);
}

/**
 * An h2 request body that makes no progress for `ms` (no DATA while it is
 * still open) gets its stream reset (CANCEL): the client cannot hold a
 * stream, and what its body buffered, by sending nothing. The timer is
 * refreshed by each chunk and gone once the body ends or the stream closes.
 */
function resetWhenStalled(req: Http2ServerRequest, ms: number): void {
  const stream = req.stream;
  if (stream.readableEnded || stream.closed) return;
  const timer = setTimeout(() => {
    if (!stream.closed) stream.close(http2.constants.NGHTTP2_CANCEL);
  }, ms);
  timer.unref();
  const stop = () => clearTimeout(timer);
  req.on('data', () => timer.refresh());
  req.once('end', stop);
  stream.once('close', stop);
}

/** The request handler both listeners share. */
export function nodeHandler(
  pipeline: Pipeline,
  adapterOf: (req: AnyRequest) => AdapterName,
  limits: Pick<FrontLimits, 'streamIdleMs'> = FRONT_LIMITS,
) {
  return (req: AnyRequest, res: AnyResponse): void => {
    const headers = copyHeaders(req);
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const socket = ((req as Http2ServerRequest).stream?.session?.socket ?? req.socket) as TLSSocket | undefined;
    const certificate = presentedCertificate(socket);
    const declared = Pipeline.declaredLength(headers);
    const ctx = pipeline.newContext(
      {
        adapter: adapterOf(req),
        method: (req.method ?? 'GET').toUpperCase(),
        path: q < 0 ? url : url.slice(0, q),
        query: q < 0 ? '' : url.slice(q + 1),
        headers,
        peer: certificate
          ? { address: socket?.remoteAddress ?? '', certificate }
          : { address: socket?.remoteAddress ?? '' },
        startedAt: process.hrtime.bigint(),
        responder: { send: (r) => send(req, res, r) },
      },
      declared,
      () => req.pause(),
    );
    req.on('data', (chunk: Buffer) => ctx.body.push(chunk));
    req.on('end', () => ctx.body.end());
    if (req.httpVersionMajor === 2) resetWhenStalled(req as Http2ServerRequest, limits.streamIdleMs);
    const onGone = () => {
      if (ctx.responded && res.writableFinished) return;
      ctx.aborted = !ctx.responded;
      ctx.body.abort();
    };
    req.on('aborted', onGone);
    res.on('close', onGone);
    req.on('error', () => ctx.body.abort());
    pipeline.run(ctx);
  };
}

function listen(server: Server, host: string, port: number, what: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) =>
      reject(new KcmError('invalid_config', `${what} could not listen on ${host}:${port}: ${err.message}`));
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function closer(server: Server, sockets: Set<Socket>): () => Promise<void> {
  return () =>
    new Promise((resolve) => {
      server.close(() => resolve());
      for (const s of sockets) s.destroy();
    });
}

function track(server: Server): Set<Socket> {
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  return sockets;
}

/**
 * The CRL file of `o`, loaded and checked against the CAs of `ca`, watched;
 * undefined without one. Throws `invalid_config` naming fronts.h2Tls.crlFile
 * (or `invalid_certificate` when the CA file holds no parsable certificate).
 */
function loadCrl(o: H2TlsOptions, ca: Buffer, log: (msg: string) => void, watch = true): ReloadableCrl | undefined {
  if (o.crlFile === undefined) return undefined;
  const caCerts = parsePemCertificates(ca.toString('utf8'), o.caFile);
  try {
    return new ReloadableCrl(o.crlFile, { caCerts, log, watch });
  } catch (err) {
    throw new KcmError('invalid_config', `fronts.h2Tls.crlFile: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** Ends the open connections whose client certificate (or a CA of its chain) `crl` now revokes. */
function endRevoked(crl: ReloadableCrl, sockets: Set<TLSSocket>, log: (msg: string) => void): void {
  for (const s of sockets) {
    if (!revokedInChain(s.getPeerX509Certificate(), crl.current.crls)) continue;
    log(`tls: closed the connection of ${describePeer(s)}: its certificate is revoked by ${crl.file}`);
    s.destroy();
  }
}

/** Lines {@link tlsRefusalLog} writes per window before it only counts. */
const REFUSAL_LINES = 20;
const REFUSAL_WINDOW_MS = 10_000;

/**
 * The `tlsClientError` listener of the mTLS port: says why a client was
 * refused, so operators can tell an expired or foreign client certificate
 * from a network fault. Node destroys a client whose certificate does not
 * verify (`rejectUnauthorized`) without an event of its own; it reports the
 * close as `tlsClientError` (ECONNRESET) on the socket, whose
 * `authorizationError` holds OpenSSL's reason (its address is gone by then).
 * A client without a certificate fails the handshake itself (the client gets
 * the `certificate required` alert). A client that left mid-handshake is not
 * logged. At most {@link REFUSAL_LINES} lines per 10 s; the rest are counted
 * in one line when the window ends. Public data only: codes and
 * addresses, never certificate contents.
 */
export function tlsRefusalLog(
  log: (msg: string) => void,
  now: () => number = () => performance.now(),
): (err: Error & { code?: string }, socket: TLSSocket) => void {
  let windowStart = Number.NEGATIVE_INFINITY;
  let lines = 0;
  let untold = 0;
  let flush: NodeJS.Timeout | undefined;
  const tellUntold = () => {
    flush = undefined;
    if (untold > 0) log(`tls: ${untold} more refused or failed handshakes not logged in the last window`);
    untold = 0;
  };
  return (err, socket) => {
    const from = socket.remoteAddress ? ` from ${socket.remoteAddress}` : '';
    let line: string;
    if (socket.authorizationError) {
      line = `tls: refused a client certificate${from}: ${String(socket.authorizationError)}`;
    } else if (err.code === 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE') {
      line = `tls: refused a client${from}: no client certificate`;
    } else if (err.code === 'ECONNRESET') {
      return;
    } else {
      line = `tls: handshake failed${from}: ${err.code ?? 'TLS error'}`;
    }
    const t = now();
    if (t - windowStart >= REFUSAL_WINDOW_MS) {
      if (flush) clearTimeout(flush);
      tellUntold();
      windowStart = t;
      lines = 0;
    }
    if (lines < REFUSAL_LINES) {
      lines++;
      log(line);
      return;
    }
    untold++;
    // The count is told when the window ends, even if no refusal follows.
    if (!flush) {
      flush = setTimeout(tellUntold, Math.max(0, windowStart + REFUSAL_WINDOW_MS - t));
      flush.unref();
    }
  };
}

/**
 * The mTLS port's certificate, key and client CA bundle, checked as the
 * Core checks its own (common/src/tls/cert-files.ts): readable, within
 * validity, `serverAuth` usage, key matching, every CA entry a CA. Throws
 * `invalid_certificate` naming the file and what is wrong.
 */
function h2TlsFiles(o: H2TlsOptions): { key: Buffer; cert: Buffer; ca: Buffer } {
  const t = loadTlsFiles({ certFile: o.certFile, keyFile: o.keyFile, caFile: o.caFile }, 'server');
  return { key: t.key, cert: t.cert, ca: t.ca as Buffer };
}

/**
 * What startH2TlsAdapter checks before it listens (`kcm gateway --check`):
 * the TLS files and the CRL file, loaded (not watched) and let go; what
 * loading the CRL says (a CRL out of date refuses every client under its
 * CA) goes to `log`. Throws as it does.
 */
export function checkH2TlsFiles(o: H2TlsOptions, log: (msg: string) => void): void {
  const { ca } = h2TlsFiles(o);
  loadCrl(o, ca, log, false)?.close();
}

/**
 * Starts the mTLS port (h2 + HTTP/1.1 by ALPN). Throws `invalid_certificate`
 * (an unreadable or unusable certificate, key or CA file: h2TlsFiles) or
 * `invalid_config` (a bad crlFile, naming the field; the port in use).
 */
export async function startH2TlsAdapter(pipeline: Pipeline, o: H2TlsOptions): Promise<NodeListener> {
  const { key, cert, ca } = h2TlsFiles(o);
  const crl = loadCrl(o, ca, pipeline.log);
  try {
    return await serveTls(pipeline, o, { key, cert, ca, minVersion: 'TLSv1.2' }, crl);
  } catch (err) {
    crl?.close();
    throw err;
  }
}

/**
 * The defaults of {@link FrontLimits} (the uWS front closes a connection idle
 * for 10 s by itself): 100 h2 streams per connection, an h2 stream without
 * progress for 10 s is reset, an h2 session without any frame for 30 s is
 * closed; HTTP/1.1 headers within 10 s and the whole request within 60 s
 * (408 and close), checked every second.
 */
export const FRONT_LIMITS: Readonly<FrontLimits> = {
  maxStreams: 100,
  streamIdleMs: 10_000,
  sessionIdleMs: 30_000,
  headersMs: 10_000,
  requestMs: 60_000,
};

/** Applies the HTTP/1.1 limits to `server` (a node:http server, or an h2 TLS server with allowHTTP1). */
function limitHttp1(
  server: { headersTimeout: number; requestTimeout: number; connectionsCheckingInterval?: number },
  l: FrontLimits,
): void {
  server.headersTimeout = l.headersMs;
  server.requestTimeout = l.requestMs;
  server.connectionsCheckingInterval = Math.min(1000, l.headersMs);
}

/** The TLS server of {@link startH2TlsAdapter} with `context` (the whole secure context) and `crl`, listening. */
async function serveTls(
  pipeline: Pipeline,
  o: H2TlsOptions,
  context: SecureContextOptions,
  crl: ReloadableCrl | undefined,
): Promise<NodeListener> {
  const limits = { ...FRONT_LIMITS, ...o.limits };
  const server = http2.createSecureServer(
    {
      ...context,
      ...(crl ? { crl: crl.pems } : {}),
      requestCert: true,
      rejectUnauthorized: true,
      allowHTTP1: true,
      ALPNProtocols: ['h2', 'http/1.1'],
      settings: { maxConcurrentStreams: limits.maxStreams },
    },
    nodeHandler(pipeline, (req) => (req.httpVersionMajor === 2 ? 'h2' : 'https1'), limits),
  );
  server.setTimeout(limits.sessionIdleMs);
  limitHttp1(server as unknown as Parameters<typeof limitHttp1>[0], limits);
  const sockets = new Set<TLSSocket>();
  server.on('secureConnection', (s: TLSSocket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('tlsClientError', tlsRefusalLog(pipeline.log));
  if (crl) {
    // setSecureContext resets what it is not given: the reload passes the whole context again.
    crl.attach(server, context);
    crl.onReload(() => endRevoked(crl, sockets, pipeline.log));
  }
  const port = await listen(server as unknown as Server, o.host, o.port, 'h2 TLS');
  const close = closer(server as unknown as Server, sockets as Set<Socket>);
  return {
    port,
    close: () => {
      crl?.close();
      return close();
    },
  };
}

/** Starts the plaintext port: h2c by prior knowledge and HTTP/1.1, sniffed per connection. */
export async function startH2PlainAdapter(pipeline: Pipeline, o: H2PlainOptions): Promise<NodeListener> {
  const limits = { ...FRONT_LIMITS, ...o.limits };
  const handler = nodeHandler(pipeline, (req) => (req.httpVersionMajor === 2 ? 'h2c' : 'http1'), limits);
  const h2c = http2.createServer({ settings: { maxConcurrentStreams: limits.maxStreams } }, handler);
  h2c.setTimeout(limits.sessionIdleMs);
  const h1 = http.createServer(handler);
  limitHttp1(h1, limits);
  // h1 never listens (the sniffer hands it sockets), and node:http starts checking headersTimeout and
  // requestTimeout on 'listening': without this, a client trickling its headers would hold its socket forever.
  h1.emit('listening');
  const server = createSniffServer({ h2: h2c, http1: h1 });
  const sockets = track(server);
  const port = await listen(server, o.host, o.port, 'h2c/HTTP/1.1');
  return { port, close: closer(server, sockets) };
}
