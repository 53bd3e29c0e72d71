/**
 * The TypeScript face of the crypto backends: the only way the rest of
 * OpenKCM touches AES-GCM, key memory, key wrapping and Shamir.
 *
 *   const crypto = defaultCrypto();           // native, or node:crypto with a loud warning
 *   const kek = crypto.generateKey();
 *   const blob = kek.seal(plaintext, aad);    // nonce ‖ ct ‖ tag
 *   kek.open(blob, aad);                      // throws CryptoError('decryption_failed')
 *
 * Key bytes never come back out: a {@link KeyHandle} can seal, open, wrap,
 * derive, MAC and split, and nothing else. Handles of one backend cannot be
 * mixed with another's (`backend_mismatch`).
 */
import type { CryptoBackend, RawKeyInfo, RawKeyRef } from './ts/backend.ts';
import type { BackendErrorCode } from './ts/backend-error.ts';
import { type BackendName, backendByName, type JsonTargetsFns, loadNative, selectBackend } from './ts/load.ts';
import { checkOpenSpans, openSpliceViaAsync } from './ts/open-splice.ts';
import { checkSpliceHeads, checkSpliceSpans, type SpliceHeads, sealSpliceViaAsync } from './ts/seal-splice.ts';

export type { RawKeyInfo as KeyInfo } from './ts/backend.ts';
export type { BackendName, JsonTargetsRules } from './ts/load.ts';

/** SP 800-38D §8.3: with random 96-bit nonces, at most 2^32 encryptions under one key. */
export const GCM_RANDOM_NONCE_LIMIT = 2 ** 32;
export const KEY_BYTES = 32;
export const NONCE_BYTES = 12;
export const TAG_BYTES = 16;
/** Bytes a sealed blob adds to its plaintext (nonce + tag). */
export const SEAL_OVERHEAD = NONCE_BYTES + TAG_BYTES;
/** Length of a wrapped 256-bit key. */
export const WRAPPED_KEY_BYTES = NONCE_BYTES + KEY_BYTES + TAG_BYTES;
/** Length of a 256-bit key wrapped with AES Key Wrap (RFC 3394) for a token. */
export const TRANSPORT_WRAPPED_KEY_BYTES = KEY_BYTES + 8;

/**
 * Who runs a handle's envelope operations instead of its backend (see
 * {@link KeyHandle.withEnvelope}), asynchronously: the gateway's PKCS#11
 * backend runs them on worker threads, off the event loop. `kek` is the
 * plain handle of the same key. Contracts as KeyHandle.dataKeySealBatch /
 * dataKeyOpenBatch: same output formats byte for byte, `null` per item that
 * fails authentication.
 */
export interface EnvelopeEngine {
  dataKeySealBatch(
    kek: KeyHandle,
    wrapAad: Uint8Array,
    plaintexts: readonly Uint8Array[],
    aads: readonly Uint8Array[],
  ): Promise<{ wrappedKey: Buffer; sealed: Buffer[] }>;
  dataKeyOpenBatch(
    kek: KeyHandle,
    wrappedKeys: readonly Uint8Array[],
    wrapAads: readonly Uint8Array[],
    sealed: readonly Uint8Array[],
    aads: readonly Uint8Array[],
  ): Promise<(Buffer | null)[]>;
}

/** The backends' misuse codes (ts/backend-error.ts) plus the two the face adds. */
export type CryptoErrorCode = BackendErrorCode | 'decryption_failed' | 'backend_mismatch';

/** Every error of this module. `decryption_failed` is deliberately opaque: it never says why. */
export class CryptoError extends Error {
  override readonly name = 'CryptoError';
  constructor(
    readonly code: CryptoErrorCode,
    message: string,
  ) {
    super(message);
  }
}

function rethrow(err: unknown): never {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && err instanceof Error) {
    throw new CryptoError(code as CryptoErrorCode, err.message.replace(/^\[[a-z_]+\] /, ''));
  }
  throw err;
}

function decryptionFailed(): CryptoError {
  return new CryptoError('decryption_failed', 'decryption failed');
}

/** An opaque key held by one backend. */
export class KeyHandle {
  readonly #ref: RawKeyRef;
  readonly #crypto: Crypto;
  readonly #envelope: EnvelopeEngine | undefined;

  /** @internal use Crypto.generateKey / importKey / unwrap / combineShares. */
  constructor(crypto: Crypto, ref: RawKeyRef, envelope?: EnvelopeEngine) {
    this.#crypto = crypto;
    this.#ref = ref;
    this.#envelope = envelope;
  }

