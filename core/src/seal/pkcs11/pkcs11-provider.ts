/**
 * Auto-unseal through a PKCS#11 HSM (ADR-203/204): an AES key that never
 * leaves the token encrypts the 32-byte seal data key with CKM_AES_GCM.
 *
 * Ciphertext format (60 bytes): iv (12) ‖ ciphertext (32) ‖ tag (16).
 * - The data key and the IV come from the token's RNG (C_GenerateRandom).
 * - 96-bit random IVs: at most 2^32 encryptions per key (SP 800-38D §8.3);
 *   a seal key encrypts one data key per seal re-key, far below that.
 * - AAD = canonical encoding of the SealContext (../seal-context.ts); 128-bit tag.
 *
 * keyId = the key's CKA_LABEL, keyVersion = hex of its CKA_ID ('' when the key
 * has none). decryptDataKey looks the key up by the *stored* label and CKA_ID,
 * so a blob made under an older key (still on the token) decrypts after the
 * config moves to a new label.
 *
 * Sessions: one session per provider, opened and logged in on first use and
 * reused; every operation runs alone on it (a queue), since a PKCS#11 session
 * holds one active operation. When the token reports the session lost
 * (CKR_SESSION_HANDLE_INVALID, CKR_DEVICE_REMOVED, …) the call fails
 * `unavailable` and the next call opens a fresh session. close() waits for the
 * queue, closes the session and releases the module (the last release calls
 * C_Finalize).
 */
import pkcs11js from 'pkcs11js';
import { sealContextAad } from '../seal-context.ts';
import {
  type DataKeyOptions,
  type EncryptedDataKey,
  type SealContext,
  type SealProvider,
  SealProviderError,
} from '../seal-provider.ts';
import { invalidCiphertext, pkcs11ReturnValue, pkcs11SealError } from './pkcs11-errors.ts';
import { acquirePkcs11Module, DEFAULT_PKCS11_MODULE, type Pkcs11Lib, type Pkcs11Module } from './pkcs11-module.ts';

const P = pkcs11js;

export const PKCS11_DATA_KEY_BYTES = 32;
export const PKCS11_IV_BYTES = 12;
export const PKCS11_TAG_BYTES = 16;
/** Length of every ciphertext this provider makes. */
export const PKCS11_CIPHERTEXT_BYTES = PKCS11_IV_BYTES + PKCS11_DATA_KEY_BYTES + PKCS11_TAG_BYTES;

export interface Pkcs11SealConfig {
  /** Path of the PKCS#11 module; default /usr/lib/softhsm/libsofthsm2.so. */
  modulePath?: string;
  /** CK_TOKEN_INFO.label of the token holding the key. */
  tokenLabel: string;
  /** Normal-user PIN. Never appears in errors. */
  pin: string;
  /** CKA_LABEL of the AES secret key (see createPkcs11SealKey). */
  keyLabel: string;
}

interface Session {
  slot: Buffer;
  handle: Buffer;
  /** Key object handles by `label\0idHex`, valid for this session's lifetime. */
  keys: Map<string, { handle: Buffer; idHex: string }>;
}

/** Throws SealProviderError `config` naming the first bad field; returns the config with defaults applied. */
export function validatePkcs11Config(config: Pkcs11SealConfig): Required<Pkcs11SealConfig> {
  const c = (config ?? {}) as unknown as Record<string, unknown>;
  const modulePath = c.modulePath === undefined ? DEFAULT_PKCS11_MODULE : c.modulePath;
  for (const [name, value] of Object.entries({ modulePath, tokenLabel: c.tokenLabel, keyLabel: c.keyLabel })) {
    if (typeof value !== 'string' || value.length === 0) {
      throw new SealProviderError('config', 'pkcs11', `config.${name} must be a non-empty string`);
    }
  }
  if (typeof c.pin !== 'string' || c.pin.length === 0) {
    throw new SealProviderError('config', 'pkcs11', 'config.pin must be a non-empty string');
  }
  if (Buffer.byteLength(c.tokenLabel as string) > 32) {
    throw new SealProviderError('config', 'pkcs11', 'config.tokenLabel exceeds 32 bytes (CK_TOKEN_INFO.label)');
  }
  return { modulePath, tokenLabel: c.tokenLabel, pin: c.pin, keyLabel: c.keyLabel } as Required<Pkcs11SealConfig>;
}

