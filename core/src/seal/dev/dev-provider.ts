/**
 * Development-only "auto-unseal": a 32-byte key in a local file plays the KMS
 * key. INSECURE: anyone who can read the file can unseal. It exists so a
 * developer can restart a node without entering Shamir shares, and it refuses
 * to run unless the caller states it is in development mode.
 *
 * The file key is imported into the crypto face (native/index.ts; the bytes
 * read from disk are zeroed by importKey) and seals the data key with
 * AES-256-GCM: ciphertext = nonce (12) ‖ ct (32) ‖ tag (16), AAD = the
 * canonical SealContext encoding (../seal-context.ts). keyId = 'dev:' + the first
 * 8 bytes of HMAC-SHA-256(file key, "openkcm dev seal key id") in hex: it names
 * the key without revealing it, so a blob from another key file fails as
 * `key_not_found` instead of a bare tag failure. keyVersion is ''.
 */
import { randomFillSync } from 'node:crypto';
import { closeSync, constants, fstatSync, openSync, readSync, writeSync } from 'node:fs';
import {
  type Crypto,
  CryptoError,
  defaultCrypto,
  type KeyHandle,
  WRAPPED_KEY_BYTES,
} from '../../../../native/index.ts';
import { sealContextAad } from '../seal-context.ts';
import {
  type DataKeyOptions,
  type EncryptedDataKey,
  type SealContext,
  type SealProvider,
  SealProviderError,
} from '../seal-provider.ts';

export const DEV_KEY_BYTES = 32;
export const DEV_SEAL_WARNING_CODE = 'KCM_DEV_SEAL';

export interface DevSealConfig {
  /** Path of the key file; created (32 random bytes, mode 0600) when missing. */
  keyFile: string;
}

export interface DevSealOptions {
  /** Must be true: the dev seal is refused outside development mode. */
  devMode: boolean;
  /** Crypto backend; default defaultCrypto(). */
  crypto?: Crypto;
}

export class DevSealProvider implements SealProvider {
  readonly type = 'dev' as const;
  readonly keyId: string;
  #kek: KeyHandle | undefined;

  /**
   * Refuses (SealProviderError `config`) unless `opts.devMode === true`; emits
   * a `KCM_DEV_SEAL` warning on every construction; reads or creates the key
   * file. Throws `config` when `config.keyFile` is not a non-empty string, is
   * not a regular file of exactly 32 bytes, or is readable/writable by group
   * or others (like ssh with private keys).
   */
  constructor(config: DevSealConfig, opts: DevSealOptions) {
    if (opts?.devMode !== true) {
      throw new SealProviderError(
        'config',
        'dev',
        'dev seal is refused outside development mode (devMode is not true)',
      );
    }
    const keyFile = (config as Partial<DevSealConfig> | undefined)?.keyFile;
    if (typeof keyFile !== 'string' || keyFile.length === 0) {
      throw new SealProviderError('config', 'dev', 'config.keyFile must be a non-empty string');
    }
    process.emitWarning(
      `the dev seal provider is INSECURE: the seal key lies in plain ${keyFile}; never use it outside development`,
      { type: 'SecurityWarning', code: DEV_SEAL_WARNING_CODE },
    );
    const crypto = opts.crypto ?? defaultCrypto();
    this.#kek = crypto.importKey(readOrCreateKeyFile(keyFile));
    this.keyId = `dev:${this.#kek.hmac(Buffer.from('openkcm dev seal key id')).subarray(0, 8).toString('hex')}`;
  }

  /**
   * 32 random bytes sealed under the file key; throws `config` for a bad
   * context or after close(), `key_not_found` when `opts.keyId` names another
   * key than this file's.
   */
  async generateDataKey(
    ctx: SealContext,
    opts?: DataKeyOptions,
  ): Promise<{ plaintext: Buffer; encrypted: EncryptedDataKey }> {
    const aad = sealContextAad(ctx, 'dev');
    const kek = this.#open();
    if (opts?.keyId && opts.keyId !== this.keyId) {
      throw new SealProviderError('key_not_found', 'dev', `no key ${opts.keyId} (this file's key is ${this.keyId})`);
    }
    const plaintext = randomFillSync(Buffer.alloc(DEV_KEY_BYTES));
    const ciphertext = kek.seal(plaintext, aad);
    return { plaintext, encrypted: { keyId: this.keyId, keyVersion: '', ciphertext } };
  }

  /**
   * Opens a blob of generateDataKey. Throws `key_not_found` when it names
   * another key file's key, `invalid_ciphertext` for any wrong byte, length or
   * context (opaque), `config` for a bad context or after close().
   */
  async decryptDataKey(encrypted: EncryptedDataKey, ctx: SealContext): Promise<Buffer> {
    const aad = sealContextAad(ctx, 'dev');
    const kek = this.#open();
    if (encrypted?.keyId !== this.keyId) {
      throw new SealProviderError(
        'key_not_found',
        'dev',
        `data key was sealed under ${encrypted?.keyId}, not ${this.keyId}`,
      );
    }
    const blob = encrypted.ciphertext;
    if (!Buffer.isBuffer(blob) || blob.length !== WRAPPED_KEY_BYTES) throw decryptFailed();
    try {
      return kek.open(blob, aad);
    } catch (err) {
      if (err instanceof CryptoError && err.code === 'decryption_failed') throw decryptFailed();
      throw err;
    }
  }

  /** Wipes the imported file key. Idempotent. */
  async close(): Promise<void> {
    this.#kek?.destroy();
    this.#kek = undefined;
  }

  #open(): KeyHandle {
    if (!this.#kek) throw new SealProviderError('config', 'dev', 'provider is closed');
    return this.#kek;
  }
}

function decryptFailed(): SealProviderError {
  return new SealProviderError('invalid_ciphertext', 'dev', 'data key decryption failed');
}

/**
 * The 32 key bytes of `path`, creating the file with O_EXCL and mode 0600
 * when it does not exist (no window where another process sees a partial or
 * wider-permission file). Throws `config` for anything else wrong.
 */
function readOrCreateKeyFile(path: string): Buffer {
  const key = Buffer.alloc(DEV_KEY_BYTES);
  let fd: number;
  try {
    fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw fileError(path, err);
    return readKeyFile(path, key);
  }
  try {
    randomFillSync(key);
    writeSync(fd, key);
    return key;
  } catch (err) {
    key.fill(0);
    throw fileError(path, err);
  } finally {
    closeSync(fd);
  }
}

function readKeyFile(path: string, key: Buffer): Buffer {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (err) {
    throw fileError(path, err);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || st.size !== DEV_KEY_BYTES) {
      throw new SealProviderError(
        'config',
        'dev',
        `config.keyFile ${path} must be a regular file of ${DEV_KEY_BYTES} bytes`,
      );
    }
    if ((st.mode & 0o077) !== 0) {
      throw new SealProviderError(
        'config',
        'dev',
        `config.keyFile ${path} is accessible by group/others (mode ${(st.mode & 0o777).toString(8)}); chmod 600 it`,
      );
    }
    if (readSync(fd, key, 0, DEV_KEY_BYTES, 0) !== DEV_KEY_BYTES) {
      throw new SealProviderError('config', 'dev', `config.keyFile ${path}: short read`);
    }
    return key;
  } catch (err) {
    key.fill(0);
    throw err instanceof SealProviderError ? err : fileError(path, err);
  } finally {
    closeSync(fd);
  }
}

function fileError(path: string, err: unknown): SealProviderError {
  const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
  return new SealProviderError('config', 'dev', `config.keyFile ${path}: ${code}`);
}
