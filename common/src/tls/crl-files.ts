/**
 * Certificate revocation lists for mTLS listeners: a PEM file of one or more
 * CRLs (`-----BEGIN X509 CRL-----`), parsed and checked at start-up rather
 * than at the first handshake.
 *
 * What OpenSSL does with them (Node's `crl` option, verified by
 * test/common/tls/crl-files.test.ts on OpenSSL 3.0):
 * - Node turns on X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL: every
 *   certificate of a client's chain, the CAs included, must be covered by a
 *   CRL of its issuer; a CA without one makes every client under it fail
 *   (UNABLE_TO_GET_CRL). So each CA of the CA file must have a CRL here
 *   (checked at load), and so must intermediates that clients send.
 * - A CRL whose nextUpdate has passed refuses every client under its issuer
 *   (CRL_HAS_EXPIRED): fail closed, until a newer CRL is loaded.
 * - Node reads only the first CRL of a buffer; {@link LoadedCrls.pems} is
 *   one string per CRL, the form the `crl` option needs.
 *
 * Errors: `invalid_certificate` naming the file and the defect.
 */
import { createHash, verify, type X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { KcmError } from '../errors.ts';
import {
  certificateNames,
  children,
  expect,
  nameText,
  oidOf,
  readWhole,
  serialHex,
  TAG,
  type Tlv,
  timeOf,
} from './der.ts';

export interface Crl {
  /** The PEM block, as given. */
  pem: string;
  /** Issuer for log lines (`CN=…, O=…`). */
  issuer: string;
  /** Issuer Name as DER, hex (compared exactly, as OpenSSL's lookup by name does in practice). */
  issuerKey: string;
  thisUpdate: Date;
  /** null: the CRL names no next update (OpenSSL then never treats it as expired). */
  nextUpdate: Date | null;
  /** Serial numbers of the revoked certificates (upper-case hex, no leading zeros). */
  revoked: ReadonlySet<string>;
}

export interface LoadedCrls {
  file: string;
  crls: Crl[];
  /** One PEM string per CRL: the value for the TLS `crl` option. */
  pems: string[];
  /** SHA-256 of the file, to notice real changes. */
  digest: string;
}

const PEM_CRL = /-----BEGIN X509 CRL-----([\s\S]+?)-----END X509 CRL-----/g;

/** Signature algorithms checked at load; others are left to OpenSSL at each handshake. */
const SIGNATURE_HASH: Record<string, string | null> = {
  '1.2.840.10045.4.3.2': 'sha256',
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
  '1.2.840.113549.1.1.11': 'sha256',
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
  '1.3.101.112': null,
};

interface ParsedCrl extends Crl {
  tbs: Buffer;
  algorithm: string;
  signature: Buffer;
}

function revokedSerials(list: Tlv | undefined): Set<string> {
  const out = new Set<string>();
  if (list?.tag !== TAG.sequence) return out;
  for (const entry of children(list)) out.add(serialHex(expect(children(entry)[0], TAG.integer, 'revoked serial')));
  return out;
}

/** CertificateList (RFC 5280 §5.1) from DER. Throws a plain Error when malformed. */
function parseCrlDer(der: Buffer, pem: string): ParsedCrl {
  const [tbsTlv, algTlv, sigTlv] = children(readWhole(der, TAG.sequence, 'CRL'));
  const tbs = children(expect(tbsTlv, TAG.sequence, 'tbsCertList'));
  let i = tbs[0]?.tag === TAG.integer ? 1 : 0; // version is optional (v1 CRLs omit it)
  expect(tbs[i++], TAG.sequence, 'signature algorithm');
  const issuer = expect(tbs[i++], TAG.sequence, 'issuer');
  const thisUpdate = timeOf(tbs[i++]);
  const maybeNext = tbs[i];
  let nextUpdate: Date | null = null;
  if (maybeNext && (maybeNext.tag === TAG.utcTime || maybeNext.tag === TAG.generalizedTime)) {
    nextUpdate = timeOf(maybeNext);
    i++;
  }
  const sig = expect(sigTlv, TAG.bitString, 'signature').value;
  if (sig[0] !== 0) throw new Error('signature has unused bits');
  return {
    pem,
    issuer: nameText(issuer),
    issuerKey: issuer.bytes.toString('hex'),
    thisUpdate,
    nextUpdate,
    revoked: revokedSerials(tbs[i]),
    tbs: (tbsTlv as Tlv).bytes,
    algorithm: oidOf(expect(children(expect(algTlv, TAG.sequence, 'algorithm'))[0], TAG.oid, 'algorithm')),
    signature: sig.subarray(1),
  };
}

/** Every CRL of a PEM text. Throws `invalid_certificate` naming `file` when there is none or one is malformed. */
export function parsePemCrls(text: string, file: string): Crl[] {
  const blocks = [...text.matchAll(PEM_CRL)];
  if (blocks.length === 0) throw new KcmError('invalid_certificate', `CRL file ${file}: no PEM X509 CRL found`);
  return blocks.map((m, n) => {
    const pem = `${m[0]}\n`;
    let crl: ParsedCrl;
    try {
      crl = parseCrlDer(Buffer.from((m[1] as string).replace(/\s+/g, ''), 'base64'), pem);
      // The parser that matters is OpenSSL's: it must take the block too.
      createSecureContext({ crl: pem });
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      throw new KcmError('invalid_certificate', `CRL file ${file}: CRL ${n + 1} does not parse (${why})`);
    }
    return crl;
  });
}

function signedBy(crl: ParsedCrl, ca: X509Certificate): boolean | undefined {
  if (!Object.hasOwn(SIGNATURE_HASH, crl.algorithm)) return undefined;
  try {
    return verify(SIGNATURE_HASH[crl.algorithm] ?? null, crl.tbs, ca.publicKey, crl.signature);
  } catch {
    return false;
  }
}

function read(file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'read error';
    throw new KcmError('invalid_certificate', `CRL file ${file}: cannot read (${code})`);
  }
}