export class Pkcs11SealProvider implements SealProvider {
  readonly type = 'pkcs11' as const;
  readonly #config: Required<Pkcs11SealConfig>;
  readonly #module: Pkcs11Module;
  #session: Session | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;

  /**
   * Validates `config` and loads/initialises the module (shared per path).
   * Throws `config` for a bad field or a module that cannot load. The token
   * is not touched until the first call (a wrong PIN or label surfaces there).
   */
  constructor(config: Pkcs11SealConfig) {
    this.#config = validatePkcs11Config(config);
    this.#module = acquirePkcs11Module(this.#config.modulePath);
  }

  /**
   * 32 bytes from the token's RNG, encrypted in the token under the configured
   * key. Throws `key_not_found` (no AES key with that label), `access_denied`
   * (wrong PIN, key not allowed to encrypt), `unavailable` (session/device lost),
   * `config` (bad context, ambiguous label). `opts.keyId` names another key
   * label than the configured one (a tenant's L1 key).
   */
  async generateDataKey(
    ctx: SealContext,
    opts?: DataKeyOptions,
  ): Promise<{ plaintext: Buffer; encrypted: EncryptedDataKey }> {
    const aad = sealContextAad(ctx, 'pkcs11');
    const label = opts?.keyId || this.#config.keyLabel;
    return this.#exclusive('encrypt', async (lib, s) => {
      const key = this.#findKey(lib, s, label, undefined);
      const plaintext = lib.C_GenerateRandom(s.handle, Buffer.alloc(PKCS11_DATA_KEY_BYTES));
      try {
        const iv = lib.C_GenerateRandom(s.handle, Buffer.alloc(PKCS11_IV_BYTES));
        lib.C_EncryptInit(s.handle, gcm(iv, aad), key.handle);
        const out = Buffer.alloc(PKCS11_DATA_KEY_BYTES + PKCS11_TAG_BYTES);
        const sealed = await lib.C_EncryptAsync(s.handle, plaintext, out);
        if (sealed.length !== out.length) {
          const got = `${sealed.length} bytes, not ct ‖ 128-bit tag`;
          throw new SealProviderError('config', 'pkcs11', `token's CKM_AES_GCM returned ${got} (unsupported token?)`);
        }
        const ciphertext = Buffer.concat([iv, sealed]);
        return { plaintext, encrypted: { keyId: label, keyVersion: key.idHex, ciphertext } };
      } catch (err) {
        plaintext.fill(0);
        throw err;
      }
    });
  }

  /**
   * Decrypts in the token with the key named by `encrypted.keyId` (label) and
   * `keyVersion` (CKA_ID hex). Throws `invalid_ciphertext` for any wrong byte,
   * wrong context or wrong length (one opaque error), `key_not_found` when no
   * such key is on the token, and the kinds of generateDataKey otherwise.
   */
  async decryptDataKey(encrypted: EncryptedDataKey, ctx: SealContext): Promise<Buffer> {
    const aad = sealContextAad(ctx, 'pkcs11');
    const blob = encrypted?.ciphertext;
    if (!Buffer.isBuffer(blob) || blob.length !== PKCS11_CIPHERTEXT_BYTES) throw invalidCiphertext();
    const label = encrypted.keyId || this.#config.keyLabel;
    const idHex = encrypted.keyVersion ?? '';
    if (!/^(?:[0-9a-f]{2})*$/.test(idHex)) throw invalidCiphertext();
    return this.#exclusive('decrypt', async (lib, s) => {
      const key = this.#findKey(lib, s, label, idHex);
      const iv = blob.subarray(0, PKCS11_IV_BYTES);
      lib.C_DecryptInit(s.handle, gcm(Buffer.from(iv), aad), key.handle);
      const out = Buffer.alloc(PKCS11_DATA_KEY_BYTES + PKCS11_TAG_BYTES);
      try {
        const pt = await lib.C_DecryptAsync(s.handle, Buffer.from(blob.subarray(PKCS11_IV_BYTES)), out).catch((err) => {
          // SoftHSM reports a GCM tag mismatch (wrong key, context or byte) as CKR_GENERAL_ERROR.
          throw pkcs11ReturnValue(err) === P.CKR_GENERAL_ERROR ? invalidCiphertext() : err;
        });
        if (pt.length !== PKCS11_DATA_KEY_BYTES) throw invalidCiphertext();
        return Buffer.from(pt);
      } finally {
        out.fill(0);
      }
    });
  }

  /** Lets calls already made finish, then closes the session and releases the module. Idempotent; later calls throw `config`. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#queue.catch(() => undefined);
    this.#dropSession();
    this.#module.release();
  }

  /** Runs `fn` alone on the (re)opened, logged-in session; normalises every failure. */
  #exclusive<T>(phase: string, fn: (lib: Pkcs11Lib, s: Session) => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(new SealProviderError('config', 'pkcs11', 'provider is closed'));
    const run = async (): Promise<T> => {
      try {
        const lib = this.#module.lib;
        return await fn(lib, this.#openSession());
      } catch (err) {
        const failure = pkcs11SealError(err, phase);
        if (failure.dropSession) this.#dropSession();
        throw failure.error;
      }
    };
    const result = this.#queue.then(run, run);
    this.#queue = result.catch(() => undefined);
    return result;
  }

  #openSession(): Session {
    if (this.#session) return this.#session;
    const slot = this.#module.findSlot(this.#config.tokenLabel);
    const handle = this.#module.openSession(slot, false);
    try {
      this.#module.login(slot, handle, this.#config.pin);
    } catch (err) {
      this.#module.closeSession(slot, handle);
      throw err;
    }
    this.#session = { slot, handle, keys: new Map() };
    return this.#session;
  }

  #dropSession(): void {
    const s = this.#session;
    this.#session = undefined;
    if (s) this.#module.closeSession(s.slot, s.handle);
  }

  /**
   * The one AES secret key with CKA_LABEL `label` (and CKA_ID = `idHex` unless
   * undefined/''). Throws `key_not_found` when none, `config` when several.
   */
  #findKey(lib: Pkcs11Lib, s: Session, label: string, idHex: string | undefined): { handle: Buffer; idHex: string } {
    const cacheKey = `${label}\0${idHex ?? ''}`;
    const cached = s.keys.get(cacheKey);
    if (cached) return cached;
    const template: pkcs11js.Template = [
      { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY },
      { type: P.CKA_KEY_TYPE, value: P.CKK_AES },
      { type: P.CKA_LABEL, value: label },
    ];
    if (idHex) template.push({ type: P.CKA_ID, value: Buffer.from(idHex, 'hex') });
    lib.C_FindObjectsInit(s.handle, template);
    let found: Buffer[];
    try {
      found = lib.C_FindObjects(s.handle, 2);
    } finally {
      lib.C_FindObjectsFinal(s.handle);
    }
    const handle = found[0];
    if (handle === undefined) {
      const which = idHex ? ` with CKA_ID ${idHex}` : '';
      throw new SealProviderError(
        'key_not_found',
        'pkcs11',
        `no AES secret key labelled "${label}"${which} on the token`,
      );
    }
    if (found.length > 1) {
      throw new SealProviderError('config', 'pkcs11', `several AES keys labelled "${label}": ambiguous`);
    }
    const [id] = lib.C_GetAttributeValue(s.handle, handle, [{ type: P.CKA_ID }]);
    const entry = { handle, idHex: id?.value?.toString('hex') ?? '' };
    s.keys.set(cacheKey, entry);
    return entry;
  }
}

/** CKM_AES_GCM with PKCS#11 v2.40 CK_GCM_PARAMS (SoftHSM checks the struct size), 96-bit IV, 128-bit tag. */
function gcm(iv: Buffer, aad: Buffer): pkcs11js.Mechanism {
  return {
    mechanism: P.CKM_AES_GCM,
    parameter: { type: P.CK_PARAMS_GCM, iv, ivBits: PKCS11_IV_BYTES * 8, aad, tagBits: PKCS11_TAG_BYTES * 8 },
  } as pkcs11js.Mechanism;
}
