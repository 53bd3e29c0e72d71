/**
 * Client-certificate checks for mTLS listeners (node:https, node:http2,
 * node:tls). Listeners ask for a certificate and let OpenSSL verify the
 * chain, dates and purpose (`requestCert: true, rejectUnauthorized: false`),
 * then {@link guardTlsServer} decides on every new connection: a peer that
 * is not authorized, has no certificate, is outside its validity period or
 * lacks EKU clientAuth is disconnected before any request is read, with one
 * clear log line. (With `rejectUnauthorized: true` Node drops such sockets
 * silently, leaving operators nothing to read.) {@link peerIdentity}
 * re-checks per request and returns null for anything not accepted, so a
 * listener without the guard still fails closed.
 */
import type { X509Certificate } from 'node:crypto';
import type { TLSSocket, Server as TlsServer } from 'node:tls';
import { usageProblem, validityProblem } from './cert-files.ts';
import { type Identity, identityOf } from './identity.ts';

export type PeerCheck =
  | { ok: true; identity: Identity; cert: X509Certificate }
  | { ok: false; reason: string; code: string };

const UNTRUSTED = new Set([
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
]);

function explain(code: string, cert: X509Certificate): string {
  if (UNTRUSTED.has(code)) return `not issued by a trusted CA (issuer ${cert.issuer.replaceAll('\n', ', ')})`;
  if (code === 'CERT_HAS_EXPIRED') return `certificate expired on ${new Date(cert.validTo).toISOString()}`;
  if (code === 'CERT_NOT_YET_VALID') return `certificate not valid before ${new Date(cert.validFrom).toISOString()}`;
  if (code === 'INVALID_PURPOSE') return 'extended key usage lacks clientAuth';
  return 'certificate verification failed';
}

const checked = new WeakMap<object, PeerCheck>();

/**
 * Decides on the peer of a TLS socket (or an http2 session's socket proxy):
 * verified by OpenSSL against the listener's CA, within its validity period
 * at `now`, EKU clientAuth. Cached per socket.
 */
export function checkPeer(socket: TLSSocket, now = Date.now()): PeerCheck {
  const cached = checked.get(socket);
  if (cached) return cached;
  const cert = socket.getPeerX509Certificate?.();
  let result: PeerCheck;
  if (!cert) {
    result = { ok: false, code: 'NO_CERTIFICATE', reason: 'no client certificate' };
  } else if (!socket.authorized) {
    const code = String(socket.authorizationError ?? 'UNAUTHORIZED');
    result = { ok: false, code, reason: explain(code, cert) };
  } else {
    const problem = validityProblem(cert, now) ?? usageProblem(cert, 'client');
    result = problem
      ? { ok: false, code: 'CERT_CHECK', reason: `certificate ${problem}` }
      : { ok: true, identity: identityOf(cert), cert };
  }
  checked.set(socket, result);
  return result;
}

/**
 * The verified caller of a TLS socket, or null when there is none (then:
 * 401). Validity is re-checked at `now`, so a certificate that expires during
 * a keep-alive connection stops working on that connection too.
 */
export function peerIdentity(socket: TLSSocket, now = Date.now()): Identity | null {
  const r = checkPeer(socket, now);
  return r.ok && validityProblem(r.cert, now) === null ? r.identity : null;
}

/** `127.0.0.1:4711 (CN=x, issuer CN=y, sha256 AB:…)` for log lines: public certificate data only. */
export function describePeer(socket: TLSSocket): string {
  const addr = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
  const cert = socket.getPeerX509Certificate?.();
  if (!cert) return addr;
  const subject = cert.subject.replaceAll('\n', ', ');
  return `${addr} (${subject}, issuer ${cert.issuer.replaceAll('\n', ', ')}, sha256 ${cert.fingerprint256})`;
}

export interface GuardOptions {
  log: (msg: string) => void;
  /** Called for each refused connection (metrics, audit). */
  onRefused?: (socket: TLSSocket, check: Extract<PeerCheck, { ok: false }>) => void;
}

/**
 * Makes `server` refuse unverified clients at connection time with a log line
 * `tls: refused client <peer>: <reason> [<code>]`, and log failed handshakes
 * (`tls: handshake failed …`). The server must have been created with
 * `requestCert: true` (ReloadableTls.serverOptions does). Runs before the
 * HTTP layer sees the socket.
 */
export function guardTlsServer(server: TlsServer, o: GuardOptions): void {
  server.prependListener('secureConnection', (socket: TLSSocket) => {
    const r = checkPeer(socket);
    if (r.ok) return;
    o.log(`tls: refused client ${describePeer(socket)}: ${r.reason} [${r.code}]`);
    o.onRefused?.(socket, r);
    socket.destroy();
  });
  server.on('tlsClientError', (err: Error & { code?: string }, socket: TLSSocket) => {
    o.log(`tls: handshake failed from ${socket.remoteAddress ?? '?'}: ${err.message} [${err.code ?? 'TLS'}]`);
  });
}