/**
 * Reads and checks the CRL file of a listener whose clients must chain to
 * `caCerts`: at least one PEM CRL, each parsing (here and in OpenSSL); every
 * CA of `caCerts` has a CRL issued under its name; a CRL issued by one of
 * them carries its valid signature (ECDSA, RSA PKCS#1 with SHA-2, Ed25519;
 * other algorithms are left to OpenSSL). CRLs of other issuers (intermediates
 * that clients send) are kept unchecked. A CRL past its nextUpdate is not an
 * error here (see {@link crlTimeProblem}). Throws `invalid_certificate`
 * naming the file and the defect.
 */
export function loadCrlFile(file: string, caCerts: readonly X509Certificate[]): LoadedCrls {
  const bytes = read(file);
  const crls = parsePemCrls(bytes.toString('utf8'), file) as ParsedCrl[];
  caCerts.forEach((ca, n) => {
    const subjectKey = certificateNames(ca.raw).subject.bytes.toString('hex');
    const own = crls.filter((c) => c.issuerKey === subjectKey);
    const where = `CA ${ca.subject.replaceAll('\n', ', ')} (certificate ${n + 1} of the CA file)`;
    if (own.length === 0) {
      throw new KcmError(
        'invalid_certificate',
        `CRL file ${file}: no CRL from ${where}; OpenSSL checks every CA of a client's chain and would refuse every client under it`,
      );
    }
    for (const c of own) {
      if (signedBy(c, ca) === false)
        throw new KcmError(
          'invalid_certificate',
          `CRL file ${file}: the CRL from ${c.issuer} is not signed by ${where}`,
        );
    }
  });
  return {
    file,
    crls: crls.map(({ tbs: _t, algorithm: _a, signature: _s, ...c }) => c),
    pems: crls.map((c) => c.pem),
    digest: createHash('sha256').update(bytes).digest('hex'),
  };
}

/**
 * Why `crl` makes OpenSSL refuse the clients under its issuer at `now`
 * (past nextUpdate: CRL_HAS_EXPIRED; before thisUpdate: CRL_NOT_YET_VALID),
 * or null when it is current.
 */
export function crlTimeProblem(crl: Crl, now = Date.now()): string | null {
  if (crl.nextUpdate && now > crl.nextUpdate.getTime()) {
    return `expired at ${crl.nextUpdate.toISOString()} (its nextUpdate) [CRL_HAS_EXPIRED]`;
  }
  if (now < crl.thisUpdate.getTime()) return `not valid before ${crl.thisUpdate.toISOString()} [CRL_NOT_YET_VALID]`;
  return null;
}

/**
 * True when `cert` or a certificate of its chain (as a TLS peer certificate
 * links them through `issuerCertificate`) is listed in one of `crls` of its
 * issuer. For closing open connections after a reload; new handshakes are
 * OpenSSL's to refuse.
 */
export function revokedInChain(cert: X509Certificate | undefined, crls: readonly Crl[]): boolean {
  let c = cert;
  for (let depth = 0; c && depth < 10; depth++) {
    const { issuer, serial } = certificateNames(c.raw);
    const key = issuer.bytes.toString('hex');
    if (crls.some((l) => l.issuerKey === key && l.revoked.has(serial))) return true;
    const next = c.issuerCertificate;
    if (!next || next.fingerprint256 === c.fingerprint256) break;
    c = next;
  }
  return false;
}
