/**
 * Wrapped-key blobs (SPEC.md §4): a 256-bit key sealed with AES-256-GCM under
 * another key, with associated data naming both keys, so a blob cannot be
 * swapped for another key's or replayed under another wrapping key.
 * Pure codec: no keys, no I/O.
 */
import { KcmError } from '../errors.ts';
import { ByteReader, ByteWriter } from './byte-reader.ts';
import { KEY_REF_MAX_BYTES, type KeyRef, readKeyRef, writeKeyRef } from './key-ref.ts';

/** "okw": marks a wrapped-key blob. */
export const WRAPPED_KEY_MAGIC = Buffer.from('okw', 'latin1');
export const WRAPPED_KEY_FORMAT_VERSION = 1;
/** Algorithm 1: AES-256-GCM, 96-bit random nonce, 128-bit tag, 32-byte key. */
export const WRAP_ALG_AES256GCM = 1;
/** nonce (12) ‖ encrypted key (32) ‖ tag (16). */
export const WRAPPED_KEY_SEALED_BYTES = 60;
export const WRAPPED_KEY_BLOB_MAX_BYTES = 3 + 1 + 1 + 2 * KEY_REF_MAX_BYTES + WRAPPED_KEY_SEALED_BYTES;

const WRAP_DOMAIN = Buffer.from('okcm/wrap/v1\0', 'latin1');

export interface WrappedKeyBlob {
  /** The key that wraps. */
  wrapping: KeyRef;
  /** The key inside. */
  wrapped: KeyRef;
  /** nonce ‖ ciphertext ‖ tag, 60 bytes. */
  sealed: Uint8Array;
}

/** AAD of every key wrap: "okcm/wrap/v1\0" ‖ alg ‖ KeyRef(wrapping) ‖ KeyRef(wrapped). */
export function wrapAad(wrapping: KeyRef, wrapped: KeyRef): Buffer {
  const w = new ByteWriter(WRAP_DOMAIN.length + 1 + 2 * KEY_REF_MAX_BYTES);
  w.bytes(WRAP_DOMAIN).u8(WRAP_ALG_AES256GCM);
  writeKeyRef(w, wrapping);
  writeKeyRef(w, wrapped);
  return w.finish();
}

/** Serialises a blob; throws `format_header` for an invalid KeyRef or a sealed part that is not 60 bytes. */
export function encodeWrappedKey(blob: WrappedKeyBlob): Buffer {
  if (blob.sealed.length !== WRAPPED_KEY_SEALED_BYTES) {
    throw new KcmError('format_header', `sealed key must be ${WRAPPED_KEY_SEALED_BYTES} bytes`);
  }
  const w = new ByteWriter(WRAPPED_KEY_BLOB_MAX_BYTES);
  w.bytes(WRAPPED_KEY_MAGIC).u8(WRAPPED_KEY_FORMAT_VERSION).u8(WRAP_ALG_AES256GCM);
  writeKeyRef(w, blob.wrapping);
  writeKeyRef(w, blob.wrapped);
  w.bytes(blob.sealed);
  return Buffer.from(w.finish());
}

/**
 * Parses a blob in the fixed order magic → version → alg → wrapping → wrapped → sealed,
 * checking each length before slicing. Throws KcmError `format_prefix` (bad magic),
 * `format_version`, `format_header` or `format_length` (trailing or missing bytes).
 */
export function decodeWrappedKey(bytes: Uint8Array): WrappedKeyBlob {
  if (bytes.length > WRAPPED_KEY_BLOB_MAX_BYTES) throw new KcmError('format_length', 'wrapped key blob too long');
  const r = new ByteReader(bytes);
  const magic = r.take(Math.min(3, bytes.length), 'magic');
  if (magic.length !== 3 || Buffer.compare(magic, WRAPPED_KEY_MAGIC) !== 0) {
    throw new KcmError('format_prefix', 'not a wrapped key blob');
  }
  const version = r.u8('version');
  if (version !== WRAPPED_KEY_FORMAT_VERSION) {
    throw new KcmError('format_version', `wrapped key format ${version} not supported`);
  }
  const alg = r.u8('algorithm');
  if (alg !== WRAP_ALG_AES256GCM) r.fail(`unknown wrap algorithm ${alg}`);
  const wrapping = readKeyRef(r, 'wrapping key');
  const wrapped = readKeyRef(r, 'wrapped key');
  if (r.remaining !== WRAPPED_KEY_SEALED_BYTES) {
    throw new KcmError('format_length', `sealed key must be ${WRAPPED_KEY_SEALED_BYTES} bytes, got ${r.remaining}`);
  }
  return { wrapping, wrapped, sealed: r.rest() };
}
