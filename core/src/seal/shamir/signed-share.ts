/**
 * The signed share (SPEC.md §9.1): what an operator submits to unseal. A
 * SPEC.md §6 share behind a header signed by the ceremony's Ed25519 key, which
 * names the cluster (fingerprint), the split, M, N, the index and the SHA-256
 * of the share bytes. Pure codec: bytes ↔ fields, no keys, no signature
 * checks (verify-share.ts does those).
 *
 *   binary (202 bytes): header (71) ‖ share (67) ‖ Ed25519 signature (64)
 *   text: "okcm-signed-share:1:" ‖ base64url(binary)   (290 characters)
 */
import { KcmError } from '../../../../common/src/errors.ts';
import { decodeBase64urlStrict, encodeBase64url } from '../../../../common/src/format/base64url.ts';
import { ByteReader } from '../../../../common/src/format/byte-reader.ts';
import { SHARE_BYTES, SHARE_TEXT_PREFIX, SPLIT_ID_BYTES } from '../../../../common/src/format/share.ts';
import { CLUSTER_FINGERPRINT_BYTES } from './cluster-fingerprint.ts';
import { ED25519_SIGNATURE_BYTES } from './sodium.ts';

export const SIGNED_SHARE_MAGIC = Buffer.from('okc', 'latin1');
export const SIGNED_SHARE_VERSION = 1;
const TEXT_STEM = 'okcm-signed-share:';
export const SIGNED_SHARE_TEXT_PREFIX = `${TEXT_STEM}${SIGNED_SHARE_VERSION}:`;
export const SHARE_HASH_BYTES = 32;
/** magic 3 + version 1 + fingerprint 16 + M 1 + N 1 + index 1 + split id 16 + share hash 32. */
export const SIGNED_HEADER_BYTES = 3 + 1 + CLUSTER_FINGERPRINT_BYTES + 3 + SPLIT_ID_BYTES + SHARE_HASH_BYTES;
/** header 71 + share 67 + signature 64 = 202. */
export const SIGNED_SHARE_BYTES = SIGNED_HEADER_BYTES + SHARE_BYTES + ED25519_SIGNATURE_BYTES;
/** 20 + 270 = 290: the only accepted length (after trimming surrounding white space). */
export const SIGNED_SHARE_TEXT_CHARS = SIGNED_SHARE_TEXT_PREFIX.length + Math.ceil((SIGNED_SHARE_BYTES * 4) / 3);
/** Longer input is refused before any other work (white space included). */
export const MAX_SIGNED_SHARE_INPUT_CHARS = 1024;
/** Domain separation of the Ed25519 signature: it signs SIGNATURE_CONTEXT ‖ header. */
export const SIGNATURE_CONTEXT = Buffer.from('okcm/signed-share/v1\0', 'latin1');

export interface SignedShareHeader {
  clusterFingerprint: Uint8Array;
  threshold: number;
  shareCount: number;
  index: number;
  splitId: Uint8Array;
  /** SHA-256 of the 67 share bytes that follow the header. */
  shareSha256: Uint8Array;
}

/** A parsed signed share; every field is a view of the decoded bytes. */
export interface SignedShareParts {
  header: SignedShareHeader;
  headerBytes: Uint8Array;
  shareBytes: Uint8Array;
  signature: Uint8Array;
}

function invalid(detail: string): never {
  throw new KcmError('invalid_share', detail);
}

function checkHeaderFields(h: SignedShareHeader): void {
  if (!Number.isInteger(h.threshold) || h.threshold < 2 || h.threshold > 255)
    invalid('header threshold outside 2..255');
  if (!Number.isInteger(h.shareCount) || h.shareCount < h.threshold || h.shareCount > 255) {
    invalid('header share count outside M..255');
  }
  if (!Number.isInteger(h.index) || h.index < 1 || h.index > h.shareCount) invalid('header index outside 1..N');
  if (
    h.clusterFingerprint.length !== CLUSTER_FINGERPRINT_BYTES ||
    h.splitId.length !== SPLIT_ID_BYTES ||
    h.shareSha256.length !== SHARE_HASH_BYTES
  ) {
    invalid('header field lengths');
  }
}

/** The 71 header bytes; throws `invalid_share` for out-of-range fields. */
export function encodeSignedShareHeader(h: SignedShareHeader): Buffer {
  checkHeaderFields(h);
  const out = Buffer.alloc(SIGNED_HEADER_BYTES);
  let off = SIGNED_SHARE_MAGIC.copy(out, 0);
  out[off++] = SIGNED_SHARE_VERSION;
  out.set(h.clusterFingerprint, off);
  off += CLUSTER_FINGERPRINT_BYTES;
  out[off++] = h.threshold;
  out[off++] = h.shareCount;
  out[off++] = h.index;
  out.set(h.splitId, off);
  off += SPLIT_ID_BYTES;
  out.set(h.shareSha256, off);
  return out;
}

