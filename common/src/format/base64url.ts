import { KcmError } from '../errors.ts';

const ALPHABET = /^[A-Za-z0-9_-]*$/;
const INDEX = new Int8Array(128).fill(-1);
for (const [i, c] of [...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'].entries()) {
  INDEX[c.charCodeAt(0)] = i;
}

/** Unpadded base64url (RFC 4648 §5). */
export function encodeBase64url(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('base64url');
}

/**
 * Strict, canonical unpadded base64url decode: only `A-Z a-z 0-9 - _`, no
 * padding or white space, length mod 4 ≠ 1, and the unused low bits of the
 * last character are zero — so every byte string has exactly one encoding
 * (no ciphertext malleability through the text form). Throws
 * `KcmError('format_encoding')`.
 */
export function decodeBase64urlStrict(text: string, start = 0): Buffer {
  const len = text.length - start;
  const rem = len % 4;
  if (rem === 1) throw new KcmError('format_encoding', 'impossible base64url length');
  if (!ALPHABET.test(start === 0 ? text : text.slice(start))) {
    throw new KcmError('format_encoding', 'character outside the base64url alphabet');
  }
  if (rem !== 0) {
    const last = INDEX[text.charCodeAt(text.length - 1)] as number;
    const unusedMask = rem === 2 ? 0x0f : 0x03;
    if ((last & unusedMask) !== 0) throw new KcmError('format_encoding', 'non-canonical final character');
  }
  return Buffer.from(start === 0 ? text : text.slice(start), 'base64url');
}
