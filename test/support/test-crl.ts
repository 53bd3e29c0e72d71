/**
 * Real CRLs for tests, made with the openssl CLI from a CA of
 * common/src/pki (its `.openssl/index.txt` database already lists every
 * certificate issueCert made):
 *
 *   revoke(ca, cert.certFile);                       // marks it R in the database
 *   writeCrl(ca, file);                              // v2 CRL, next update in 1 day
 *   writeCrl(ca, file, { lastUpdate, nextUpdate });  // any dates (an expired CRL)
 *   crlPem(ca)                                       // the PEM text only
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Ca } from '../../common/src/pki/index.ts';
import { openssl, opensslDate, writeFileAtomic } from '../../common/src/pki/openssl.ts';

function config(ca: Ca): string {
  const state = join(ca.dir, '.openssl');
  mkdirSync(state, { recursive: true });
  const crlnumber = join(state, 'crlnumber');
  try {
    readFileSync(crlnumber);
  } catch {
    writeFileSync(crlnumber, '1000\n');
  }
  const file = join(state, 'crl.cnf');
  writeFileSync(
    file,
    [
      '[ ca ]',
      'default_ca = kcm_crl',
      '[ kcm_crl ]',
      `database = ${join(state, 'index.txt')}`,
      `crlnumber = ${crlnumber}`,
      'default_md = sha256',
      'default_crl_days = 1',
      '',
    ].join('\n'),
  );
  return file;
}

/** Marks `certFile` (issued by `ca`) revoked in the CA's database; the next CRL lists it. */
export function revoke(ca: Ca, certFile: string): void {
  openssl(['ca', '-config', config(ca), '-cert', ca.certFile, '-keyfile', ca.keyFile, '-revoke', certFile]);
}

/** A CRL of `ca` listing what its database marks revoked (PEM). */
export function crlPem(ca: Ca, o: { lastUpdate?: Date; nextUpdate?: Date } = {}): string {
  const out = join(ca.dir, '.openssl', `crl-${process.pid}-${Date.now()}.pem`);
  try {
    openssl(
      ['ca', '-gencrl', '-config', config(ca), '-cert', ca.certFile, '-keyfile', ca.keyFile, '-out', out].concat(
        o.lastUpdate ? ['-crl_lastupdate', opensslDate(o.lastUpdate)] : [],
        o.nextUpdate ? ['-crl_nextupdate', opensslDate(o.nextUpdate)] : [],
      ),
    );
    return readFileSync(out, 'utf8');
  } finally {
    rmSync(out, { force: true });
  }
}

/** Writes a CRL of `ca` (or several CAs' CRLs, concatenated) to `file` atomically. */
export function writeCrl(cas: Ca | Ca[], file: string, o: { lastUpdate?: Date; nextUpdate?: Date } = {}): void {
  const text = (Array.isArray(cas) ? cas : [cas]).map((ca) => crlPem(ca, o)).join('');
  writeFileAtomic(file, text, 0o644);
}