  /**
   * A handle on this same key whose envelope operations (the `…Async`
   * calls) are run by `engine`, which receives the plain handle; every other
   * method acts as on this handle, and destroying either destroys the key.
   * The synchronous envelope calls refuse such a handle (`invalid_argument`):
   * callers check {@link KeyHandle.asyncEnvelope}. How the gateway's `pkcs11`
   * backend runs field AEAD inside a token, off the event loop, while the
   * field cipher's callers keep passing a KeyHandle.
   */
  withEnvelope(engine: EnvelopeEngine): KeyHandle {
    return new KeyHandle(this.#crypto, this.#ref, engine);
  }

  /** True for a {@link withEnvelope} handle: its envelope operations must go through the `…Async` calls. */
  get asyncEnvelope(): boolean {
    return this.#envelope !== undefined;
  }

  /** This key without an envelope engine (itself when it has none). */
  plain(): KeyHandle {
    return this.#envelope ? new KeyHandle(this.#crypto, this.#ref) : this;
  }

  get backend(): BackendName {
    return this.#crypto.backend.name;
  }

  /**
   * The native module's own handle of this key, for the module's functions
   * that take one directly (the native front copies the key into its own
   * locked slot: gateway/src/native-front/front-keys.ts); undefined on the
   * node backend and for a {@link withEnvelope} handle. The bytes stay in
   * the module either way.
   */
  get nativeHandle(): unknown {
    return this.#crypto.backend.name === 'native' && this.#envelope === undefined ? this.#ref : undefined;
  }

  /** Id, locked-memory flag, destroyed flag and encryption count (for the SP 800-38D budget). */
  info(): RawKeyInfo {
    return this.#crypto.backend.keyInfo(this.#ref);
  }

  /** False once the key is destroyed (info().destroyed, cheaper: for per-request checks). */
  get live(): boolean {
    return this.#crypto.backend.keyLive(this.#ref);
  }

  /** Wipes the key now. Idempotent; every later use throws `key_destroyed`. */
  destroy(): void {
    this.#crypto.backend.keyDestroy(this.#ref);
  }

  /** AES-256-GCM with a random 96-bit nonce: returns nonce ‖ ciphertext ‖ tag. */
  seal(plaintext: Uint8Array, aad: Uint8Array): Buffer {
    try {
      return this.#crypto.backend.seal(this.#ref, plaintext, aad);
    } catch (err) {
      rethrow(err);
    }
  }

  /**
   * Seals into `out` at `offset` and returns the bytes written (plaintext + 28): no
   * allocation when the caller reuses `out`. Throws `invalid_argument` when `out`
   * lacks room or overlaps the plaintext or AAD.
   */
  sealInto(plaintext: Uint8Array, aad: Uint8Array, out: Uint8Array, offset = 0): number {
    try {
      return this.#crypto.backend.sealInto(this.#ref, plaintext, aad, out, offset);
    } catch (err) {
      rethrow(err);
    }
  }

  /** Opens nonce ‖ ciphertext ‖ tag; throws `decryption_failed` for any wrong byte, key or AAD. */
  open(sealed: Uint8Array, aad: Uint8Array): Buffer {
    let out: Buffer | null;
    try {
      out = this.#crypto.backend.open(this.#ref, sealed, aad);
    } catch (err) {
      rethrow(err);
    }
    if (out === null) throw decryptionFailed();
    return out;
  }

  /** Seals every item in one backend call (one nonce each). */
  sealBatch(plaintexts: readonly Uint8Array[], aads: readonly Uint8Array[]): Buffer[] {
    try {
      return this.#crypto.backend.sealBatch(this.#ref, plaintexts, aads);
    } catch (err) {
      rethrow(err);
    }
  }

  /** Opens every item in one backend call; an item that fails authentication is `null`, the others still open. */
  openBatch(sealed: readonly Uint8Array[], aads: readonly Uint8Array[]): (Buffer | null)[] {
    try {
      return this.#crypto.backend.openBatch(this.#ref, sealed, aads);
    } catch (err) {
      rethrow(err);
    }
  }

  /** Wraps `target` under this key (60 bytes). */
  wrap(target: KeyHandle, aad: Uint8Array): Buffer {
    try {
      return this.#crypto.backend.wrapKey(this.#ref, this.#crypto.refOf(target), aad);
    } catch (err) {
      rethrow(err);
    }
  }

  /** Unwraps a key wrapped under this key; throws `decryption_failed` when the blob or AAD is wrong. */
  unwrap(wrapped: Uint8Array, aad: Uint8Array): KeyHandle {
    let ref: RawKeyRef | null;
    try {
      ref = this.#crypto.backend.unwrapKey(this.#ref, wrapped, aad);
    } catch (err) {
      rethrow(err);
    }
    if (ref === null) throw decryptionFailed();
    return new KeyHandle(this.#crypto, ref);
  }

  /**
   * Envelope encryption in one call: a fresh data key wrapped under this key
   * with `wrapAad`, then every item sealed under the data key, which is wiped.
   */
  dataKeySealBatch(
    wrapAad: Uint8Array,
    plaintexts: readonly Uint8Array[],
    aads: readonly Uint8Array[],
  ): { wrappedKey: Buffer; sealed: Buffer[] } {
    this.#synchronous('dataKeySealBatch');
    let out: Buffer[];
    try {
      out = this.#crypto.backend.dataKeySealBatch(this.#ref, wrapAad, plaintexts, aads);
    } catch (err) {
      rethrow(err);
    }
    const wrappedKey = out[0] as Buffer;
    return { wrappedKey, sealed: out.slice(1) };
  }

  /**
   * dataKeySealBatch of spans of `body`, written into a new body in one call
   * (contract: ts/seal-splice.ts): each value span replaced by the JSON
   * string `"` ‖ textHead ‖ base64url(header ‖ wrapped ‖ sealed) ‖ `"`. The
   * plaintexts are read in place.
   */
  dataKeySealSplice(
    wrapAad: Uint8Array,
    body: Uint8Array,
    spans: Uint32Array,
    contexts: readonly Uint8Array[],
    heads: SpliceHeads,
  ): Buffer {
    const { aadHead, textHead, header } = heads;
    return this.#byBackend('dataKeySealSplice', (b, ref) =>
      b.dataKeySealSplice(ref, wrapAad, body, spans, contexts, aadHead, textHead, header),
    );
  }

  /** `call` run by the backend (its errors as CryptoErrors); refused for an engine handle (see #synchronous). */
  #byBackend<R>(call: string, run: (backend: CryptoBackend, ref: RawKeyRef) => R): R {
    this.#synchronous(call);
    try {
      return run(this.#crypto.backend, this.#ref);
    } catch (err) {
      rethrow(err);
    }
  }

  /**
   * Throws `invalid_argument` when this handle's envelope runs in an engine
   * (a programming error: the caller must take the `…Async` call).
   */
  #synchronous(call: string): void {
    if (this.#envelope) {
      throw new CryptoError('invalid_argument', `${call}: this key's envelope is asynchronous (use ${call}Async)`);
    }
  }

