/**
 * TLS for every OpenKCM listener and client: checked certificate loading,
 * reload without restart, client-certificate checks, caller identity.
 *
 * A mTLS listener (node:https shown; node:http2 createSecureServer the same):
 *
 *   const tls = new ReloadableTls({ certFile, keyFile, caFile }, { role: 'server', sighup: true, log });
 *   const server = https.createServer(tls.serverOptions(true), handler);
 *   tls.attach(server);                 // new certificates reach new handshakes
 *   guardTlsServer(server, { log });    // unverified clients: disconnected, one log line
 *   // per request:
 *   const who = peerIdentity(req.socket as TLSSocket);   // http2: stream.session.socket
 *   if (!who) → 401 unauthenticated; else authorize(who, …)
 *   // shutdown: tls.close()
 *
 * A client (gateway → Core): `new ReloadableTls(files, { role: 'client' })`,
 * `contextOptions()` for the connector, `onReload(fn)` to rebuild the agent.
 *
 * Revocation: `new ReloadableCrl(crlFile, { caCerts, log })`, its `pems` as
 * the `crl` server option, `attach(server, context)` for reloads (see
 * crl-files.ts for what OpenSSL does with CRLs).
 *
 * Errors: `invalid_certificate` (at construction only; reloads never throw).
 */
export {
  EKU_CLIENT_AUTH,
  EKU_SERVER_AUTH,
  type LoadedTls,
  loadTlsFiles,
  parsePemCertificates,
  type TlsFiles,
  type TlsRole,
  usageProblem,
  validityProblem,
} from './cert-files.ts';
export {
  type Crl,
  crlTimeProblem,
  type LoadedCrls,
  loadCrlFile,
  parsePemCrls,
  revokedInChain,
} from './crl-files.ts';
export { DEV_LOOPBACK_IDENTITY, describeIdentity, type Identity, identityOf } from './identity.ts';
export {
  checkPeer,
  describePeer,
  type GuardOptions,
  guardTlsServer,
  type PeerCheck,
  peerIdentity,
} from './peer-check.ts';
export { ReloadableCrl, type ReloadableCrlOptions } from './reloadable-crl.ts';
export { ReloadableTls, type ReloadableTlsOptions, type ReloadListener } from './reloadable-tls.ts';
