/**
 * Field AEAD inside the PKCS#11 token: the envelope operations of an L3
 * KeyHandle (KeyHandle.withEnvelope), so encryptFields / decryptFields
 * (common/src/crypto/field-cipher.ts) run unchanged and write the same
 * SPEC.md §5 envelope.
 *
 * Encrypt, per request: one native call makes the fresh L4 data key and
 * returns it wrapped under L3 (AES-256-GCM: the envelope's wrapped key) and
 * under the transport key KT (AES-KW, 40 bytes); the token unwraps the latter
 * under KT' into a session key (sensitive, non-extractable, encrypt/decrypt
 * only), seals each field with CKM_AES_GCM (96-bit IV from the token's RNG,
 * the field AAD, 128-bit tag: nonce ‖ ct ‖ tag, byte for byte what the native
 * module writes), and destroys it.
 *
 * Decrypt: one native call re-wraps each distinct wrapped key from L3 to KT
 * (never in clear); the token unwraps each and opens its fields. A field
 * whose tag fails (SoftHSM: CKR_GENERAL_ERROR; the standard
 * CKR_ENCRYPTED_DATA_INVALID) is that item's `null`; any other token failure
 * aborts the call with KcmError `hsm_unavailable`, drops the session, and
 * when the login or the key objects are gone, the transport key is set up
 * again on the next call.
 */
import pkcs11js from 'pkcs11js';
import { KcmError } from '../../../common/src/errors.ts';
import type { Crypto, EnvelopeEngine, KeyHandle } from '../../../native/index.ts';
import {
  type Pkcs11Lib,
  returnValue,
  SESSION_LOST,
  sessionAesKey,
  type TokenSessions,
  tokenError,
} from './token-sessions.ts';
import { setUpTransportKey, type TransportKey } from './transport-key.ts';

const P = pkcs11js;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;

/** AES Key Wrap, RFC 3394 (not the _PAD variant: SoftHSM's differs from RFC 5649; 32-byte keys need no padding). */
const AES_KW: pkcs11js.Mechanism = { mechanism: P.CKM_AES_KEY_WRAP };

/** A per-request data key in the token: usable for GCM only, never readable, gone with its session at the latest. */
const DATA_KEY_TEMPLATE = sessionAesKey({ encrypt: true, decrypt: true });

/** What a token reports for a GCM tag mismatch (SoftHSM2 uses the first). */
const TAG_FAILURE: ReadonlySet<number> = new Set([
  P.CKR_GENERAL_ERROR,
  P.CKR_ENCRYPTED_DATA_INVALID,
  P.CKR_ENCRYPTED_DATA_LEN_RANGE,
]);

/** CKM_AES_GCM with v2.40 CK_GCM_PARAMS: 96-bit IV, the AAD, 128-bit tag. */
function gcm(iv: Buffer, aad: Buffer): pkcs11js.Mechanism {
  const parameter: pkcs11js.AesGCM = {
    type: P.CK_PARAMS_GCM,
    iv,
    aad,
    ivBits: NONCE_BYTES * 8,
    tagBits: TAG_BYTES * 8,
  };
  return { mechanism: P.CKM_AES_GCM, parameter };
}

