/**
 * Fallback backend on `node:crypto`, selected when the native binary cannot
 * load (or with KCM_CRYPTO_BACKEND=node). Same formats byte for byte as the
 * Rust module (see backend.ts), so either side opens what the other sealed.
 *
 * Weaker than native, and it says so: key bytes live in the V8-external heap
 * (Buffers), are not mlock'ed (`locked: false`) and may appear in a core dump.
 * They are still never returned to callers, and are zero-filled on destroy.
 */
import {
  constants,
  createCipheriv,
  createDecipheriv,
  createHmac,
  createPublicKey,
  hkdfSync,
  type KeyObject,
  publicEncrypt,
  randomFillSync,
} from 'node:crypto';
import type { BackendStatus, CryptoBackend, RawKeyInfo, RawKeyRef } from './backend.ts';
import { backendError } from './backend-error.ts';
import { gfInterpolateAtZero, gfPolyEval } from './gf256.ts';
import { checkOpenSpans, type OpenBatch, openSpliceVia } from './open-splice.ts';
import { checkSpliceSpans, type SealBatch, sealSpliceVia } from './seal-splice.ts';

const KEY_LEN = 32;
/** Read once at start-up, like the native module: a later change of the environment cannot enable it. */
const EXPORT_ENABLED = process.env.KCM_INSECURE_KEY_EXPORT === 'tests';
const NONCE_LEN = 12;
const TAG_LEN = 16;
const WRAPPED_LEN = NONCE_LEN + KEY_LEN + TAG_LEN;
const SHARE_LEN = 1 + KEY_LEN;
/** RFC 3394 §2.2.3.1 default initial value. */
const KW_IV = Buffer.from('a6a6a6a6a6a6a6a6', 'hex');
const RSA_MIN_BITS = 2048;
const RSA_MAX_BITS = 8192;

interface KeySlot {
  id: number;
  bytes: Buffer;
  /** A transport key (transportKeyGenerate): usable only by the …ForTransport functions. */
  transport: boolean;
  destroyed: boolean;
  encryptions: number;
}

/** Handles are frozen empty objects; the slot behind each is reachable only through this map. */
const slots = new WeakMap<object, KeySlot>();
const wipeOnGc = new FinalizationRegistry<Buffer>((bytes) => {
  bytes.fill(0);
  liveKeys--;
});
let nextId = 1;
let liveKeys = 0;

function newKey(bytes: Buffer, transport = false): RawKeyRef {
  const ref = Object.freeze(Object.create(null)) as object;
  slots.set(ref, { id: nextId++, bytes, transport, destroyed: false, encryptions: 0 });
  wipeOnGc.register(ref, bytes, ref);
  liveKeys++;
  return ref as RawKeyRef;
}

/**
 * The slot of a live key. `kind` says which keys are accepted: ordinary ones
 * (the default: a transport key is `invalid_key`, as in the native module),
 * only transport keys, or any (keyInfo, keyDestroy, export: destroyed ones too).
 */
function slotOf(key: RawKeyRef, kind: 'key' | 'transport' | 'any' = 'key'): KeySlot {
  const slot = typeof key === 'object' && key !== null ? slots.get(key) : undefined;
  if (!slot) throw backendError('invalid_key', 'argument is not a key handle of the node backend');
  if (kind === 'key' && slot.transport) {
    throw backendError('invalid_key', 'a transport key only wraps data keys for the token');
  }
  if (kind === 'transport' && !slot.transport) throw backendError('invalid_key', 'not a transport key');
  if (slot.destroyed && kind !== 'any') throw backendError('key_destroyed', `key ${slot.id} has been destroyed`);
  return slot;
}

/** AES-256 Key Wrap (RFC 3394) of a 32-byte key under `kek`: 40 bytes. */
function kwWrap(kek: Buffer, key: Buffer): Buffer {
  const c = createCipheriv('id-aes256-wrap', kek, KW_IV);
  return Buffer.concat([c.update(key), c.final()]);
}

/** The RSA public key in a DER SubjectPublicKeyInfo of 2048–8192 bits (and nothing else), or `[invalid_argument]`. */
function rsaPublicKey(der: Uint8Array): KeyObject {
  const bad = () =>
    backendError(
      'invalid_argument',
      `publicKey must be the DER SubjectPublicKeyInfo of an RSA key of ${RSA_MIN_BITS} to ${RSA_MAX_BITS} bits`,
    );
  let key: KeyObject;
  try {
    key = createPublicKey({ key: Buffer.from(der), format: 'der', type: 'spki' });
  } catch {
    throw bad();
  }
  const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
  // Re-encoding must give the input back: no trailing bytes, no alternative encodings.
  const exact = Buffer.compare(key.export({ type: 'spki', format: 'der' }), der) === 0;
  if (key.asymmetricKeyType !== 'rsa' || bits < RSA_MIN_BITS || bits > RSA_MAX_BITS || !exact) throw bad();
  return key;
}