/** The message the ceremony key signs: SIGNATURE_CONTEXT ‖ header. */
export function signatureMessage(headerBytes: Uint8Array): Buffer {
  return Buffer.concat([SIGNATURE_CONTEXT, headerBytes]);
}

/** header ‖ share ‖ signature (202 bytes); throws `invalid_share` on a wrong part length. */
export function encodeSignedShare(headerBytes: Uint8Array, shareBytes: Uint8Array, signature: Uint8Array): Buffer {
  if (
    headerBytes.length !== SIGNED_HEADER_BYTES ||
    shareBytes.length !== SHARE_BYTES ||
    signature.length !== ED25519_SIGNATURE_BYTES
  ) {
    invalid('signed share part lengths');
  }
  return Buffer.concat([headerBytes, shareBytes, signature]);
}

/**
 * Splits 202 bytes into header fields, share bytes and signature, checking
 * the length, magic, version and the ranges of M, N and the index. Does not
 * verify anything cryptographic. Throws `invalid_share`.
 */
export function decodeSignedShare(bytes: Uint8Array): SignedShareParts {
  if (bytes.length !== SIGNED_SHARE_BYTES) invalid(`signed share must be ${SIGNED_SHARE_BYTES} bytes`);
  const r = new ByteReader(bytes, 'invalid_share');
  if (Buffer.compare(r.take(3, 'magic'), SIGNED_SHARE_MAGIC) !== 0) r.fail('not a signed share');
  const version = r.u8('version');
  if (version !== SIGNED_SHARE_VERSION) r.fail(`signed share format ${version} not supported`);
  const header: SignedShareHeader = {
    clusterFingerprint: r.take(CLUSTER_FINGERPRINT_BYTES, 'cluster fingerprint'),
    threshold: r.u8('threshold'),
    shareCount: r.u8('share count'),
    index: r.u8('index'),
    splitId: r.take(SPLIT_ID_BYTES, 'split id'),
    shareSha256: r.take(SHARE_HASH_BYTES, 'share hash'),
  };
  checkHeaderFields(header);
  return {
    header,
    headerBytes: bytes.subarray(0, SIGNED_HEADER_BYTES),
    shareBytes: r.take(SHARE_BYTES, 'share'),
    signature: r.take(ED25519_SIGNATURE_BYTES, 'signature'),
  };
}

/** "okcm-signed-share:1:" + base64url(202 bytes). */
export function signedShareToText(bytes: Uint8Array): string {
  if (bytes.length !== SIGNED_SHARE_BYTES) invalid(`signed share must be ${SIGNED_SHARE_BYTES} bytes`);
  return SIGNED_SHARE_TEXT_PREFIX + encodeBase64url(bytes);
}

/**
 * The 202 bytes of a signed share's text form. Surrounding white space is
 * ignored; otherwise the text must be exactly the canonical form (prefix,
 * 290 characters, canonical unpadded base64url). The structure is not checked
 * here (see decodeSignedShare). Throws `invalid_share`, with a hint when the
 * input is a plain §6 share or a sealed payload; never echoes the input.
 */
export function signedShareFromText(text: unknown): Buffer {
  if (typeof text !== 'string') invalid('a signed share must be a string');
  if (text.length > MAX_SIGNED_SHARE_INPUT_CHARS) invalid('too long for a signed share');
  const t = text.trim();
  if (!t.startsWith(SIGNED_SHARE_TEXT_PREFIX)) {
    if (t.startsWith(SHARE_TEXT_PREFIX)) invalid(`an unsigned share is not accepted: submit the ${TEXT_STEM}… text`);
    if (t.startsWith('{')) invalid('this is a sealed payload: open it with the holder secret key first');
    if (t.startsWith(TEXT_STEM)) invalid('unsupported signed share format version');
    invalid(`must start with ${SIGNED_SHARE_TEXT_PREFIX}`);
  }
  if (t.length !== SIGNED_SHARE_TEXT_CHARS) invalid(`must be ${SIGNED_SHARE_TEXT_CHARS} characters long`);
  try {
    return decodeBase64urlStrict(t, SIGNED_SHARE_TEXT_PREFIX.length);
  } catch {
    invalid('not canonical base64url');
  }
}
