/**
 * The PKCS#11 token of the `pkcs11` field backend on the main thread: the
 * module loaded and initialised, the slot (by token label or index), the
 * user logged in, and the sessions the main thread opens (the login anchor
 * below, the owner session of the transport key: transport-key.ts). The
 * requests' operations run on token worker threads, each on a session of
 * its own (token-worker.ts), which share this initialisation and login.
 *
 * The session that logged in (the anchor) stays open, unused for
 * operations, until close(): PKCS#11 logs the user out when an
 * application's last session closes, and a failing request closes the
 * sessions it used, so without it one token error could log the gateway out
 * for good. When the token lost the session or the login anyway (device
 * reset, another user of the module calling C_Logout), a token worker logs
 * in again before the next transport key set-up ({@link loginState},
 * {@link logInAgain}: token-field-cipher.ts), with the PIN read again from
 * the `pin` callback ({@link TokenSessions.readPin}); after start-up this
 * class makes no token call of its own until close().
 *
 * The PIN is used for C_Login and not kept (a `pin` callback re-reads its
 * source, e.g. the environment variable, only when it must log in again,
 * and hands it to the worker's login job); no message here holds it.
 */
import pkcs11js from 'pkcs11js';
import { KcmError } from '../../../common/src/errors.ts';

const P = pkcs11js;
export type Pkcs11Lib = InstanceType<typeof pkcs11js.PKCS11>;

export interface TokenOptions {
  /** Path of the PKCS#11 module. */
  module: string;
  /** The token by label (exactly one of tokenLabel and slot). */
  tokenLabel?: string;
  /** The token by index in C_GetSlotList(tokenPresent = true). */
  slot?: number;
  /**
   * The user PIN, or a function returning it (from the environment variable
   * the config names), which lets the token log in again after a logout.
   */
  pin: string | (() => string | undefined);
}

/** Return values that mean the session (or the login, or the device) is gone: drop the session. */
export const SESSION_LOST: ReadonlySet<number> = new Set([
  P.CKR_SESSION_HANDLE_INVALID,
  P.CKR_SESSION_CLOSED,
  P.CKR_DEVICE_REMOVED,
  P.CKR_DEVICE_ERROR,
  P.CKR_TOKEN_NOT_PRESENT,
  P.CKR_USER_NOT_LOGGED_IN,
  P.CKR_CRYPTOKI_NOT_INITIALIZED,
  P.CKR_KEY_HANDLE_INVALID,
  P.CKR_OBJECT_HANDLE_INVALID,
  // KT' is gone (its owner session closed): the transport key must be set up again.
  P.CKR_UNWRAPPING_KEY_HANDLE_INVALID,
]);

/** The CK_RV of a pkcs11js error, or undefined for anything else. */
export function returnValue(err: unknown): number | undefined {
  if (!(err instanceof Error) || err.name !== 'Pkcs11Error') return undefined;
  const code = (err as { code?: unknown }).code;
  return typeof code === 'number' ? code : undefined;
}

/** A KcmError `hsm_unavailable` naming the step and the CKR name (never data or keys). */
export function tokenError(phase: string, err: unknown): KcmError {
  if (err instanceof KcmError) return err;
  const rv = returnValue(err);
  const what = rv === undefined ? 'not a PKCS#11 error' : (err as Error).message.split('\n')[0];
  return new KcmError('hsm_unavailable', `${phase}: ${what}`);
}

function message(err: unknown): string {
  return err instanceof Error ? (err.message.split('\n')[0] ?? '') : String(err);
}

/** An open token: see the file comment. */
/** What a session AES key in {@link sessionAesKey} may be used for; every other use is off. */
export interface AesKeyUses {
  encrypt?: boolean;
  decrypt?: boolean;
  unwrap?: boolean;
}

/**
 * The template of an AES key the gateway brings into the token by C_UnwrapKey:
 * a session object (gone with its session at the latest), private, sensitive
 * and non-extractable (CKA_VALUE never readable), usable only for `uses`.
 */
