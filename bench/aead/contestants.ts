/**
 * The sealers under test. Each factory returns a {@link Sealer}: `op()` seals
 * the fixed input(s) it was built with (a fresh random nonce every time) and
 * returns a number derived from the output; `verify()` seals once and proves
 * the output is real authenticated encryption of that input, throwing
 * otherwise, so a broken contestant cannot look fast.
 *
 * Verification is independent of the contestant wherever possible: every
 * AES-256-GCM output (native, face node backend, hand-written node:crypto) is
 * opened with a separate createDecipheriv under the known key bytes, and the
 * native outputs are also opened by the native backend itself. libsodium
 * outputs are opened with libsodium's decrypt (node has no XChaCha20).
 * Two consecutive seals must differ (fresh nonce).
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type sodiumNs from 'libsodium-wrappers';
import type { KeyHandle } from '../../native/index.ts';

type Sodium = typeof sodiumNs;

export interface Sealer {
  op: () => number;
  verify: () => void;
}

export const NONCE = 12;
export const TAG = 16;
export const XNONCE = 24;

function check(cond: boolean, what: string): asserts cond {
  if (!cond) throw new Error(`correctness guard failed: ${what}`);
}

/** Independent AES-256-GCM open of nonce ‖ ct ‖ tag; throws when authentication fails. */
export function gcmOpen(key: Uint8Array, blob: Uint8Array, aad: Uint8Array): Buffer {
  check(blob.length >= NONCE + TAG, 'blob shorter than nonce + tag');
  const d = createDecipheriv('aes-256-gcm', key, blob.subarray(0, NONCE), { authTagLength: TAG });
  d.setAAD(aad);
  d.setAuthTag(blob.subarray(blob.length - TAG));
  return Buffer.concat([d.update(blob.subarray(NONCE, blob.length - TAG)), d.final()]);
}

/** Checks that `blob` is a GCM seal of `pt` under `key` with `aad`. */
function checkGcm(what: string, key: Uint8Array, blob: Uint8Array, pt: Uint8Array, aad: Uint8Array): void {
  check(blob.length === pt.length + NONCE + TAG, `${what}: length ${blob.length} != ${pt.length + NONCE + TAG}`);
  let back: Buffer;
  try {
    back = gcmOpen(key, blob, aad);
  } catch {
    throw new Error(`correctness guard failed: ${what}: independent AES-256-GCM open rejected the output`);
  }
  check(back.equals(pt), `${what}: decrypts to different bytes`);
}

function checkFresh(what: string, a: Uint8Array, b: Uint8Array): void {
  check(!Buffer.from(a).equals(Buffer.from(b)), `${what}: two seals of one input are identical (nonce reuse)`);
}

/** AES-256-GCM the way a team writes it by hand: createCipheriv + randomBytes(12) per call. */
export function handGcmSeal(key: Buffer, pt: Uint8Array, aad: Uint8Array): Buffer {
  const nonce = randomBytes(NONCE);
  const c = createCipheriv('aes-256-gcm', key, nonce);
  c.setAAD(aad);
  const ct = c.update(pt);
  const fin = c.final();
  return Buffer.concat([nonce, ct, fin, c.getAuthTag()]);
}

/** One message per op through a face KeyHandle (native or node backend). */
export function handleSeal(key: KeyHandle, keyBytes: Buffer, pt: Uint8Array, aad: Uint8Array): Sealer {
  return {
    op: () => key.seal(pt, aad).length,
    verify() {
      const a = key.seal(pt, aad);
      checkGcm(`${key.backend} seal`, keyBytes, a, pt, aad);
      check(key.open(a, aad).equals(pt), `${key.backend} seal: own open differs`);
      checkFresh(`${key.backend} seal`, a, key.seal(pt, aad));
    },
  };
}

/** KeyHandle.sealInto one output buffer reused for every call: what a server writing into its own buffers does. */
export function handleSealInto(key: KeyHandle, keyBytes: Buffer, pt: Uint8Array, aad: Uint8Array): Sealer {
  const out = Buffer.alloc(pt.length + 28);
  return {
    op: () => key.sealInto(pt, aad, out, 0),
    verify() {
      const n = key.sealInto(pt, aad, out, 0);
      const a = Buffer.from(out.subarray(0, n));
      checkGcm(`${key.backend} sealInto`, keyBytes, a, pt, aad);
      check(key.open(a, aad).equals(pt), `${key.backend} sealInto: own open differs`);
      key.sealInto(pt, aad, out, 0);
      checkFresh(`${key.backend} sealInto`, a, Buffer.from(out));
    },
  };
}

/** Every field of a batch through KeyHandle.seal, one call each. */
export function handleSealEach(key: KeyHandle, keyBytes: Buffer, pts: Uint8Array[], aads: Uint8Array[]): Sealer {
  return {
    op() {
      let n = 0;
      for (let i = 0; i < pts.length; i++) n += key.seal(pts[i] as Uint8Array, aads[i] as Uint8Array).length;
      return n;
    },
    verify() {
      pts.forEach((pt, i) => {
        checkGcm(`${key.backend} seal[${i}]`, keyBytes, key.seal(pt, aads[i] as Uint8Array), pt, aads[i] as Uint8Array);
      });
    },
  };
}

