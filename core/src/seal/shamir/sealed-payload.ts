/**
 * The sealed-share payload (SPEC.md §9.2): the document a holder receives when
 * the ceremony seals each signed share to the holder's X25519 key. One line of
 * JSON with a fixed key order and no white space:
 *
 *   {"format":"okcm-sealed-share/1","clusterId":"…","index":1,
 *    "holderPublicKey":"<base64, 32 bytes>","sealed":"<base64, 250 bytes>"}
 *
 * `sealed` = crypto_box_seal(signed share bytes (202), holder public key).
 * Pure codec. Decoding is strict: the trimmed input must be exactly the
 * canonical serialisation of its own fields, so one payload has one byte form
 * and its SHA-256 (listed in the ceremony manifest) is stable.
 */
import { KcmError } from '../../../../common/src/errors.ts';
import { isKeyId } from '../../../../common/src/format/ids.ts';
import { decodeBase64Exact, encodeBase64 } from './base64.ts';
import { SIGNED_SHARE_BYTES } from './signed-share.ts';
import { SEALED_BOX_OVERHEAD, X25519_KEY_BYTES } from './sodium.ts';

export const SEALED_SHARE_FORMAT = 'okcm-sealed-share/1';
/** crypto_box_seal of the 202-byte signed share. */
export const SEALED_SHARE_BYTES = SIGNED_SHARE_BYTES + SEALED_BOX_OVERHEAD;
/** Input longer than this is refused before parsing (a canonical payload is under 600 characters). */
export const MAX_SEALED_PAYLOAD_CHARS = 2048;

export interface SealedSharePayload {
  clusterId: string;
  /** Share index (1 … 255); the signed header inside carries the authoritative one. */
  index: number;
  /** X25519 public key the share is sealed to. */
  holderPublicKey: Uint8Array;
  /** crypto_box_seal output, 250 bytes. */
  sealed: Uint8Array;
}

const KEYS = ['format', 'clusterId', 'index', 'holderPublicKey', 'sealed'] as const;

function invalid(detail: string): never {
  throw new KcmError('invalid_share', detail);
}

function checkFields(p: SealedSharePayload): void {
  if (typeof p.clusterId !== 'string' || !isKeyId(p.clusterId)) invalid('sealed payload: invalid clusterId');
  if (!Number.isInteger(p.index) || p.index < 1 || p.index > 255) invalid('sealed payload: index outside 1..255');
  if (p.holderPublicKey.length !== X25519_KEY_BYTES) invalid('sealed payload: holder public key length');
  if (p.sealed.length !== SEALED_SHARE_BYTES) invalid('sealed payload: sealed length');
}

/** The canonical JSON text (no trailing newline). Throws `invalid_share` for invalid fields. */
export function encodeSealedPayload(p: SealedSharePayload): string {
  checkFields(p);
  return JSON.stringify({
    format: SEALED_SHARE_FORMAT,
    clusterId: p.clusterId,
    index: p.index,
    holderPublicKey: encodeBase64(p.holderPublicKey),
    sealed: encodeBase64(p.sealed),
  });
}

/**
 * Parses a payload (surrounding white space ignored). Throws `invalid_share`
 * for: too long, not JSON, not an object with exactly the five keys, another
 * format, invalid fields, or any byte form other than the canonical one.
 */
export function decodeSealedPayload(text: unknown): SealedSharePayload {
  if (typeof text !== 'string') invalid('sealed payload must be a string');
  if (text.length > MAX_SEALED_PAYLOAD_CHARS) invalid('too long for a sealed payload');
  const t = text.trim();
  let doc: unknown;
  try {
    doc = JSON.parse(t);
  } catch {
    invalid('sealed payload is not JSON');
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) invalid('sealed payload is not a JSON object');
  const o = doc as Record<string, unknown>;
  const keys = Object.keys(o);
  if (keys.length !== KEYS.length || !KEYS.every((k) => keys.includes(k))) {
    invalid(`sealed payload must have exactly the keys ${KEYS.join(', ')}`);
  }
  if (o.format !== SEALED_SHARE_FORMAT) invalid(`sealed payload format must be ${SEALED_SHARE_FORMAT}`);
  if (typeof o.index !== 'number') invalid('sealed payload: index must be a number');
  const p: SealedSharePayload = {
    clusterId: typeof o.clusterId === 'string' ? o.clusterId : invalid('sealed payload: clusterId must be a string'),
    index: o.index,
    holderPublicKey: decodeBase64Exact(o.holderPublicKey, X25519_KEY_BYTES, 'holderPublicKey', 'invalid_share'),
    sealed: decodeBase64Exact(o.sealed, SEALED_SHARE_BYTES, 'sealed', 'invalid_share'),
  };
  checkFields(p);
  if (encodeSealedPayload(p) !== t) invalid('sealed payload is not in canonical form (was it edited?)');
  return p;
}