  /**
   * The engine's checks before a splice runs through it, as the backends
   * make them: the key first, then the arguments (CryptoErrors). The
   * engine's own errors pass as they are, as in dataKeySealBatchAsync.
   */
  #checkEngineSplice(checkSpans: () => void, wrapAad: Uint8Array, body: Uint8Array, heads: SpliceHeads): void {
    if (!this.live) throw new CryptoError('key_destroyed', 'the key has been destroyed');
    try {
      checkSpans();
      checkSpliceHeads(wrapAad, body, heads);
    } catch (err) {
      rethrow(err);
    }
  }

  /**
   * dataKeySealBatch that may run off the event loop: through the envelope
   * engine of a {@link withEnvelope} handle, else the synchronous call
   * (its answer or error as a settled promise).
   */
  async dataKeySealBatchAsync(
    wrapAad: Uint8Array,
    plaintexts: readonly Uint8Array[],
    aads: readonly Uint8Array[],
  ): Promise<{ wrappedKey: Buffer; sealed: Buffer[] }> {
    const e = this.#envelope;
    return e
      ? e.dataKeySealBatch(this.plain(), wrapAad, plaintexts, aads)
      : this.dataKeySealBatch(wrapAad, plaintexts, aads);
  }

  /** dataKeyOpenBatch that may run off the event loop (as dataKeySealBatchAsync). */
  async dataKeyOpenBatchAsync(
    wrappedKeys: readonly Uint8Array[],
    wrapAads: readonly Uint8Array[],
    sealed: readonly Uint8Array[],
    aads: readonly Uint8Array[],
  ): Promise<(Buffer | null)[]> {
    const e = this.#envelope;
    return e
      ? e.dataKeyOpenBatch(this.plain(), wrappedKeys, wrapAads, sealed, aads)
      : this.dataKeyOpenBatch(wrappedKeys, wrapAads, sealed, aads);
  }

  /** dataKeySealSplice that may run off the event loop (as dataKeySealBatchAsync): same checks, same output. */
  async dataKeySealSpliceAsync(
    wrapAad: Uint8Array,
    body: Uint8Array,
    spans: Uint32Array,
    contexts: readonly Uint8Array[],
    heads: SpliceHeads,
  ): Promise<Buffer> {
    const e = this.#envelope;
    if (!e) return this.dataKeySealSplice(wrapAad, body, spans, contexts, heads);
    this.#checkEngineSplice(() => checkSpliceSpans(body.length, spans, contexts), wrapAad, body, heads);
    const plain = this.plain();
    return sealSpliceViaAsync((w, p, a) => e.dataKeySealBatch(plain, w, p, a), wrapAad, body, spans, contexts, heads);
  }

  /** dataKeyOpenSplice that may run off the event loop (as dataKeySealBatchAsync): same checks, same output. */
  async dataKeyOpenSpliceAsync(
    wrapAad: Uint8Array,
    body: Uint8Array,
    spans: Uint32Array,
    contexts: readonly Uint8Array[],
    heads: SpliceHeads,
  ): Promise<Buffer | null> {
    const e = this.#envelope;
    if (!e) return this.dataKeyOpenSplice(wrapAad, body, spans, contexts, heads);
    this.#checkEngineSplice(() => checkOpenSpans(body.length, spans, contexts), wrapAad, body, heads);
    const plain = this.plain();
    return openSpliceViaAsync(
      (w, wa, s, a) => e.dataKeyOpenBatch(plain, w, wa, s, a),
      wrapAad,
      body,
      spans,
      contexts,
      heads,
    );
  }

  /**
   * The inverse of dataKeySealSplice, all or nothing (contract:
   * ts/open-splice.ts): the body with every value span (`spans`: start, end
   * per item) replaced by the JSON string of its plaintext, or null when any
   * item is not an envelope under `heads.header` that opens and holds UTF-8.
   * Null says nothing of which or why: dataKeyOpenBatch does.
   */
  dataKeyOpenSplice(
    wrapAad: Uint8Array,
    body: Uint8Array,
    spans: Uint32Array,
    contexts: readonly Uint8Array[],
    heads: SpliceHeads,
  ): Buffer | null {
    const { aadHead, textHead, header } = heads;
    return this.#byBackend('dataKeyOpenSplice', (b, ref) =>
      b.dataKeyOpenSplice(ref, wrapAad, body, spans, contexts, aadHead, textHead, header),
    );
  }

  /** Inverse of dataKeySealBatch over items that may carry different wrapped data keys; `null` per failed item. */
  dataKeyOpenBatch(
    wrappedKeys: readonly Uint8Array[],
    wrapAads: readonly Uint8Array[],
    sealed: readonly Uint8Array[],
    aads: readonly Uint8Array[],
  ): (Buffer | null)[] {
    return this.#byBackend('dataKeyOpenBatch', (b, ref) =>
      b.dataKeyOpenBatch(ref, wrappedKeys, wrapAads, sealed, aads),
    );
  }

  /**
   * Key transport (the gateway's `pkcs11` backend): one fresh data key,
   * returned wrapped under this key exactly as dataKeySealBatch's `wrappedKey`
   * (AES-256-GCM, `wrapAad`, 60 bytes) and under the transport key with AES
   * Key Wrap, RFC 3394 (`transportWrapped`, 40 bytes: what the token's
   * C_UnwrapKey(CKM_AES_KEY_WRAP) takes), then wiped. Throws `invalid_key`
   * when `transport` is not a transport key (or this one is).
   */
  dataKeyForTransport(transport: KeyHandle, wrapAad: Uint8Array): { wrappedKey: Buffer; transportWrapped: Buffer } {
    let out: Buffer[];
    try {
      out = this.#crypto.backend.dataKeyForTransport(this.#ref, this.#crypto.refOf(transport), wrapAad);
    } catch (err) {
      rethrow(err);
    }
    return { wrappedKey: out[0] as Buffer, transportWrapped: out[1] as Buffer };
  }

  /**
   * Re-wraps data keys wrapped under this key (GCM, `wrapAads[i]`) for the
   * token: item i is the 40-byte AES-KW blob under `transport`, or `null`
   * when `wrappedKeys[i]` fails authentication. No data key comes back in clear.
   */
  dataKeyRewrapForTransport(
    transport: KeyHandle,
    wrappedKeys: readonly Uint8Array[],
    wrapAads: readonly Uint8Array[],
  ): (Buffer | null)[] {
    try {
      return this.#crypto.backend.dataKeyRewrapForTransport(
        this.#ref,
        this.#crypto.refOf(transport),
        wrappedKeys,
        wrapAads,
      );
    } catch (err) {
      rethrow(err);
    }
  }

  /** HMAC-SHA-256 under this key. */
  hmac(data: Uint8Array): Buffer {
    try {
      return this.#crypto.backend.hmacSha256(this.#ref, data);
    } catch (err) {
      rethrow(err);
    }
  }

  /** HKDF-SHA-256 (RFC 5869) of this key: a new 256-bit key. */
  derive(salt: Uint8Array, info: Uint8Array): KeyHandle {
    try {
      return new KeyHandle(this.#crypto, this.#crypto.backend.deriveKey(this.#ref, salt, info));
    } catch (err) {
      rethrow(err);
    }
  }

  /** Raw Shamir points (x ‖ y, 33 bytes each); use shamir-share.ts for the framed, checked share format. */
  splitRaw(m: number, n: number): Buffer[] {
    try {
      return this.#crypto.backend.shamirSplit(this.#ref, m, n);
    } catch (err) {
      rethrow(err);
    }
  }

  /** @internal */
  refFor(crypto: Crypto): RawKeyRef {
    if (crypto !== this.#crypto) {
      throw new CryptoError('backend_mismatch', 'key handle belongs to another crypto backend');
    }
    return this.#ref;
  }
}

