/**
 * Standard base64 (RFC 4648 §4, with padding) as used in the JSON documents of
 * share distribution (SPEC.md §9): the sealed-share payload and the ceremony
 * manifest. Decoding is strict and canonical: only `A-Z a-z 0-9 + /`, padding
 * to a multiple of 4, and re-encoding must give the input back, so every byte
 * string has exactly one accepted form.
 */
import { type ErrorCode, KcmError } from '../../../../common/src/errors.ts';

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Padded standard base64 of `bytes`. */
export function encodeBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('base64');
}

/**
 * Decodes canonical padded base64 of exactly `size` bytes. Throws
 * `KcmError(code)` naming `what` and the expected size, never echoing the
 * input (it may be a secret key).
 */
export function decodeBase64Exact(text: unknown, size: number, what: string, code: ErrorCode): Buffer {
  const expectedChars = 4 * Math.ceil(size / 3);
  if (typeof text !== 'string' || text.length !== expectedChars || !BASE64.test(text)) {
    throw new KcmError(code, `${what} must be base64 of ${size} bytes`);
  }
  const bytes = Buffer.from(text, 'base64');
  if (bytes.length !== size || bytes.toString('base64') !== text) {
    bytes.fill(0);
    throw new KcmError(code, `${what} is not canonical base64 of ${size} bytes`);
  }
  return bytes;
}