function bytesArg(value: unknown, name: string): Uint8Array {
  if (!(value instanceof Uint8Array)) throw backendError('invalid_argument', `${name} must be a Buffer or Uint8Array`);
  if (value.buffer instanceof SharedArrayBuffer) {
    throw backendError('invalid_argument', `${name}: views of a SharedArrayBuffer are not accepted`);
  }
  return value;
}

function sameLength(a: readonly unknown[], b: readonly unknown[], what: string): void {
  if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) {
    throw backendError('invalid_argument', `${what}: arrays must have equal length`);
  }
}

function sealWith(keyBytes: Buffer, plaintext: Uint8Array, aad: Uint8Array): Buffer {
  // Not from the shared pool: a sealed blob never shares a backing store with unrelated memory.
  const out = Buffer.alloc(NONCE_LEN + plaintext.length + TAG_LEN);
  const nonce = out.subarray(0, NONCE_LEN);
  randomFillSync(nonce);
  const cipher = createCipheriv('aes-256-gcm', keyBytes, nonce, { authTagLength: TAG_LEN });
  cipher.setAAD(aad);
  let off = NONCE_LEN + cipher.update(plaintext).copy(out, NONCE_LEN);
  off += cipher.final().copy(out, off);
  cipher.getAuthTag().copy(out, off);
  return out;
}

function overlaps(a: Uint8Array, aOff: number, aLen: number, b: Uint8Array): boolean {
  if (a.buffer !== b.buffer || aLen === 0 || b.length === 0) return false;
  const start = a.byteOffset + aOff;
  return start < b.byteOffset + b.length && b.byteOffset < start + aLen;
}

function openWith(keyBytes: Buffer, sealed: Uint8Array, aad: Uint8Array): Buffer | null {
  if (sealed.length < NONCE_LEN + TAG_LEN) return null;
  const nonce = sealed.subarray(0, NONCE_LEN);
  const tag = sealed.subarray(sealed.length - TAG_LEN);
  const decipher = createDecipheriv('aes-256-gcm', keyBytes, nonce, { authTagLength: TAG_LEN });
  decipher.setAAD(aad);
  decipher.setAuthTag(tag);
  const body = decipher.update(sealed.subarray(NONCE_LEN, sealed.length - TAG_LEN));
  try {
    const tail = decipher.final();
    return tail.length === 0 ? body : Buffer.concat([body, tail]);
  } catch {
    body.fill(0);
    return null;
  }
}

function unwrapBytes(kek: Buffer, wrapped: Uint8Array, aad: Uint8Array): Buffer | null {
  if (wrapped.length !== WRAPPED_LEN) return null;
  return openWith(kek, wrapped, aad);
}

function equalBytes(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  return a !== undefined && b !== undefined && Buffer.compare(a, b) === 0;
}

