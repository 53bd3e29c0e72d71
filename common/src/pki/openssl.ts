/**
 * The `openssl` CLI as the certificate issuer (Debian package `openssl`):
 * one synchronous call per step, stderr folded into a `pki_failed` error.
 * Inputs that reach an OpenSSL config file or `-subj` are validated here
 * first, so a name cannot inject a config line, a variable (`$x`) or an
 * extra RDN.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, openSync, renameSync, writeSync } from 'node:fs';
import { KcmError } from '../errors.ts';

/** Runs `openssl …args`; returns stdout. Throws `pki_failed` with OpenSSL's first error line. */
export function openssl(args: string[]): string {
  try {
    return execFileSync('openssl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT')
      throw new KcmError('pki_failed', 'the openssl CLI is not installed (apt-get install openssl)');
    const line = (e.stderr ?? '').split('\n').find((l) => /error|invalid|unable|problem/i.test(l));
    throw new KcmError('pki_failed', `openssl ${args[0]}: ${(line ?? e.message).trim().slice(0, 300)}`);
  }
}

/** A subject common name: 1-64 characters of `A-Z a-z 0-9 space . _ @ : -` (no `/`, `+`, `=`, `\`). */
const CN = /^[A-Za-z0-9._@:-][A-Za-z0-9 ._@:-]{0,63}$/;

/** Subject alternative names as OpenSSL spells them; no `,` `#` `$` `\` `"` or whitespace. */
const SAN =
  /^(DNS:[A-Za-z0-9*._-]{1,253}|IP:[0-9A-Fa-f:.]{2,39}|URI:[A-Za-z][A-Za-z0-9+.-]*:[!%&'()*+./0-9:;=?@A-Z[\]_a-z~-]{1,500}|email:[A-Za-z0-9!%&'*+./=?^_`{|}~@-]{3,254})$/;

/** Throws `invalid_certificate` naming the value unless `cn` is a safe common name. */
export function assertCommonName(cn: string): void {
  if (!CN.test(cn)) {
    throw new KcmError(
      'invalid_certificate',
      `common name ${JSON.stringify(cn)}: use 1-64 of A-Z a-z 0-9 space . _ @ : -`,
    );
  }
}

/** Throws `invalid_certificate` naming the value unless `san` is `DNS:…`, `IP:…`, `URI:…` or `email:…`. */
export function assertSan(san: string): void {
  if (!SAN.test(san)) {
    throw new KcmError(
      'invalid_certificate',
      `subject alternative name ${JSON.stringify(san)}: use DNS:name, IP:address, URI:scheme:… or email:address`,
    );
  }
}

/** `YYYYMMDDHHMMSSZ` (GeneralizedTime) for `openssl ca -startdate/-enddate`. */
export function opensslDate(d: Date): string {
  return `${d.toISOString().slice(0, 19).replace(/[-:T]/g, '')}Z`;
}

/**
 * Writes `data` to `path` atomically (temp file then rename), with `mode`
 * from creation on: a private key is never readable by others, not even for
 * an instant, and a watcher never sees a half-written file.
 */
export function writeFileAtomic(path: string, data: string, mode: number): void {
  const tmp = `${path}.${process.pid}.${Date.now()}.tmp`;
  const fd = openSync(tmp, 'wx', mode);
  try {
    writeSync(fd, data);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}