/** One backend, with key constructors. */
export class Crypto {
  constructor(readonly backend: CryptoBackend) {}

  /** A fresh random 256-bit key made inside the backend. */
  generateKey(): KeyHandle {
    return new KeyHandle(this, this.backend.keyGenerate());
  }

  /** Imports exactly 32 bytes and zero-fills `bytes` afterwards. */
  importKey(bytes: Uint8Array): KeyHandle {
    try {
      return new KeyHandle(this, this.backend.keyImport(bytes));
    } catch (err) {
      rethrow(err);
    }
  }

  /**
   * A fresh *transport key* for a PKCS#11 token, and its RSA-OAEP encryption
   * (SHA-1 / MGF1-SHA-1) under `publicKey` (DER SubjectPublicKeyInfo, RSA
   * 2048–8192 bits, else `invalid_argument`), for the token's C_UnwrapKey.
   * The key serves only as the `transport` of dataKeyForTransport /
   * dataKeyRewrapForTransport; every other use throws `invalid_key`.
   */
  generateTransportKey(publicKey: Uint8Array): { key: KeyHandle; wrapped: Buffer } {
    try {
      const [ref, wrapped] = this.backend.transportKeyGenerate(publicKey);
      return { key: new KeyHandle(this, ref), wrapped };
    } catch (err) {
      rethrow(err);
    }
  }