export const nodeBackend: CryptoBackend = {
  name: 'node',

  status(): BackendStatus {
    return { name: 'node', liveKeys, memoryLockable: false, memoryLockError: 'node:crypto backend cannot lock memory' };
  },

  keyGenerate() {
    const bytes = Buffer.alloc(KEY_LEN);
    randomFillSync(bytes);
    return newKey(bytes);
  },

  keyImport(bytes) {
    const src = bytesArg(bytes, 'bytes');
    if (src.length !== KEY_LEN)
      throw backendError('invalid_key_length', `key must be ${KEY_LEN} bytes, got ${src.length}`);
    const copy = Buffer.from(src);
    src.fill(0);
    return newKey(copy);
  },

  keyDestroy(key) {
    const slot = slotOf(key, 'any');
    if (slot.destroyed) return;
    slot.bytes.fill(0);
    slot.destroyed = true;
    wipeOnGc.unregister(key);
    liveKeys--;
  },

  keyLive(key) {
    return !slotOf(key, 'any').destroyed;
  },

  keyInfo(key): RawKeyInfo {
    const slot = slotOf(key, 'any');
    return { id: slot.id, locked: false, destroyed: slot.destroyed, encryptions: slot.encryptions };
  },

  seal(key, plaintext, aad) {
    const slot = slotOf(key);
    const out = sealWith(slot.bytes, bytesArg(plaintext, 'plaintext'), bytesArg(aad, 'aad'));
    slot.encryptions++;
    return out;
  },

  sealInto(key, plaintext, aad, out, offset) {
    const slot = slotOf(key);
    const pt = bytesArg(plaintext, 'plaintext');
    const ad = bytesArg(aad, 'aad');
    const dst = bytesArg(out, 'out');
    const need = pt.length + NONCE_LEN + TAG_LEN;
    if (!Number.isInteger(offset) || offset < 0 || offset > dst.length) {
      throw backendError('invalid_argument', 'sealInto: offset must be an integer within out');
    }
    if (dst.length - offset < need) {
      throw backendError(
        'invalid_argument',
        `sealInto: out has ${dst.length - offset} bytes after offset, needs ${need}`,
      );
    }
    if (overlaps(dst, offset, need, pt) || overlaps(dst, offset, need, ad)) {
      throw backendError('invalid_argument', 'sealInto: out overlaps plaintext or aad');
    }
    sealWith(slot.bytes, pt, ad).copy(dst, offset);
    slot.encryptions++;
    return need;
  },

  open(key, sealed, aad) {
    return openWith(slotOf(key).bytes, bytesArg(sealed, 'sealed'), bytesArg(aad, 'aad'));
  },

  sealBatch(key, plaintexts, aads) {
    const slot = slotOf(key);
    sameLength(plaintexts, aads, 'sealBatch');
    const out = plaintexts.map((p, i) =>
      sealWith(slot.bytes, bytesArg(p, `plaintexts[${i}]`), bytesArg(aads[i], `aads[${i}]`)),
    );
    slot.encryptions += out.length;
    return out;
  },

  openBatch(key, sealed, aads) {
    const slot = slotOf(key);
    sameLength(sealed, aads, 'openBatch');
    return sealed.map((s, i) => openWith(slot.bytes, bytesArg(s, `sealed[${i}]`), bytesArg(aads[i], `aads[${i}]`)));
  },

  wrapKey(kek, target, aad) {
    const k = slotOf(kek);
    const out = sealWith(k.bytes, slotOf(target).bytes, bytesArg(aad, 'aad'));
    k.encryptions++;
    return out;
  },

  unwrapKey(kek, wrapped, aad) {
    const bytes = unwrapBytes(slotOf(kek).bytes, bytesArg(wrapped, 'wrapped'), bytesArg(aad, 'aad'));
    return bytes ? newKey(bytes) : null;
  },

  dataKeySealBatch(kek, wrapAad, plaintexts, aads) {
    const k = slotOf(kek);
    sameLength(plaintexts, aads, 'dataKeySealBatch');
    const dek = Buffer.alloc(KEY_LEN);
    randomFillSync(dek);
    try {
      const out = [sealWith(k.bytes, dek, bytesArg(wrapAad, 'wrapAad'))];
      k.encryptions++;
      for (let i = 0; i < plaintexts.length; i++) {
        out.push(sealWith(dek, bytesArg(plaintexts[i], `plaintexts[${i}]`), bytesArg(aads[i], `aads[${i}]`)));
      }
      return out;
    } finally {
      dek.fill(0);
    }
  },

  dataKeySealSplice(kek, wrapAad, body, spans, contexts, aadHead, textHead, header) {
    slotOf(kek); // the key first, as the native module does
    checkSpliceSpans(bytesArg(body, 'body').length, spans, contexts);
    const sealBatch: SealBatch = (w, pts, aads) => {
      const [wrappedKey, ...sealed] = this.dataKeySealBatch(kek, w, pts, aads);
      return { wrappedKey: wrappedKey as Buffer, sealed };
    };
    return sealSpliceVia(sealBatch, wrapAad, body, spans, contexts, aadHead, textHead, header);
  },

  dataKeyOpenSplice(kek, wrapAad, body, spans, contexts, aadHead, textHead, header) {
    slotOf(kek); // the key first, as the native module does
    checkOpenSpans(bytesArg(body, 'body').length, spans, contexts);
    const openBatch: OpenBatch = (w, wa, s, a) => this.dataKeyOpenBatch(kek, w, wa, s, a);
    return openSpliceVia(openBatch, wrapAad, body, spans, contexts, aadHead, textHead, header);
  },

  dataKeyOpenBatch(kek, wrappedKeys, wrapAads, sealed, aads) {
    const k = slotOf(kek);
    sameLength(wrappedKeys, wrapAads, 'dataKeyOpenBatch');
    sameLength(wrappedKeys, sealed, 'dataKeyOpenBatch');
    sameLength(wrappedKeys, aads, 'dataKeyOpenBatch');
    const out: (Buffer | null)[] = [];
    let dek: Buffer | null = null;
    for (let i = 0; i < sealed.length; i++) {
      const wrapped = bytesArg(wrappedKeys[i], `wrappedKeys[${i}]`);
      const wrapAad = bytesArg(wrapAads[i], `wrapAads[${i}]`);
      if (i === 0 || !equalBytes(wrapped, wrappedKeys[i - 1]) || !equalBytes(wrapAad, wrapAads[i - 1])) {
        dek?.fill(0);
        dek = unwrapBytes(k.bytes, wrapped, wrapAad);
      }
      const item = bytesArg(sealed[i], `sealed[${i}]`);
      const itemAad = bytesArg(aads[i], `aads[${i}]`);
      out.push(dek ? openWith(dek, item, itemAad) : null);
    }
    dek?.fill(0);
    return out;
  },

  transportKeyGenerate(publicKey) {
    const rsa = rsaPublicKey(bytesArg(publicKey, 'publicKey'));
    const bytes = Buffer.alloc(KEY_LEN);
    randomFillSync(bytes);
    // OAEP with SHA-1 / MGF1-SHA-1: see native/src/transport.rs for why.
    const wrapped = publicEncrypt({ key: rsa, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, bytes);
    return [newKey(bytes, true), wrapped];
  },

  dataKeyForTransport(kek, transport, wrapAad) {
    const k = slotOf(kek);
    const t = slotOf(transport, 'transport');
    const dek = Buffer.alloc(KEY_LEN);
    randomFillSync(dek);
    try {
      const wrapped = sealWith(k.bytes, dek, bytesArg(wrapAad, 'wrapAad'));
      k.encryptions++;
      return [wrapped, kwWrap(t.bytes, dek)];
    } finally {
      dek.fill(0);
    }
  },

  dataKeyRewrapForTransport(kek, transport, wrappedKeys, wrapAads) {
    const k = slotOf(kek);
    const t = slotOf(transport, 'transport');
    sameLength(wrappedKeys, wrapAads, 'dataKeyRewrapForTransport');
    return wrappedKeys.map((w, i) => {
      const dek = unwrapBytes(k.bytes, bytesArg(w, `wrappedKeys[${i}]`), bytesArg(wrapAads[i], `wrapAads[${i}]`));
      if (!dek) return null;
      try {
        return kwWrap(t.bytes, dek);
      } finally {
        dek.fill(0);
      }
    });
  },

  hmacSha256(key, data) {
    return createHmac('sha256', slotOf(key).bytes).update(bytesArg(data, 'data')).digest();
  },

  deriveKey(key, salt, info) {
    const okm = hkdfSync('sha256', slotOf(key).bytes, bytesArg(salt, 'salt'), bytesArg(info, 'info'), KEY_LEN);
    return newKey(Buffer.from(okm));
  },

  shamirSplit(key, m, n) {
    const secret = slotOf(key).bytes;
    if (!Number.isInteger(m) || !Number.isInteger(n) || m < 2 || n < m || n > 255) {
      throw backendError('invalid_shamir_parameters', `need 2 <= m <= n <= 255, got m=${m} n=${n}`);
    }
    const coeffs = Buffer.alloc(m);
    const shares = Array.from({ length: n }, (_, i) => {
      const share = Buffer.alloc(SHARE_LEN);
      share[0] = i + 1;
      return share;
    });
    try {
      for (let b = 0; b < KEY_LEN; b++) {
        coeffs[0] = secret[b] as number;
        randomFillSync(coeffs, 1);
        for (const share of shares) share[1 + b] = gfPolyEval(coeffs, share[0] as number);
      }
    } finally {
      coeffs.fill(0);
    }
    return shares;
  },

  shamirCombine(shares) {
    if (!Array.isArray(shares)) throw backendError('invalid_argument', 'shares must be an array');
    if (shares.length < 2) throw backendError('not_enough_shares', `need at least 2 shares, got ${shares.length}`);
    const xs: number[] = [];
    for (const [i, s] of shares.entries()) {
      if (!(s instanceof Uint8Array) || s.length !== SHARE_LEN) {
        throw backendError('invalid_share', `share ${i} must be ${SHARE_LEN} bytes`);
      }
      const x = s[0] as number;
      if (x === 0) throw backendError('invalid_share', `share ${i} has x = 0`);
      if (xs.includes(x)) throw backendError('duplicate_share', `share ${i} repeats x = ${x}`);
      xs.push(x);
    }
    const secret = Buffer.alloc(KEY_LEN);
    const ys = new Uint8Array(shares.length);
    for (let b = 0; b < KEY_LEN; b++) {
      for (let i = 0; i < shares.length; i++) ys[i] = (shares[i] as Uint8Array)[1 + b] as number;
      secret[b] = gfInterpolateAtZero(xs, ys);
    }
    ys.fill(0);
    return newKey(secret);
  },

  insecureExportKey(key) {
    if (!EXPORT_ENABLED)
      throw backendError('insecure_export_disabled', 'key export is for tests only (KCM_INSECURE_KEY_EXPORT=tests)');
    // Transport keys too: tests check what the token receives.
    const slot = slotOf(key, 'any');
    if (slot.destroyed) throw backendError('key_destroyed', `key ${slot.id} has been destroyed`);
    return Buffer.from(slot.bytes);
  },
};
