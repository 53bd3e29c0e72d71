/**
 * A small certificate authority on disk, driven by the `openssl` CLI:
 * EC P-256 keys, SHA-256 signatures, explicit extensions.
 *
 *   dir/ca.crt, dir/ca.key (0600)          the CA
 *   dir/<name>.crt, dir/<name>.key (0600)  each issued certificate
 *   dir/.openssl/                          OpenSSL's issuing database
 *
 * For development and tests (`kcm pki init`); production may use certificates
 * issued by any external CA instead. Issuing from one CA directory in two
 * processes at once is not supported (OpenSSL's index file is not locked).
 */
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { KcmError } from '../errors.ts';
import { assertCommonName, assertSan, openssl, opensslDate, writeFileAtomic } from './openssl.ts';

const DAY_MS = 86_400_000;

export interface Ca {
  dir: string;
  certFile: string;
  keyFile: string;
  certPem: string;
  cert: X509Certificate;
}

export interface CreateCaOptions {
  /** Subject CN of the CA; default "OpenKCM Development CA". */
  cn?: string;
  /** Validity in days from now; default 3650. */
  days?: number;
}

/** `server` → EKU serverAuth; `client` → clientAuth; `both` → both (a gateway serves and calls Core). */
export type CertKind = 'server' | 'client' | 'both';

export interface IssueOptions {
  kind: CertKind;
  cn: string;
  /** `DNS:…`, `IP:…`, `URI:…`, `email:…`. Servers default to DNS:localhost, IP:127.0.0.1. */
  sans?: string[];
  /** File name stem in `outDir` (default: the CN with unsafe characters as `-`). Existing files are replaced atomically. */
  name?: string;
  /** Where to write; default the CA's directory. */
  outDir?: string;
  /** Validity in days from `notBefore`; default 365. Ignored when `notAfter` is given. */
  days?: number;
  /** Start of validity; default now minus one minute (clock skew). A future date makes a not-yet-valid certificate. */
  notBefore?: Date;
  /** End of validity; a past date makes an expired certificate (tests). */
  notAfter?: Date;
}

export interface IssuedCert {
  name: string;
  kind: CertKind;
  certFile: string;
  keyFile: string;
  certPem: string;
  /** The private key (PKCS#8 PEM). Never log it. */
  keyPem: string;
  cert: X509Certificate;
  /** SHA-256 fingerprint as Node prints it (`AB:CD:…`). */
  fingerprint256: string;
}

function positiveDays(v: number | undefined, dflt: number, field: string): number {
  const d = v ?? dflt;
  if (!Number.isInteger(d) || d < 1 || d > 36_500) {
    throw new KcmError('invalid_certificate', `${field} must be an integer from 1 to 36500`);
  }
  return d;
}

