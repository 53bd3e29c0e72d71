/**
 * Loading a service's own certificate, key and CA bundle, with the checks a
 * misconfiguration deserves at start-up rather than at the first handshake:
 * each file parses, the certificate is within its validity period, carries
 * the EKU of its role (serverAuth for a listener, clientAuth for a caller),
 * matches the private key, and every CA bundle entry is a CA. Errors are
 * `invalid_certificate` naming the file and the defect; they never contain
 * key material.
 */
import { createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { KcmError } from '../errors.ts';

export const EKU_SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
export const EKU_CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

export interface TlsFiles {
  certFile: string;
  keyFile: string;
  /** CA bundle: the CAs whose certificates this side accepts from its peers. */
  caFile?: string;
}

/** `server`: the certificate must allow serverAuth; `client`: clientAuth; `both`: both. */
export type TlsRole = 'server' | 'client' | 'both';

export interface LoadedTls {
  files: TlsFiles;
  cert: Buffer;
  key: Buffer;
  ca?: Buffer;
  /** The leaf (first certificate of certFile). */
  leaf: X509Certificate;
  caCerts: X509Certificate[];
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** Every certificate in a PEM text; throws `invalid_certificate` naming `file` when there is none or one is malformed. */
export function parsePemCertificates(pem: string, file: string): X509Certificate[] {
  const blocks = pem.match(PEM_CERT) ?? [];
  if (blocks.length === 0) throw new KcmError('invalid_certificate', `${file}: no PEM certificate found`);
  return blocks.map((b, i) => {
    try {
      return new X509Certificate(b);
    } catch {
      throw new KcmError('invalid_certificate', `${file}: certificate ${i + 1} does not parse`);
    }
  });
}

/** Why `cert` is outside its validity period at `now`, or null when it is within it. */
export function validityProblem(cert: X509Certificate, now = Date.now()): string | null {
  const from = new Date(cert.validFrom).getTime();
  const to = new Date(cert.validTo).getTime();
  if (now < from) return `not valid before ${new Date(from).toISOString()}`;
  if (now > to) return `expired on ${new Date(to).toISOString()}`;
  return null;
}

/** Why `cert` cannot act in `role`, or null. An absent EKU extension counts as missing (strict). */
export function usageProblem(cert: X509Certificate, role: TlsRole): string | null {
  const eku = cert.keyUsage ?? [];
  const need =
    role === 'both' ? [EKU_SERVER_AUTH, EKU_CLIENT_AUTH] : [role === 'server' ? EKU_SERVER_AUTH : EKU_CLIENT_AUTH];
  const missing = need.filter((oid) => !eku.includes(oid));
  if (missing.length === 0) return null;
  const names = missing.map((oid) => (oid === EKU_SERVER_AUTH ? 'serverAuth' : 'clientAuth'));
  return `extended key usage lacks ${names.join(' and ')}`;
}

function read(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'read error';
    throw new KcmError('invalid_certificate', `${what} ${file}: cannot read (${code})`);
  }
}

function privateKey(pem: Buffer, file: string): KeyObject {
  try {
    return createPrivateKey(pem);
  } catch {
    throw new KcmError('invalid_certificate', `key file ${file}: not a PEM private key (or it is encrypted)`);
  }
}

/**
 * Reads and checks `files` for `role` at time `now`. Returns the buffers for
 * a secure context plus the parsed certificates. Throws `invalid_certificate`
 * naming the file: unreadable, no certificate, outside its validity period,
 * wrong EKU, key not matching, a CA bundle entry that is not a CA.
 */
export function loadTlsFiles(files: TlsFiles, role: TlsRole, now = Date.now()): LoadedTls {
  const cert = read(files.certFile, 'certificate file');
  const key = read(files.keyFile, 'key file');
  const chain = parsePemCertificates(cert.toString('utf8'), files.certFile);
  const leaf = chain[0] as X509Certificate;
  const when = validityProblem(leaf, now);
  if (when) throw new KcmError('invalid_certificate', `certificate file ${files.certFile} (${leaf.subject}): ${when}`);
  const usage = usageProblem(leaf, role);
  if (usage)
    throw new KcmError(
      'invalid_certificate',
      `certificate file ${files.certFile} (${leaf.subject}): ${usage} (needed as a ${role})`,
    );
  if (!leaf.checkPrivateKey(privateKey(key, files.keyFile))) {
    throw new KcmError('invalid_certificate', `key file ${files.keyFile} does not match certificate ${files.certFile}`);
  }
  let ca: Buffer | undefined;
  let caCerts: X509Certificate[] = [];
  if (files.caFile !== undefined) {
    ca = read(files.caFile, 'CA file');
    caCerts = parsePemCertificates(ca.toString('utf8'), files.caFile);
    caCerts.forEach((c, i) => {
      if (!c.ca)
        throw new KcmError(
          'invalid_certificate',
          `CA file ${files.caFile}: certificate ${i + 1} (${c.subject}) is not a CA`,
        );
      const p = validityProblem(c, now);
      if (p)
        throw new KcmError('invalid_certificate', `CA file ${files.caFile}: certificate ${i + 1} (${c.subject}) ${p}`);
    });
  }
  return { files, cert, key, ...(ca ? { ca } : {}), leaf, caCerts };
}
