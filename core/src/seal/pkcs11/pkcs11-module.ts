/**
 * One loaded, initialised PKCS#11 module per path per process, shared by every
 * provider that uses it (Cryptoki allows one C_Initialize per application):
 * {@link acquirePkcs11Module} loads and initialises on first use and counts
 * references; the last {@link Pkcs11Module.release} calls C_Finalize and
 * unloads. Also the token-level bookkeeping PKCS#11 leaves to the
 * application: slot lookup by token label, and the login state that all
 * sessions of a token share.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import pkcs11js from 'pkcs11js';
import { SealProviderError } from '../seal-provider.ts';
import { pkcs11ReturnValue, pkcs11SealError } from './pkcs11-errors.ts';

const P = pkcs11js;
export type Pkcs11Lib = InstanceType<typeof pkcs11js.PKCS11>;

/** Debian's SoftHSM2 (`apt-get install softhsm2`). */
export const DEFAULT_PKCS11_MODULE = '/usr/lib/softhsm/libsofthsm2.so';

interface SlotState {
  sessions: number;
  /** SHA-256 of the PIN whose C_Login succeeded while sessions of ours were open. */
  pinDigest?: Buffer;
}

/** A reference to a shared module; call {@link release} exactly once. */
export class Pkcs11Module {
  readonly #entry: ModuleEntry;
  #released = false;

  /** @internal use acquirePkcs11Module. */
  constructor(entry: ModuleEntry) {
    this.#entry = entry;
  }

  get lib(): Pkcs11Lib {
    if (this.#released) throw new SealProviderError('config', 'pkcs11', 'PKCS#11 module reference already released');
    return this.#entry.lib;
  }

  /**
   * The slot holding the one token labelled `tokenLabel`. Throws `config` when
   * no present token or more than one has that label (labels are padded to
   * 32 bytes by the token; compared trimmed).
   */
  findSlot(tokenLabel: string): Buffer {
    const lib = this.lib;
    let matches: Buffer[];
    try {
      matches = lib.C_GetSlotList(true).filter((slot) => lib.C_GetTokenInfo(slot).label.trim() === tokenLabel);
    } catch (err) {
      throw pkcs11SealError(err, 'slot lookup').error;
    }
    if (matches.length === 0) {
      throw new SealProviderError('config', 'pkcs11', `no token labelled "${tokenLabel}" (config.tokenLabel)`);
    }
    if (matches.length > 1) {
      throw new SealProviderError('config', 'pkcs11', `${matches.length} tokens labelled "${tokenLabel}": ambiguous`);
    }
    return matches[0] as Buffer;
  }

  /** Opens a session on `slot` (read-write only when asked) and counts it. */
  openSession(slot: Buffer, readWrite: boolean): Buffer {
    const flags = P.CKF_SERIAL_SESSION | (readWrite ? P.CKF_RW_SESSION : 0);
    let session: Buffer;
    try {
      session = this.lib.C_OpenSession(slot, flags);
    } catch (err) {
      throw pkcs11SealError(err, 'open session').error;
    }
    this.#slot(slot).sessions++;
    return session;
  }

  /** Closes a session opened by {@link openSession}; errors (already closed, device gone) are ignored. */
  closeSession(slot: Buffer, session: Buffer): void {
    try {
      this.#entry.lib.C_CloseSession(session);
    } catch {
      // closed already (C_CloseAllSessions, device removed): nothing left to release
    }
    const state = this.#slot(slot);
    state.sessions = Math.max(0, state.sessions - 1);
    // PKCS#11 §5.6: closing an application's last session of a token logs it out.
    if (state.sessions === 0) this.#entry.slots.delete(slot.toString('hex'));
  }

  /**
   * C_Login as the normal user. Login state is per token, shared by all
   * sessions, and a token answers CKR_USER_ALREADY_LOGGED_IN *without checking
   * the PIN*; so a second login is accepted only when its PIN matches the one
   * that logged in (else `access_denied`), and a login made outside this
   * module (no record) is accepted as is. Throws `access_denied` on a wrong PIN.
   */
  login(slot: Buffer, session: Buffer, pin: string): void {
    const digest = createHash('sha256').update(pin, 'utf8').digest();
    const state = this.#slot(slot);
    try {
      this.lib.C_Login(session, P.CKU_USER, pin);
    } catch (err) {
      if (pkcs11ReturnValue(err) !== P.CKR_USER_ALREADY_LOGGED_IN) throw pkcs11SealError(err, 'login').error;
      if (state.pinDigest && !timingSafeEqual(state.pinDigest, digest)) {
        throw new SealProviderError(
          'access_denied',
          'pkcs11',
          'login failed: PIN differs from the session already logged in',
        );
      }
      return;
    }
    state.pinDigest = digest;
  }

  /** Drops this reference; the last one finalises and unloads the module. Idempotent. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    const entry = this.#entry;
    if (--entry.refs > 0) return;
    modules.delete(entry.path);
    try {
      if (entry.ownsInit) entry.lib.C_Finalize();
    } finally {
      entry.lib.close();
    }
  }

  #slot(slot: Buffer): SlotState {
    const key = slot.toString('hex');
    let state = this.#entry.slots.get(key);
    if (!state) {
      state = { sessions: 0 };
      this.#entry.slots.set(key, state);
    }
    return state;
  }
}

interface ModuleEntry {
  path: string;
  lib: Pkcs11Lib;
  refs: number;
  /** False when someone else in the process had already called C_Initialize: then we never finalise. */
  ownsInit: boolean;
  slots: Map<string, SlotState>;
}

const modules = new Map<string, ModuleEntry>();

/**
 * A reference to the module at `path`, loading it and calling C_Initialize
 * (CKF_OS_LOCKING_OK: pkcs11js runs the *Async calls on libuv worker threads)
 * the first time. Throws `config` when the library cannot be loaded or
 * initialised (wrong path, not a PKCS#11 module, bad SOFTHSM2_CONF).
 */
export function acquirePkcs11Module(path: string): Pkcs11Module {
  let entry = modules.get(path);
  if (!entry) {
    const lib = new P.PKCS11();
    try {
      lib.load(path);
    } catch (err) {
      throw new SealProviderError(
        'config',
        'pkcs11',
        `cannot load PKCS#11 module ${path} (config.modulePath): ${text(err)}`,
      );
    }
    let ownsInit = true;
    try {
      lib.C_Initialize({ flags: P.CKF_OS_LOCKING_OK });
    } catch (err) {
      if (pkcs11ReturnValue(err) === P.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
        ownsInit = false;
      } else {
        lib.close();
        throw new SealProviderError('config', 'pkcs11', `C_Initialize of ${path} failed: ${text(err)}`);
      }
    }
    entry = { path, lib, refs: 0, ownsInit, slots: new Map() };
    modules.set(path, entry);
  }
  entry.refs++;
  return new Pkcs11Module(entry);
}

function text(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