function asBuffer(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

/** Token operations and failures, for /metrics. */
export interface TokenCounters {
  /** Token calls that did crypto: data-key unwraps and per-field GCM operations. */
  operations: number;
  /** Calls that failed with a token error (not tag failures). */
  errors: number;
}

/** The envelope engine over one token; see the file comment. */
export class TokenFieldCipher implements EnvelopeEngine {
  readonly counters: TokenCounters = { operations: 0, errors: 0 };
  readonly #token: TokenSessions;
  readonly #crypto: Crypto;
  #transport: TransportKey | undefined;

  /** `crypto` must be the backend of the L3 keys this cipher serves. */
  constructor(token: TokenSessions, crypto: Crypto) {
    this.#token = token;
    this.#crypto = crypto;
  }

  /** The transport key, set up on first use (logging in again if the token logged out). Throws `hsm_unavailable`. */
  transport(): TransportKey {
    if (!this.#transport) {
      try {
        this.#token.ensureLogin();
        this.#transport = setUpTransportKey(this.#token, this.#crypto);
      } catch (err) {
        this.counters.errors++;
        throw err;
      }
    }
    return this.#transport;
  }

  /** Forgets the transport key (both halves): the next call sets up a new one. */
  reset(): void {
    const t = this.#transport;
    this.#transport = undefined;
    if (!t) return;
    t.key.destroy();
    this.#token.closeSession(t.owner);
  }

  /** Encrypts per the file comment; same contract as KeyHandle.dataKeySealBatch. */
  dataKeySealBatch(
    kek: KeyHandle,
    wrapAad: Uint8Array,
    plaintexts: readonly Uint8Array[],
    aads: readonly Uint8Array[],
  ): { wrappedKey: Buffer; sealed: Buffer[] } {
    if (plaintexts.length !== aads.length) throw new KcmError('invalid_argument', 'plaintexts and aads differ');
    const kt = this.transport();
    const { wrappedKey, transportWrapped } = kek.dataKeyForTransport(kt.key, wrapAad);
    const sealed = this.#run('encrypt', (lib, s) => {
      const l4 = lib.C_UnwrapKey(s, AES_KW, kt.object, transportWrapped, DATA_KEY_TEMPLATE);
      this.counters.operations++;
      try {
        const nonces = lib.C_GenerateRandom(s, Buffer.alloc(NONCE_BYTES * plaintexts.length));
        return plaintexts.map((pt, i) =>
          this.#sealOne(lib, s, l4, nonces.subarray(i * NONCE_BYTES, (i + 1) * NONCE_BYTES), aads[i], pt),
        );
      } finally {
        lib.C_DestroyObject(s, l4);
      }
    });
    return { wrappedKey, sealed };
  }

  /** Decrypts per the file comment; same contract as KeyHandle.dataKeyOpenBatch (`null` per failed item). */
  dataKeyOpenBatch(
    kek: KeyHandle,
    wrappedKeys: readonly Uint8Array[],
    wrapAads: readonly Uint8Array[],
    sealed: readonly Uint8Array[],
    aads: readonly Uint8Array[],
  ): (Buffer | null)[] {
    const n = sealed.length;
    if (wrappedKeys.length !== n || wrapAads.length !== n || aads.length !== n) {
      throw new KcmError('invalid_argument', 'dataKeyOpenBatch: arrays differ in length');
    }
    const out: (Buffer | null)[] = new Array(n).fill(null);
    if (n === 0) return out;
    // One token unwrap per distinct (wrapped key, wrap AAD): usually one per request.
    const groups = new Map<string, number[]>();
    for (let i = 0; i < n; i++) {
      const id = `${asBuffer(wrappedKeys[i] as Uint8Array).toString('base64')}.${asBuffer(wrapAads[i] as Uint8Array).toString('base64')}`;
      const g = groups.get(id);
      if (g) g.push(i);
      else groups.set(id, [i]);
    }
    const items = [...groups.values()];
    const firsts = items.map((g) => g[0] as number);
    const kt = this.transport();
    const blobs = kek.dataKeyRewrapForTransport(
      kt.key,
      firsts.map((i) => wrappedKeys[i] as Uint8Array),
      firsts.map((i) => wrapAads[i] as Uint8Array),
    );
    this.#run('decrypt', (lib, s) => {
      for (const [g, indexes] of items.entries()) {
        const blob = blobs[g];
        if (!blob) continue;
        const l4 = lib.C_UnwrapKey(s, AES_KW, kt.object, blob, DATA_KEY_TEMPLATE);
        this.counters.operations++;
        try {
          for (const i of indexes) out[i] = this.#openOne(lib, s, l4, sealed[i] as Uint8Array, aads[i] as Uint8Array);
        } finally {
          lib.C_DestroyObject(s, l4);
        }
      }
    });
    return out;
  }

  /** nonce ‖ ct ‖ tag of one field. An empty plaintext takes C_EncryptFinal alone (SoftHSM refuses an empty C_Encrypt). */
  #sealOne(lib: Pkcs11Lib, s: Buffer, l4: Buffer, nonce: Buffer, aad: Uint8Array | undefined, pt: Uint8Array): Buffer {
    const out = Buffer.alloc(NONCE_BYTES + pt.length + TAG_BYTES);
    nonce.copy(out, 0);
    lib.C_EncryptInit(s, gcm(out.subarray(0, NONCE_BYTES), asBuffer(aad ?? Buffer.alloc(0))), l4);
    this.counters.operations++;
    const body = out.subarray(NONCE_BYTES);
    const written = pt.length === 0 ? lib.C_EncryptFinal(s, body) : lib.C_Encrypt(s, asBuffer(pt), body);
    if (written.length !== body.length) {
      throw new KcmError('hsm_unavailable', `CKM_AES_GCM returned ${written.length} bytes, expected ${body.length}`);
    }
    return out;
  }

  /** The plaintext of nonce ‖ ct ‖ tag, or null when it is too short or its tag fails. */
  #openOne(lib: Pkcs11Lib, s: Buffer, l4: Buffer, sealed: Uint8Array, aad: Uint8Array): Buffer | null {
    if (sealed.length < NONCE_BYTES + TAG_BYTES) return null;
    const blob = asBuffer(sealed);
    const body = blob.subarray(NONCE_BYTES);
    lib.C_DecryptInit(s, gcm(blob.subarray(0, NONCE_BYTES), asBuffer(aad)), l4);
    this.counters.operations++;
    try {
      if (body.length === TAG_BYTES) {
        // SoftHSM refuses an empty single-part call: feed the tag, then finish (which checks it).
        lib.C_DecryptUpdate(s, body, Buffer.alloc(TAG_BYTES));
        lib.C_DecryptFinal(s, Buffer.alloc(TAG_BYTES));
        return Buffer.alloc(0);
      }
      // SoftHSM wants room for ct ‖ tag, and writes the plaintext only.
      return lib.C_Decrypt(s, body, Buffer.alloc(body.length));
    } catch (err) {
      const rv = returnValue(err);
      if (rv !== undefined && TAG_FAILURE.has(rv)) return null;
      throw err;
    }
  }

  /** Runs `fn` on a pool session; a token error drops the session (and the transport key when the login or objects are gone). */
  #run<T>(phase: string, fn: (lib: Pkcs11Lib, s: Buffer) => T): T {
    const s = this.#token.acquire();
    let result: T;
    try {
      result = fn(this.#token.lib, s);
    } catch (err) {
      this.counters.errors++;
      // The session may hold an active operation: a new one next time.
      this.#token.closeSession(s);
      const rv = returnValue(err);
      if (rv !== undefined && SESSION_LOST.has(rv)) this.reset();
      throw tokenError(phase, err);
    }
    this.#token.release(s);
    return result;
  }
}