  /** Rebuilds a key from raw Shamir points (see KeyHandle.splitRaw). */
  combineRaw(shares: readonly Uint8Array[]): KeyHandle {
    try {
      return new KeyHandle(this, this.backend.shamirCombine(shares));
    } catch (err) {
      rethrow(err);
    }
  }

  /** @internal */
  refOf(key: KeyHandle): RawKeyRef {
    return key.refFor(this);
  }
}

const instances = new Map<string, Crypto>();

/** The Crypto of a named backend (cached). Throws when the native module cannot load. */
export function cryptoFor(name: BackendName): Crypto {
  let c = instances.get(name);
  if (!c) {
    c = new Crypto(backendByName(name));
    instances.set(name, c);
  }
  return c;
}

/** The process default, chosen by KCM_CRYPTO_BACKEND (see ts/load.ts). */
export function defaultCrypto(): Crypto {
  return cryptoFor(selectBackend().name);
}

export { jsonStringBytes } from './ts/json-string.ts';

/**
 * The native module's JSON target scan (src/json_targets.rs; the gateway's
 * pipeline/json-targets.ts encodes its rules and reads its answer), or
 * undefined when it cannot be had or is not wanted: the module does not
 * load, or `KCM_CRYPTO_BACKEND=node` keeps the native binary out of this
 * process (`env`: process.env, read once, when not given).
 */
export function nativeJsonTargets(env?: NodeJS.ProcessEnv): JsonTargetsFns | undefined {
  // Asked per request: the process's answer is decided once (reading process.env is not free).
  if (env === undefined) {
    processJsonTargets ??= { fns: nativeJsonTargets(process.env) };
    return processJsonTargets.fns;
  }
  if (env.KCM_CRYPTO_BACKEND?.trim() === 'node') return undefined;
  const b = loadNative().backend;
  return b?.jsonTargets && b.jsonTargetsRules ? (b as JsonTargetsFns) : undefined;
}

let processJsonTargets: { fns: JsonTargetsFns | undefined } | undefined;