/** The whole batch in one KeyHandle.sealBatch call. */
export function handleSealBatch(key: KeyHandle, keyBytes: Buffer, pts: Uint8Array[], aads: Uint8Array[]): Sealer {
  return {
    op() {
      const out = key.sealBatch(pts, aads);
      return out.length + (out[0]?.length ?? 0);
    },
    verify() {
      const out = key.sealBatch(pts, aads);
      check(out.length === pts.length, `${key.backend} sealBatch: ${out.length} outputs for ${pts.length} inputs`);
      const own = key.openBatch(out, aads);
      out.forEach((blob, i) => {
        const pt = pts[i] as Uint8Array;
        checkGcm(`${key.backend} sealBatch[${i}]`, keyBytes, blob, pt, aads[i] as Uint8Array);
        check(own[i]?.equals(pt) === true, `${key.backend} sealBatch[${i}]: own openBatch differs`);
      });
      check(
        new Set(out.map((b) => b.subarray(0, NONCE).toString('hex'))).size === out.length,
        'sealBatch nonces repeat',
      );
      checkFresh(`${key.backend} sealBatch`, out[0] as Buffer, key.sealBatch(pts, aads)[0] as Buffer);
    },
  };
}

/** Envelope encryption of the batch in one dataKeySealBatch call (fresh data key per op, wrapped under `key`). */
export function handleEnvelope(
  key: KeyHandle,
  keyBytes: Buffer,
  wrapAad: Uint8Array,
  pts: Uint8Array[],
  aads: Uint8Array[],
): Sealer {
  return {
    op() {
      const out = key.dataKeySealBatch(wrapAad, pts, aads);
      return out.sealed.length + out.wrappedKey.length;
    },
    verify() {
      const { wrappedKey, sealed } = key.dataKeySealBatch(wrapAad, pts, aads);
      check(sealed.length === pts.length, `envelope: ${sealed.length} outputs for ${pts.length} inputs`);
      check(wrappedKey.length === NONCE + 32 + TAG, `envelope: wrapped key is ${wrappedKey.length} bytes`);
      const dek = gcmOpen(keyBytes, wrappedKey, wrapAad);
      const own = key.dataKeyOpenBatch(
        sealed.map(() => wrappedKey),
        sealed.map(() => wrapAad),
        sealed,
        aads,
      );
      sealed.forEach((blob, i) => {
        const pt = pts[i] as Uint8Array;
        checkGcm(`envelope[${i}]`, dek, blob, pt, aads[i] as Uint8Array);
        check(own[i]?.equals(pt) === true, `envelope[${i}]: own dataKeyOpenBatch differs`);
      });
      checkFresh('envelope', wrappedKey, key.dataKeySealBatch(wrapAad, pts, aads).wrappedKey);
    },
  };
}

/** Hand-written node:crypto over every field, one call each (1 field = a plain single-message case). */
export function handGcm(keyBytes: Buffer, pts: Uint8Array[], aads: Uint8Array[]): Sealer {
  return {
    op() {
      let n = 0;
      for (let i = 0; i < pts.length; i++)
        n += handGcmSeal(keyBytes, pts[i] as Uint8Array, aads[i] as Uint8Array).length;
      return n;
    },
    verify() {
      pts.forEach((pt, i) => {
        const aad = aads[i] as Uint8Array;
        checkGcm(`node:crypto[${i}]`, keyBytes, handGcmSeal(keyBytes, pt, aad), pt, aad);
      });
      const pt = pts[0] as Uint8Array;
      const aad = aads[0] as Uint8Array;
      checkFresh('node:crypto', handGcmSeal(keyBytes, pt, aad), handGcmSeal(keyBytes, pt, aad));
    },
  };
}

/**
 * XChaCha20-Poly1305 IETF seal with a random 24-byte nonce: returns nonce ‖ ct ‖ tag.
 * The nonce comes from node's randomBytes (the same RNG as the node:crypto
 * contestant): libsodium-wrappers' own randombytes_buf costs ~130-150 µs per
 * call here (measured; its WASM build draws randomness through many small
 * crypto.getRandomValues calls, ~7 µs each) and would bury the cipher's cost.
 */
export function sodiumSeal(sodium: Sodium, key: Uint8Array, pt: Uint8Array, aad: Uint8Array): Uint8Array {
  const nonce = randomBytes(XNONCE);
  const ct = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(pt, aad, null, nonce, key);
  const out = new Uint8Array(XNONCE + ct.length);
  out.set(nonce);
  out.set(ct, XNONCE);
  return out;
}

/** libsodium over every field, one call each. */
export function sodiumAead(sodium: Sodium, key: Uint8Array, pts: Uint8Array[], aads: Uint8Array[]): Sealer {
  return {
    op() {
      let n = 0;
      for (let i = 0; i < pts.length; i++)
        n += sodiumSeal(sodium, key, pts[i] as Uint8Array, aads[i] as Uint8Array).length;
      return n;
    },
    verify() {
      pts.forEach((pt, i) => {
        const aad = aads[i] as Uint8Array;
        const blob = sodiumSeal(sodium, key, pt, aad);
        check(blob.length === XNONCE + pt.length + TAG, `libsodium[${i}]: length ${blob.length}`);
        let back: Uint8Array;
        try {
          back = sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
            null,
            blob.subarray(XNONCE),
            aad,
            blob.subarray(0, XNONCE),
            key,
          );
        } catch {
          throw new Error(`correctness guard failed: libsodium[${i}]: decrypt rejected the output`);
        }
        check(Buffer.from(back).equals(Buffer.from(pt)), `libsodium[${i}]: decrypts to different bytes`);
      });
      const pt = pts[0] as Uint8Array;
      const aad = aads[0] as Uint8Array;
      checkFresh('libsodium', sodiumSeal(sodium, key, pt, aad), sodiumSeal(sodium, key, pt, aad));
    },
  };
}
