/**
 * The contract every crypto backend implements: the Rust N-API module
 * (`native/src`) and the `node:crypto` fallback (`node-backend.ts`).
 *
 * Both backends produce byte-identical formats, so a blob sealed by one opens
 * with the other. Key material never crosses this interface as bytes: keys are
 * opaque {@link RawKeyRef} values, and the only way in is {@link CryptoBackend.keyImport}
 * (which zeroes the caller's buffer) or generation inside the backend.
 *
 * Formats (SPEC.md §2):
 *  - sealed blob  = nonce (12 bytes, random) ‖ ciphertext (len(plaintext)) ‖ tag (16 bytes)
 *  - wrapped key  = a sealed blob of the 32 key bytes: 60 bytes
 *  - Shamir share = x (1 byte, 1..255) ‖ y (32 bytes); framing is added by `shamir-share.ts`
 */

/** An opaque reference to a key held by a backend. Never inspect it. */
export type RawKeyRef = object & { readonly __kcmKeyRef: unique symbol };

export interface RawKeyInfo {
  /** Process-unique id of the handle, assigned at creation (1, 2, …). */
  id: number;
  /** True when the key bytes sit on an mlock'ed, MADV_DONTDUMP page. */
  locked: boolean;
  /** True after keyDestroy (or a wipe by seal/revocation); every use then throws. */
  destroyed: boolean;
  /** AES-GCM encryptions made under this key (seal, batch items, wraps, data-key wraps). */
  encryptions: number;
}

export interface BackendStatus {
  /** `native` or `node`. */
  name: 'native' | 'node';
  /** Keys currently alive in this backend. */
  liveKeys: number;
  /** True when the key memory of this backend can be mlock'ed (native only). */
  memoryLockable: boolean;
  /** Why memory is not lockable, when it is not. */
  memoryLockError?: string;
}

/**
 * Low-level backend contract. Misuse (destroyed key, wrong argument types or
 * lengths, bad Shamir parameters) throws an Error whose message starts with a
 * stable code in brackets, e.g. `[key_destroyed] …`; authentication failures
 * are not exceptions: they return `null` (single) or a `null` item (batch).
 */
export interface CryptoBackend {
  readonly name: 'native' | 'node';
  status(): BackendStatus;

  /** 32 random bytes made inside the backend. */
  keyGenerate(): RawKeyRef;
  /** Copies exactly 32 bytes into key memory, then zero-fills `bytes` (left untouched when the length is wrong). */
  keyImport(bytes: Uint8Array): RawKeyRef;
  /** Wipes the key. Idempotent. */
  keyDestroy(key: RawKeyRef): void;
  keyInfo(key: RawKeyRef): RawKeyInfo;
  /** False once the key is destroyed (or wiped): keyInfo's `destroyed`, without building an object. */
  keyLive(key: RawKeyRef): boolean;

  /** AES-256-GCM with a fresh 96-bit random nonce; returns nonce ‖ ct ‖ tag. */
  seal(key: RawKeyRef, plaintext: Uint8Array, aad: Uint8Array): Buffer;
  /**
   * Seals into `out` at `offset` (nonce ‖ ct ‖ tag, plaintext length + 28 bytes) and
   * returns the bytes written: a caller that reuses its output memory allocates nothing.
   * `[invalid_argument]` when `out` lacks room or overlaps `plaintext` or `aad`.
   */
  sealInto(key: RawKeyRef, plaintext: Uint8Array, aad: Uint8Array, out: Uint8Array, offset: number): number;
  /** Opens nonce ‖ ct ‖ tag; `null` if authentication fails or the blob is shorter than 28 bytes. */
  open(key: RawKeyRef, sealed: Uint8Array, aad: Uint8Array): Buffer | null;
  /** One call, many items under one key. `aads.length` must equal `plaintexts.length`. */
  sealBatch(key: RawKeyRef, plaintexts: readonly Uint8Array[], aads: readonly Uint8Array[]): Buffer[];
  /** Per-item `null` on authentication failure; the other items still open. */
  openBatch(key: RawKeyRef, sealed: readonly Uint8Array[], aads: readonly Uint8Array[]): (Buffer | null)[];

  /** Seals the 32 bytes of `target` under `kek`: 60 bytes. */
  wrapKey(kek: RawKeyRef, target: RawKeyRef, aad: Uint8Array): Buffer;
  /** A new key from a wrapped blob, or `null` when authentication fails or the blob is not 60 bytes. */
  unwrapKey(kek: RawKeyRef, wrapped: Uint8Array, aad: Uint8Array): RawKeyRef | null;