/** Makes a P-256 key and writes it (PKCS#8 PEM, mode 0600); returns the PEM. */
function writeNewKey(file: string): string {
  const { privateKey } = generateKeyPairSync('ec', {
    namedCurve: 'P-256',
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  writeFileAtomic(file, privateKey, 0o600);
  return privateKey;
}

function stateDir(caDir: string): string {
  return join(caDir, '.openssl');
}

/** The OpenSSL config for `ca`/`req` plus one extension section `ext`. Values were validated before. */
function opensslConfig(caDir: string, ext: string[]): string {
  const state = stateDir(caDir);
  return [
    '[ ca ]',
    'default_ca = kcm_ca',
    '[ kcm_ca ]',
    `database = ${join(state, 'index.txt')}`,
    `serial = ${join(state, 'serial')}`,
    `new_certs_dir = ${state}`,
    'default_md = sha256',
    'policy = kcm_policy',
    'unique_subject = no',
    'copy_extensions = none',
    '[ kcm_policy ]',
    'commonName = supplied',
    '[ req ]',
    'distinguished_name = kcm_dn',
    'prompt = no',
    '[ kcm_dn ]',
    'CN = unused',
    '[ ext ]',
    ...ext,
    '',
  ].join('\n');
}

function withConfig<T>(caDir: string, ext: string[], fn: (configFile: string) => T): T {
  const file = join(stateDir(caDir), `openssl-${process.pid}-${Date.now()}.cnf`);
  writeFileAtomic(file, opensslConfig(caDir, ext), 0o600);
  try {
    return fn(file);
  } finally {
    rmSync(file, { force: true });
  }
}

/**
 * Creates a CA in `dir` (made if missing): ca.key (0600) and a self-signed
 * ca.crt with basicConstraints critical CA:TRUE, pathlen 0, keyUsage
 * keyCertSign+cRLSign. Replaces an existing CA in `dir`. Throws
 * `invalid_certificate` (bad option) or `pki_failed` (openssl failed).
 */
export function createCa(dir: string, opts: CreateCaOptions = {}): Ca {
  const cn = opts.cn ?? 'OpenKCM Development CA';
  assertCommonName(cn);
  const days = positiveDays(opts.days, 3650, 'days');
  mkdirSync(stateDir(dir), { recursive: true, mode: 0o700 });
  writeFileAtomic(join(stateDir(dir), 'index.txt'), '', 0o600);
  const keyFile = join(dir, 'ca.key');
  const certFile = join(dir, 'ca.crt');
  writeNewKey(keyFile);
  const ext = [
    'basicConstraints = critical, CA:TRUE, pathlen:0',
    'keyUsage = critical, keyCertSign, cRLSign',
    'subjectKeyIdentifier = hash',
  ];
  const tmpCert = `${certFile}.new`;
  withConfig(dir, ext, (config) =>
    openssl(
      ['req', '-x509', '-new', '-config', config, '-extensions', 'ext', '-key', keyFile, '-subj', `/CN=${cn}`].concat([
        '-days',
        String(days),
        '-sha256',
        '-out',
        tmpCert,
      ]),
    ),
  );
  const certPem = readFileSync(tmpCert, 'utf8');
  writeFileAtomic(certFile, certPem, 0o644);
  rmSync(tmpCert, { force: true });
  return { dir, certFile, keyFile, certPem, cert: new X509Certificate(certPem) };
}

/** Opens an existing CA directory made by {@link createCa}; throws `invalid_certificate` naming the missing file. */
export function loadCa(dir: string): Ca {
  const certFile = join(dir, 'ca.crt');
  const keyFile = join(dir, 'ca.key');
  for (const f of [certFile, keyFile, join(stateDir(dir), 'index.txt')]) {
    if (!existsSync(f)) throw new KcmError('invalid_certificate', `${f} is missing: run \`kcm pki init\` first`);
  }
  const certPem = readFileSync(certFile, 'utf8');
  return { dir, certFile, keyFile, certPem, cert: new X509Certificate(certPem) };
}

function extensionsFor(kind: CertKind, sans: string[]): string[] {
  const eku = { server: 'serverAuth', client: 'clientAuth', both: 'serverAuth, clientAuth' }[kind];
  return [
    'basicConstraints = critical, CA:FALSE',
    'keyUsage = critical, digitalSignature',
    `extendedKeyUsage = ${eku}`,
    'subjectKeyIdentifier = hash',
    'authorityKeyIdentifier = keyid',
    ...(sans.length > 0 ? [`subjectAltName = ${sans.join(', ')}`] : []),
  ];
}

/**
 * Issues a certificate signed by `ca`: a fresh P-256 key (`<name>.key`,
 * 0600) and `<name>.crt` with keyUsage digitalSignature, the EKU of `kind`,
 * and the SANs. Existing files of that name are replaced atomically (the
 * key first, then the certificate). Throws `invalid_certificate` (bad CN,
 * SAN, dates or kind) or `pki_failed` (openssl failed).
 */
export function issueCert(ca: Ca, o: IssueOptions): IssuedCert {
  if (o.kind !== 'server' && o.kind !== 'client' && o.kind !== 'both') {
    throw new KcmError('invalid_certificate', `kind must be server, client or both, not ${String(o.kind)}`);
  }
  assertCommonName(o.cn);
  const sans = o.sans ?? (o.kind === 'client' ? [] : ['DNS:localhost', 'IP:127.0.0.1']);
  for (const s of sans) assertSan(s);
  const name = o.name ?? o.cn.replace(/[^A-Za-z0-9._-]/g, '-');
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(name) || name.startsWith('.') || name === 'ca') {
    throw new KcmError('invalid_certificate', `name ${JSON.stringify(name)}: 1-64 of A-Z a-z 0-9 . _ - (not "ca")`);
  }
  const notBefore = o.notBefore ?? new Date(Date.now() - 60_000);
  const notAfter = o.notAfter ?? new Date(notBefore.getTime() + positiveDays(o.days, 365, 'days') * DAY_MS);
  if (Number.isNaN(notBefore.getTime()) || Number.isNaN(notAfter.getTime()) || notAfter <= notBefore) {
    throw new KcmError('invalid_certificate', 'notAfter must be a valid date after notBefore');
  }
  const outDir = o.outDir ?? ca.dir;
  mkdirSync(outDir, { recursive: true });
  const keyFile = join(outDir, `${name}.key`);
  const certFile = join(outDir, `${name}.crt`);
  const work = join(stateDir(ca.dir), `${name}-${process.pid}-${Date.now()}`);
  const newKey = `${work}.key`;
  const csr = `${work}.csr`;
  const newCert = `${work}.crt`;
  try {
    const keyPem = writeNewKey(newKey);
    withConfig(ca.dir, extensionsFor(o.kind, sans), (config) => {
      openssl(['req', '-new', '-config', config, '-key', newKey, '-subj', `/CN=${o.cn}`, '-out', csr]);
      openssl(
        ['ca', '-batch', '-config', config, '-extensions', 'ext', '-in', csr, '-out', newCert]
          .concat(['-cert', ca.certFile, '-keyfile', ca.keyFile, '-notext', '-rand_serial', '-md', 'sha256'])
          .concat(['-startdate', opensslDate(notBefore), '-enddate', opensslDate(notAfter)]),
      );
    });
    const certPem = readFileSync(newCert, 'utf8');
    const cert = new X509Certificate(certPem);
    writeFileAtomic(keyFile, keyPem, 0o600);
    writeFileAtomic(certFile, certPem, 0o644);
    return { name, kind: o.kind, certFile, keyFile, certPem, keyPem, cert, fingerprint256: cert.fingerprint256 };
  } finally {
    for (const f of [newKey, csr, newCert]) rmSync(f, { force: true });
  }
}
