/**
 * Shamir share framing (SPEC.md §6): a raw point (x, y) from the native split
 * plus what lets an operator's share be checked before use — the split it
 * belongs to, the threshold, a key check value and a checksum that catches
 * typos and corruption. Pure codec, no keys.
 *
 *   text form: "okcm-share:1:" base64url(67 bytes)
 */
import { createHash } from 'node:crypto';
import { KcmError } from '../errors.ts';
import { decodeBase64urlStrict, encodeBase64url } from './base64url.ts';
import { ByteReader } from './byte-reader.ts';

export const SHARE_TEXT_PREFIX = 'okcm-share:1:';
export const SHARE_MAGIC = Buffer.from('oks', 'latin1');
export const SHARE_FORMAT_VERSION = 1;
export const SPLIT_ID_BYTES = 16;
export const SHARE_KCV_BYTES = 8;
export const SHARE_Y_BYTES = 32;
const CHECKSUM_BYTES = 4;
/** magic 3 + version 1 + M 1 + N 1 + x 1 + split id 16 + kcv 8 + y 32 + checksum 4. */
export const SHARE_BYTES = 3 + 1 + 1 + 1 + 1 + SPLIT_ID_BYTES + SHARE_KCV_BYTES + SHARE_Y_BYTES + CHECKSUM_BYTES;

export interface Share {
  threshold: number;
  total: number;
  /** x coordinate, 1 … total. */
  index: number;
  splitId: Uint8Array;
  /** First 8 bytes of HMAC-SHA-256(key, "okcm/shamir-kcv/v1\0" ‖ split id). */
  kcv: Uint8Array;
  /** y coordinate: 32 bytes, secret. */
  y: Uint8Array;
}

function checksum(bytes: Uint8Array): Buffer {
  return createHash('sha256').update(bytes).digest().subarray(0, CHECKSUM_BYTES);
}

/** Validates M, N, x and field lengths; throws `invalid_share`. */
function checkShareFields(s: Share): void {
  if (!Number.isInteger(s.threshold) || s.threshold < 2 || s.threshold > 255) {
    throw new KcmError('invalid_share', `threshold ${s.threshold} outside 2..255`);
  }
  if (!Number.isInteger(s.total) || s.total < s.threshold || s.total > 255) {
    throw new KcmError('invalid_share', `share count ${s.total} outside ${s.threshold}..255`);
  }
  if (!Number.isInteger(s.index) || s.index < 1 || s.index > s.total) {
    throw new KcmError('invalid_share', `index ${s.index} outside 1..${s.total}`);
  }
  if (s.splitId.length !== SPLIT_ID_BYTES || s.kcv.length !== SHARE_KCV_BYTES || s.y.length !== SHARE_Y_BYTES) {
    throw new KcmError('invalid_share', 'field lengths');
  }
}

/** The 67 share bytes. */
export function encodeShare(s: Share): Buffer {
  checkShareFields(s);
  const out = Buffer.alloc(SHARE_BYTES);
  let off = SHARE_MAGIC.copy(out, 0);
  out[off++] = SHARE_FORMAT_VERSION;
  out[off++] = s.threshold;
  out[off++] = s.total;
  out[off++] = s.index;
  out.set(s.splitId, off);
  off += SPLIT_ID_BYTES;
  out.set(s.kcv, off);
  off += SHARE_KCV_BYTES;
  out.set(s.y, off);
  off += SHARE_Y_BYTES;
  checksum(out.subarray(0, off)).copy(out, off);
  return out;
}

/** Parses 67 share bytes, verifying magic, version, checksum and fields; throws `invalid_share`. */
export function decodeShare(bytes: Uint8Array): Share {
  if (bytes.length !== SHARE_BYTES) throw new KcmError('invalid_share', `must be ${SHARE_BYTES} bytes`);
  const body = bytes.subarray(0, SHARE_BYTES - CHECKSUM_BYTES);
  if (Buffer.compare(checksum(body), bytes.subarray(SHARE_BYTES - CHECKSUM_BYTES)) !== 0) {
    throw new KcmError('invalid_share', 'checksum mismatch (share corrupted or mistyped)');
  }
  const r = new ByteReader(body, 'invalid_share');
  if (Buffer.compare(r.take(3, 'magic'), SHARE_MAGIC) !== 0) r.fail('not a share');
  const version = r.u8('version');
  if (version !== SHARE_FORMAT_VERSION) r.fail(`share format ${version} not supported`);
  const share: Share = {
    threshold: r.u8('threshold'),
    total: r.u8('share count'),
    index: r.u8('index'),
    splitId: r.take(SPLIT_ID_BYTES, 'split id'),
    kcv: r.take(SHARE_KCV_BYTES, 'key check value'),
    y: r.take(SHARE_Y_BYTES, 'y'),
  };
  checkShareFields(share);
  return share;
}

/** "okcm-share:1:" + base64url(share bytes). */
export function shareToText(s: Share): string {
  return SHARE_TEXT_PREFIX + encodeBase64url(encodeShare(s));
}

/** Parses the text form (surrounding white space ignored); throws `invalid_share`. */
export function shareFromText(text: string): Share {
  const t = typeof text === 'string' ? text.trim() : '';
  if (!t.startsWith(SHARE_TEXT_PREFIX)) throw new KcmError('invalid_share', `must start with ${SHARE_TEXT_PREFIX}`);
  let bytes: Buffer;
  try {
    bytes = decodeBase64urlStrict(t, SHARE_TEXT_PREFIX.length);
  } catch {
    throw new KcmError('invalid_share', 'not base64url');
  }
  return decodeShare(bytes);
}