  /**
   * Envelope encryption in one call: makes a fresh data key inside the backend,
   * wraps it under `kek` with `wrapAad`, seals every item under it, wipes it.
   * Returns `[wrappedDataKey (60 bytes), sealed_0, sealed_1, …]`.
   */
  dataKeySealBatch(
    kek: RawKeyRef,
    wrapAad: Uint8Array,
    plaintexts: readonly Uint8Array[],
    aads: readonly Uint8Array[],
  ): Buffer[];
  /**
   * Envelope encryption of spans of a text body, spliced into a new body in
   * one call (ts/seal-splice.ts states the contract; src/seal_splice.rs is
   * the native one): one fresh data key wrapped under `kek` with `wrapAad`,
   * `body[plaintext span]` of each item sealed under it, each value span
   * replaced by `"` ‖ textHead ‖ base64url(header ‖ wrapped ‖ sealed) ‖ `"`.
   * `spans` holds 4 numbers per item (value start/end, plaintext start/end),
   * values in order and not overlapping; one context per item, ≤ 4096 bytes.
   */
  dataKeySealSplice(
    kek: RawKeyRef,
    wrapAad: Uint8Array,
    body: Uint8Array,
    spans: Uint32Array,
    contexts: readonly Uint8Array[],
    aadHead: Uint8Array,
    textHead: Uint8Array,
    header: Uint8Array,
  ): Buffer;
  /**
   * The inverse of dataKeySealSplice, all or nothing (ts/open-splice.ts states
   * the contract; src/open_splice.rs is the native one): when every value span
   * (`spans`: start, end per item) is exactly the JSON string of an envelope
   * under `header` that opens and holds UTF-8, the body with each value
   * replaced by its plaintext's JSON string; else null (no reason given).
   */
  dataKeyOpenSplice(
    kek: RawKeyRef,
    wrapAad: Uint8Array,
    body: Uint8Array,
    spans: Uint32Array,
    contexts: readonly Uint8Array[],
    aadHead: Uint8Array,
    textHead: Uint8Array,
    header: Uint8Array,
  ): Buffer | null;
  /**
   * The inverse: item i is opened with the data key unwrapped from `wrappedKeys[i]`
   * (under `kek`, AAD `wrapAads[i]`); consecutive identical wrapped keys are unwrapped once.
   * `null` for an item whose data key or ciphertext fails authentication.
   */
  dataKeyOpenBatch(
    kek: RawKeyRef,
    wrappedKeys: readonly Uint8Array[],
    wrapAads: readonly Uint8Array[],
    sealed: readonly Uint8Array[],
    aads: readonly Uint8Array[],
  ): (Buffer | null)[];

  /**
   * Key transport to a PKCS#11 token (the gateway's `pkcs11` field backend).
   * Makes a fresh 32-byte *transport key* and returns it with its RSA-OAEP
   * encryption (SHA-1, MGF1-SHA-1: the only OAEP hash SoftHSM2 unwraps) under
   * `publicKey`, a DER SubjectPublicKeyInfo of an RSA key of 2048–8192 bits
   * (else `[invalid_argument]`). A transport key is known to whoever holds the
   * private key, so every operation but the two below, keyInfo, keyDestroy
   * (and the test-only export) refuses it with `[invalid_key]`; and those two
   * refuse any other key as their `transport` argument.
   */
  transportKeyGenerate(publicKey: Uint8Array): [RawKeyRef, Buffer];
  /**
   * One fresh data key, returned wrapped twice and then wiped:
   * `[wrappedKey, transportWrapped]` = AES-256-GCM under `kek` with `wrapAad`
   * (60 bytes, exactly as dataKeySealBatch's first output) and AES Key Wrap
   * (RFC 3394, default IV) under `transport` (40 bytes). Counts one encryption on `kek`.
   */
  dataKeyForTransport(kek: RawKeyRef, transport: RawKeyRef, wrapAad: Uint8Array): Buffer[];
  /**
   * Item i: the data key in `wrappedKeys[i]` (opened under `kek` with
   * `wrapAads[i]`) AES-KW-wrapped under `transport` (40 bytes), or `null` when
   * it is not 60 bytes or fails authentication. The data keys are never returned in clear.
   */
  dataKeyRewrapForTransport(
    kek: RawKeyRef,
    transport: RawKeyRef,
    wrappedKeys: readonly Uint8Array[],
    wrapAads: readonly Uint8Array[],
  ): (Buffer | null)[];

  /** HMAC-SHA-256 keyed by the key's 32 bytes. */
  hmacSha256(key: RawKeyRef, data: Uint8Array): Buffer;
  /** HKDF-SHA-256 (RFC 5869), IKM = the key, salt = `salt` (may be empty), L = 32: a new key. */
  deriveKey(key: RawKeyRef, salt: Uint8Array, info: Uint8Array): RawKeyRef;

  /** Splits the key into `n` shares, any `m` of which rebuild it (2 ≤ m ≤ n ≤ 255). Each share is x ‖ y (33 bytes). */
  shamirSplit(key: RawKeyRef, m: number, n: number): Buffer[];
  /** Rebuilds the key from ≥ 2 shares of 33 bytes with distinct non-zero x (Lagrange at 0). */
  shamirCombine(shares: readonly Uint8Array[]): RawKeyRef;

  /**
   * TEST-ONLY: a copy of the key bytes. Throws `[insecure_export_disabled]`
   * unless the process was started with KCM_INSECURE_KEY_EXPORT=tests. Used
   * only through native/ts/insecure-export.ts, by tests that prove a key never
   * reaches a database or a log.
   */
  insecureExportKey(key: RawKeyRef): Buffer;
}
