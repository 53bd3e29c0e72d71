/**
 * The holder's side of share distribution (the `kcm operator` CLI runs this
 * on the holder's own machine): make an X25519 keypair once, give the public
 * key to the ceremony, and later open the sealed payload (SPEC.md §9.2) with
 * the secret key to get the signed share text (§9.1) to submit.
 *
 * Errors are `invalid_share` and never echo a key, the payload or the share.
 */
import { type ErrorCode, KcmError } from '../../../../common/src/errors.ts';
import { decodeBase64Exact, encodeBase64 } from './base64.ts';
import { decodeSealedPayload } from './sealed-payload.ts';
import { decodeSignedShare, signedShareToText } from './signed-share.ts';
import { sodium, X25519_KEY_BYTES } from './sodium.ts';

export interface HolderKeypair {
  /** X25519 public key, 32 bytes: hand it to the ceremony. */
  publicKey: Buffer;
  /** X25519 secret key, 32 bytes: keep it offline; wipe the buffer after use. */
  secretKey: Buffer;
}

/** A fresh X25519 keypair (crypto_box_keypair). */
export function generateHolderKeypair(): HolderKeypair {
  const kp = sodium.crypto_box_keypair();
  const out = { publicKey: Buffer.from(kp.publicKey), secretKey: Buffer.from(kp.privateKey) };
  sodium.memzero(kp.privateKey);
  return out;
}

/** Padded standard base64 of a 32-byte holder key (the form used in payloads and the manifest). */
export function holderKeyToBase64(key: Uint8Array): string {
  if (key.length !== X25519_KEY_BYTES) throw new KcmError('invalid_shamir_parameters', 'holder key must be 32 bytes');
  return encodeBase64(key);
}

/**
 * Decodes a base64 holder key (surrounding white space ignored). Throws
 * `KcmError(code)` (default `invalid_shamir_parameters`) unless it is
 * canonical base64 of 32 bytes; the message names `what`, never the text.
 */
export function holderKeyFromBase64(
  text: string,
  what = 'holder key',
  code: ErrorCode = 'invalid_shamir_parameters',
): Buffer {
  return decodeBase64Exact(typeof text === 'string' ? text.trim() : text, X25519_KEY_BYTES, what, code);
}

/** The X25519 public key of a secret key. */
export function holderPublicKeyOf(secretKey: Uint8Array): Buffer {
  if (secretKey.length !== X25519_KEY_BYTES) throw new KcmError('invalid_share', 'holder secret key must be 32 bytes');
  return Buffer.from(sodium.crypto_scalarmult_base(secretKey));
}

/**
 * Opens a sealed payload with the holder's secret key and returns the signed
 * share text ("okcm-signed-share:1:…"). Checks, in order: the payload's form
 * (not JSON, wrong keys or format, non-canonical → `invalid_share`); the
 * secret key is 32 bytes and belongs to the payload's holder public key
 * ("sealed to another holder key"); the box opens ("wrong key or corrupted");
 * the content is a structurally valid signed share whose index is the
 * payload's. The signature is checked later, by the Core (verify-share.ts),
 * which knows the ceremony public key. Does not modify `holderSecretKey`.
 */
export function openSealedShare(payloadJson: string, holderSecretKey: Uint8Array): string {
  const payload = decodeSealedPayload(payloadJson);
  const publicKey = holderPublicKeyOf(holderSecretKey);
  if (Buffer.compare(publicKey, payload.holderPublicKey) !== 0) {
    throw new KcmError('invalid_share', 'the payload is sealed to another holder key (wrong secret key)');
  }
  let opened: Uint8Array;
  try {
    opened = sodium.crypto_box_seal_open(payload.sealed, publicKey, holderSecretKey);
  } catch {
    throw new KcmError('invalid_share', 'cannot open the sealed share (wrong key or corrupted payload)');
  }
  try {
    const parts = decodeSignedShare(opened);
    if (parts.header.index !== payload.index) {
      throw new KcmError('invalid_share', 'the sealed share index differs from the payload index');
    }
    return signedShareToText(opened);
  } finally {
    sodium.memzero(opened);
  }
}
