/**
 * Ed25519 checkpoint signatures for the audit log (ADR-901 "signed,
 * non-repudiable"), with libsodium (WebAssembly; ARCHITECTURE.md
 * "Dependencies"). Importing this module waits for `sodium.ready`, so the
 * functions stay synchronous.
 *
 * Key handling (docs/audit.md "Keys"): the signing key is a 32-byte Ed25519
 * seed kept in a key file (mode 0600, one line of hex) next to the log unless
 * configured elsewhere; it is generated on first start. Its public key is
 * written beside it (`audit.jsonl.key` → `audit.jsonl.pub`, hex), and is what `kcm audit verify`
 * needs. Key bytes never appear in errors or logs.
 */
import { closeSync, constants, existsSync, fstatSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import sodium from 'libsodium-wrappers';
import { KcmError } from '../errors.ts';

await sodium.ready;

const SEED_BYTES = 32;
const PUBLIC_KEY_BYTES = 32;
const SIGNATURE_BYTES = 64;
if (
  sodium.crypto_sign_SEEDBYTES !== SEED_BYTES ||
  sodium.crypto_sign_PUBLICKEYBYTES !== PUBLIC_KEY_BYTES ||
  sodium.crypto_sign_BYTES !== SIGNATURE_BYTES
) {
  throw new Error('libsodium Ed25519 sizes differ from RFC 8032');
}

/** Signs checkpoints; holds the Ed25519 secret key in the WebAssembly heap only. */
export class CheckpointSigner {
  readonly #secretKey: Uint8Array;
  /** Public key, lower-case hex (64 characters). */
  readonly publicKey: string;

  private constructor(seed: Uint8Array) {
    const kp = sodium.crypto_sign_seed_keypair(seed);
    sodium.memzero(seed);
    this.#secretKey = kp.privateKey;
    this.publicKey = Buffer.from(kp.publicKey).toString('hex');
  }

  /** A signer from a 32-byte seed (the seed buffer is wiped). Throws `invalid_config` on a wrong length. */
  static fromSeed(seed: Uint8Array): CheckpointSigner {
    if (seed.length !== SEED_BYTES) throw new KcmError('invalid_config', 'audit signing seed must be 32 bytes');
    return new CheckpointSigner(seed);
  }

  /**
   * Loads the key file, or creates it (0600, exclusive create) with a fresh
   * random seed when it does not exist, and (re)writes {@link publicKeyPath}. Throws
   * KcmError `invalid_config` when the file is malformed or readable by group
   * or others, `audit_unavailable` when it cannot be created or read.
   */
  static loadOrCreate(path: string): CheckpointSigner {
    let seed: Uint8Array;
    if (existsSync(path)) {
      seed = readSeed(path);
    } else {
      seed = sodium.randombytes_buf(SEED_BYTES);
      let fd: number | undefined;
      try {
        fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
        writeSync(fd, `${Buffer.from(seed).toString('hex')}\n`);
      } catch (err) {
        throw new KcmError('audit_unavailable', `cannot create the audit signing key file (${errnoOf(err)})`);
      } finally {
        if (fd !== undefined) closeSync(fd);
      }
    }
    const signer = new CheckpointSigner(seed);
    try {
      writeFileSync(publicKeyPath(path), `${signer.publicKey}\n`, { mode: 0o644 });
    } catch (err) {
      throw new KcmError('audit_unavailable', `cannot write the audit public key file (${errnoOf(err)})`);
    }
    return signer;
  }

  /** Detached Ed25519 signature of `message`, lower-case hex (128 characters). */
  sign(message: Uint8Array): string {
    return Buffer.from(sodium.crypto_sign_detached(message, this.#secretKey)).toString('hex');
  }

  /** Wipes the secret key; the signer is unusable afterwards. */
  destroy(): void {
    sodium.memzero(this.#secretKey);
  }
}

/** Where the public key of a key file is written: `x.key` → `x.pub`, anything else → `<path>.pub`. */
export function publicKeyPath(keyFile: string): string {
  return keyFile.endsWith('.key') ? `${keyFile.slice(0, -4)}.pub` : `${keyFile}.pub`;
}

function readSeed(path: string): Uint8Array {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    if ((fstatSync(fd).mode & 0o077) !== 0)
      throw new KcmError(
        'invalid_config',
        'audit signing key file must not be readable by group or others (chmod 600)',
      );
    const text = readFileSync(fd, 'utf8').trim();
    if (!/^[0-9a-f]{64}$/.test(text))
      throw new KcmError('invalid_config', 'audit signing key file must hold 64 hex digits');
    return new Uint8Array(Buffer.from(text, 'hex'));
  } catch (err) {
    if (err instanceof KcmError) throw err;
    throw new KcmError('audit_unavailable', `cannot read the audit signing key file (${errnoOf(err)})`);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * Checks a detached signature (hex) under a public key (hex). Returns false
 * for any malformed input instead of throwing.
 */
export function verifySignature(message: Uint8Array, sigHex: string, publicKeyHex: string): boolean {
  if (!/^[0-9a-f]{128}$/.test(sigHex) || !/^[0-9a-f]{64}$/.test(publicKeyHex)) return false;
  try {
    return sodium.crypto_sign_verify_detached(Buffer.from(sigHex, 'hex'), message, Buffer.from(publicKeyHex, 'hex'));
  } catch {
    return false;
  }
}

/**
 * A public key given as 64 hex digits, or the path of a file holding them
 * (the `.pub` file). Throws KcmError `invalid_config` otherwise.
 */
export function readPublicKey(fileOrHex: string): string {
  const v = /^[0-9a-fA-F]{64}$/.test(fileOrHex) ? fileOrHex : readText(fileOrHex);
  if (!/^[0-9a-fA-F]{64}$/.test(v)) throw new KcmError('invalid_config', 'public key must be 64 hex digits');
  return v.toLowerCase();
}

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch (err) {
    throw new KcmError('invalid_config', `cannot read the public key file (${errnoOf(err)})`);
  }
}

/** The errno code of a file-system error (e.g. ENOSPC), never its message (which may hold paths or data). */
export function errnoOf(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return typeof code === 'string' ? code : 'unknown error';
}