export function sessionAesKey(uses: AesKeyUses): pkcs11js.Template {
  return [
    { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
    { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_AES },
    { type: pkcs11js.CKA_TOKEN, value: false },
    { type: pkcs11js.CKA_PRIVATE, value: true },
    { type: pkcs11js.CKA_SENSITIVE, value: true },
    { type: pkcs11js.CKA_EXTRACTABLE, value: false },
    { type: pkcs11js.CKA_ENCRYPT, value: uses.encrypt === true },
    { type: pkcs11js.CKA_DECRYPT, value: uses.decrypt === true },
    { type: pkcs11js.CKA_WRAP, value: false },
    { type: pkcs11js.CKA_UNWRAP, value: uses.unwrap === true },
    { type: pkcs11js.CKA_SIGN, value: false },
    { type: pkcs11js.CKA_VERIFY, value: false },
    { type: pkcs11js.CKA_DERIVE, value: false },
  ];
}

/** AES Key Wrap, RFC 3394 (not the _PAD variant: SoftHSM's differs from RFC 5649; 32-byte keys need no padding). */
export const AES_KW: pkcs11js.Mechanism = { mechanism: pkcs11js.CKM_AES_KEY_WRAP };

/** A per-request data key in the token: usable for GCM only, never readable, gone with its session at the latest. */
export const DATA_KEY_TEMPLATE = sessionAesKey({ encrypt: true, decrypt: true });

/** GCM as the token runs it: 96-bit IV, 128-bit tag (SPEC.md §5, as the native module). */
export const GCM_NONCE_BYTES = 12;
export const GCM_TAG_BYTES = 16;

/** CKM_AES_GCM with v2.40 CK_GCM_PARAMS: 96-bit IV, the AAD, 128-bit tag. */
export function gcm(iv: Buffer, aad: Buffer): pkcs11js.Mechanism {
  const parameter: pkcs11js.AesGCM = {
    type: pkcs11js.CK_PARAMS_GCM,
    iv,
    aad,
    ivBits: GCM_NONCE_BYTES * 8,
    tagBits: GCM_TAG_BYTES * 8,
  };
  return { mechanism: pkcs11js.CKM_AES_GCM, parameter };
}

/** PKCS#11 session states in which the user is logged in (CKS_RO_USER_FUNCTIONS, CKS_RW_USER_FUNCTIONS). */
const USER_STATES: ReadonlySet<number> = new Set([1, 3]);

/**
 * Whether the user is logged in, asked through the anchor session (a token
 * worker's job); `anchorValid` false when the token lost that session too.
 */
export function loginState(lib: Pkcs11Lib, anchor: Buffer | undefined): { loggedIn: boolean; anchorValid: boolean } {
  if (!anchor) return { loggedIn: false, anchorValid: false };
  try {
    return { loggedIn: USER_STATES.has(lib.C_GetSessionInfo(anchor).state), anchorValid: true };
  } catch (err) {
    // Only a session the token no longer has is replaced; any other failure (a device hiccup) fails this check.
    const rv = returnValue(err);
    if (rv !== undefined && ANCHOR_GONE.has(rv)) return { loggedIn: false, anchorValid: false };
    throw err;
  }
}

/** Return values of C_GetSessionInfo that mean the anchor session is gone for good. */
const ANCHOR_GONE: ReadonlySet<number> = new Set([
  P.CKR_SESSION_HANDLE_INVALID,
  P.CKR_SESSION_CLOSED,
  P.CKR_DEVICE_REMOVED,
  P.CKR_TOKEN_NOT_PRESENT,
]);

/**
 * Logs the user in again (a token worker's job) on `anchor`, or on a new
 * session of `slot` when the token lost it; answers the anchor. Throws the
 * PKCS#11 error (an already logged-in user is not one).
 */
export function logInAgain(lib: Pkcs11Lib, slot: Buffer, anchor: Buffer | undefined, pin: string): Buffer {
  const a = anchor ?? lib.C_OpenSession(slot, P.CKF_SERIAL_SESSION | P.CKF_RW_SESSION);
  try {
    lib.C_Login(a, P.CKU_USER, pin);
  } catch (err) {
    if (returnValue(err) !== P.CKR_USER_ALREADY_LOGGED_IN) {
      if (!anchor) lib.C_CloseSession(a);
      throw err;
    }
  }
  return a;
}

export class TokenSessions {
  readonly lib: Pkcs11Lib;
  readonly slot: Buffer;
  readonly #ownsInit: boolean;
  /** The logged-in session kept open so the login lasts (see the file comment). */
  #anchor: Buffer | undefined;
  #pin: (() => string | undefined) | undefined;
  /** Sessions opened here and not closed yet (pool and owner sessions). */
  readonly #open = new Set<Buffer>();
  #closed = false;

  private constructor(lib: Pkcs11Lib, ownsInit: boolean, slot: Buffer) {
    this.lib = lib;
    this.#ownsInit = ownsInit;
    this.slot = slot;
  }

  /**
   * Loads the module, finds the token, opens one session and logs the user in.
   * Throws KcmError `invalid_config` naming the config field (module not
   * loadable, no such token, PIN refused) or `hsm_unavailable`.
   */
  static open(o: TokenOptions): TokenSessions {
    const lib = new P.PKCS11();
    try {
      lib.load(o.module);
    } catch (err) {
      throw new KcmError('invalid_config', `hsm.module: cannot load PKCS#11 module ${o.module}: ${message(err)}`);
    }
    let ownsInit = true;
    try {
      lib.C_Initialize({ flags: P.CKF_OS_LOCKING_OK });
    } catch (err) {
      if (returnValue(err) !== P.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
        lib.close();
        throw new KcmError('invalid_config', `hsm.module: C_Initialize failed: ${message(err)}`);
      }
      // Someone else in this process (e.g. a Core seal provider) initialised it: never finalise it here.
      ownsInit = false;
    }
    let t: TokenSessions | undefined;
    try {
      t = new TokenSessions(lib, ownsInit, findSlot(lib, o));
      const s = t.openSession();
      try {
        lib.C_Login(s, P.CKU_USER, typeof o.pin === 'string' ? o.pin : (o.pin() ?? ''));
      } catch (err) {
        const rv = returnValue(err);
        if (rv === P.CKR_PIN_INCORRECT || rv === P.CKR_PIN_INVALID || rv === P.CKR_PIN_LEN_RANGE) {
          throw new KcmError('invalid_config', 'hsm.pinEnv: the token refused the PIN');
        }
        if (rv !== P.CKR_USER_ALREADY_LOGGED_IN) throw tokenError('login', err);
      }
      t.#anchor = s;
      if (typeof o.pin === 'function') t.#pin = o.pin;
      return t;
    } catch (err) {
      if (t) t.close();
      else {
        if (ownsInit) lib.C_Finalize();
        lib.close();
      }
      throw err instanceof KcmError ? err : tokenError('open token', err);
    }
  }

  /** Opens a logged-in R/W session (login state is per token, shared by all sessions). */
  openSession(): Buffer {
    if (this.#closed) throw new KcmError('hsm_unavailable', 'the token is closed');
    let s: Buffer;
    try {
      s = this.lib.C_OpenSession(this.slot, P.CKF_SERIAL_SESSION | P.CKF_RW_SESSION);
    } catch (err) {
      throw tokenError('open session', err);
    }
    this.#open.add(s);
    return s;
  }

  /** Closes a session (its session objects go with it); errors are ignored. */
  closeSession(s: Buffer): void {
    if (!this.#open.delete(s)) return;
    try {
      this.lib.C_CloseSession(s);
    } catch {
      // already gone (device removed, C_CloseAllSessions)
    }
  }

  /** The session that logged in and is kept open so the login lasts (see the file comment). */
  get anchor(): Buffer | undefined {
    return this.#anchor;
  }

  /** A new anchor (a token worker logged in again on it): kept with the others; the lost one is forgotten. */
  replaceAnchor(s: Buffer): void {
    if (this.#anchor) this.#open.delete(this.#anchor);
    this.#anchor = s;
    this.adopt(s);
  }

  /** The PIN read again from its source (to log in again after a logout), or undefined when it cannot be. */
  readPin(): string | undefined {
    return this.#pin?.();
  }

  /** Takes a session a token worker opened into this set (closed with the others at close()). */
  adopt(s: Buffer): void {
    if (!this.#closed) this.#open.add(s);
  }

  /** Drops `s` from this set without closing it (a token worker closes it); false when it was not in it. */
  forget(s: Buffer): boolean {
    return this.#open.delete(s);
  }

  /** Sessions the main thread has open now (the login anchor, owner sessions). */
  get openSessions(): number {
    return this.#open.size;
  }

  /**
   * Closes every session, then finalises and unloads the module (when this
   * opened it). With `finalize: false` (a thread is still inside the module:
   * the token hangs) it makes no call at all, for one could hang too; the
   * process ends without them. Idempotent.
   */
  close(o: { finalize?: boolean } = {}): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#anchor = undefined;
    this.#pin = undefined;
    if (o.finalize === false) return;
    for (const s of [...this.#open]) this.closeSession(s);
    try {
      if (this.#ownsInit) this.lib.C_Finalize();
    } catch {
      // finalising a module that failed is best effort
    }
    this.lib.close();
  }
}

function findSlot(lib: Pkcs11Lib, o: TokenOptions): Buffer {
  let slots: Buffer[];
  try {
    slots = lib.C_GetSlotList(true);
  } catch (err) {
    throw tokenError('slot list', err);
  }
  if (o.slot !== undefined) {
    const s = slots[o.slot];
    if (!s)
      throw new KcmError('invalid_config', `hsm.slot: no token in slot index ${o.slot} (${slots.length} present)`);
    return s;
  }
  const matches = slots.filter((s) => lib.C_GetTokenInfo(s).label.trim() === o.tokenLabel);
  if (matches.length !== 1) {
    const why = matches.length === 0 ? 'no token has this label' : `${matches.length} tokens have this label`;
    throw new KcmError('invalid_config', `hsm.tokenLabel: ${why}`);
  }
  return matches[0] as Buffer;
}
