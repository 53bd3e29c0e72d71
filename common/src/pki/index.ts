/**
 * PKI for development and tests: a CA on disk and certificates it issues,
 * made with the `openssl` CLI (EC P-256, SHA-256; private keys 0600).
 * Production may use externally issued certificates instead; the TLS loader
 * (common/src/tls/) accepts both.
 *
 *   import { makeTestPki, createCa, issueCert } from '../common/src/pki/index.ts';
 *
 *   // Everything a test needs, in a temp dir (≈0.5 s):
 *   const pki = makeTestPki(dir);
 *   pki.ca.certFile;                        // the trusted CA (PEM file)
 *   pki.core.{certFile,keyFile,certPem,keyPem};   // server cert: localhost, 127.0.0.1
 *   pki.edgeA / pki.edgeB                   // gateways (serverAuth+clientAuth), URI SAN
 *   pki.operator / operator2 / auditor / app   // clients, URI SANs (see TEST_IDS)
 *   pki.foreignCa, pki.foreignClient        // untrusted CA; client with operator-1's CN
 *   pki.expiredClient, notYetValidClient, serverOnlyAsClient   // operator-1, each with one defect
 *
 *   // Your own:
 *   const ca = createCa(dir, { cn: 'My CA', days: 3650 });
 *   const c = issueCert(ca, { kind: 'server' | 'client' | 'both', cn: 'gw-1',
 *     sans: ['DNS:localhost', 'IP:127.0.0.1', 'URI:spiffe://x/gw-1'], days: 30,
 *     notBefore?: Date, notAfter?: Date, name?: 'gw-1', outDir?: dir });
 *   // → { name, kind, certFile, keyFile, certPem, keyPem, cert: X509Certificate, fingerprint256 }
 *   // Re-issuing the same name replaces both files atomically (rotation tests).
 *
 * Errors: `invalid_certificate` (bad CN, SAN, name or dates), `pki_failed`
 * (the openssl CLI is missing or failed).
 */
export {
  type Ca,
  type CertKind,
  type CreateCaOptions,
  createCa,
  type IssuedCert,
  type IssueOptions,
  issueCert,
  loadCa,
} from './issue.ts';
export { makeTestPki, TEST_IDS, type TestPki } from './test-pki.ts';
