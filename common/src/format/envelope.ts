/**
 * The field ciphertext envelope (SPEC.md §5): a self-describing string
 *
 *   "okcm:" version ":" base64url( alg ‖ tenant ‖ key id ‖ L3 version ‖ wrapped L4 ‖ nonce ‖ ct ‖ tag )
 *
 * Pure codec: bytes ↔ typed values, no keys, no I/O. Parsing is strict and
 * bounded, in the fixed order prefix → version → encoding → header → lengths,
 * and every failure is a KcmError with a `format_*` code.
 */
import { KcmError } from '../errors.ts';
import { decodeBase64urlStrict, encodeBase64url } from './base64url.ts';
import { ByteReader, ByteWriter } from './byte-reader.ts';
import { KEY_ID_MAX, TENANT_ID_MAX } from './ids.ts';
import { KeyKind, type KeyRef, validateKeyRef } from './key-ref.ts';
import { WRAPPED_KEY_SEALED_BYTES, wrapAad } from './wrapped-key.ts';

export const ENVELOPE_PREFIX = 'okcm:';
export const ENVELOPE_VERSION = 1;
/** Algorithm 1: L4 data key wrapped by the L3 key with AES-256-GCM; field sealed with AES-256-GCM under L4. */
export const FIELD_ALG_AES256GCM = 1;
export const NONCE_BYTES = 12;
export const TAG_BYTES = 16;
/** Largest plaintext one field may hold: 1 MiB. */
export const MAX_FIELD_PLAINTEXT = 1 << 20;
/** Largest context bound into a field's AAD. */
export const MAX_CONTEXT_BYTES = 4096;
/** Header: alg + tenant + key id + version, at most. */
export const MAX_HEADER_BYTES = 1 + 1 + TENANT_ID_MAX + 1 + KEY_ID_MAX + 4;
/** Smallest body: header with 1-char ids, wrapped key, nonce, tag, empty ciphertext. */
export const MIN_BODY_BYTES = 1 + 2 + 2 + 4 + WRAPPED_KEY_SEALED_BYTES + NONCE_BYTES + TAG_BYTES;
export const MAX_BODY_BYTES =
  MAX_HEADER_BYTES + WRAPPED_KEY_SEALED_BYTES + NONCE_BYTES + MAX_FIELD_PLAINTEXT + TAG_BYTES;
const PREFIX_V1 = `${ENVELOPE_PREFIX}${ENVELOPE_VERSION}:`;
/** Longest valid envelope string, checked before any decoding. */
export const MAX_ENVELOPE_CHARS = PREFIX_V1.length + Math.ceil((MAX_BODY_BYTES * 4) / 3);

const FIELD_DOMAIN = Buffer.from('okcm/field/v1\0', 'latin1');

/** Which L3 key version a field is encrypted under. */
export interface FieldKeyRef {
  tenant: string;
  keyId: string;
  keyVersion: number;
}

export interface FieldEnvelope extends FieldKeyRef {
  alg: typeof FIELD_ALG_AES256GCM;
  /** The header bytes as they appear in the body (bound into the field AAD). */
  header: Uint8Array;
  /** The L4 data key sealed under the L3 key: 60 bytes. */
  wrappedKey: Uint8Array;
  /** nonce ‖ ciphertext ‖ tag of the field under the L4 key. */
  sealed: Uint8Array;
}

/** The L3 KeyRef a field names. */
export function serviceKeyRef(ref: FieldKeyRef): KeyRef {
  return { kind: KeyKind.service, tenant: ref.tenant, keyId: ref.keyId, version: ref.keyVersion };
}

/** Encodes alg ‖ tenant ‖ key id ‖ version after validating them (throws `format_header`). */
export function encodeFieldHeader(ref: FieldKeyRef): Buffer {
  validateKeyRef(serviceKeyRef(ref));
  const w = new ByteWriter(MAX_HEADER_BYTES);
  w.u8(FIELD_ALG_AES256GCM).u8(ref.tenant.length).ascii(ref.tenant).u8(ref.keyId.length).ascii(ref.keyId);
  w.u32(ref.keyVersion);
  return Buffer.from(w.finish());
}

/** AAD of the L4 data key wrap: wrapAad(L3 ref, {data, tenant, '', 0}). */
export function dataKeyWrapAad(ref: FieldKeyRef): Buffer {
  return wrapAad(serviceKeyRef(ref), { kind: KeyKind.data, tenant: ref.tenant, keyId: '', version: 0 });
}

/** What every field AAD under `header` starts with, before the context's length: "okcm/field/v1\0" ‖ header (see fieldAad). */
export function fieldAadHead(header: Uint8Array): Buffer {
  return Buffer.concat([FIELD_DOMAIN, header]);
}

/** The envelope text's first characters ("okcm:1:"), as bytes: what serializeEnvelope writes before the base64url. */
export const ENVELOPE_TEXT_HEAD: Readonly<Buffer> = Buffer.from(PREFIX_V1, 'latin1');

/** AAD of a field: "okcm/field/v1\0" ‖ header ‖ u32be(len(context)) ‖ context. Throws `invalid_context` past 4 KiB. */
export function fieldAad(header: Uint8Array, context: Uint8Array): Buffer {
  if (context.length > MAX_CONTEXT_BYTES) {
    throw new KcmError('invalid_context', `context longer than ${MAX_CONTEXT_BYTES} bytes`);
  }
  const out = Buffer.allocUnsafe(FIELD_DOMAIN.length + header.length + 4 + context.length);
  let off = FIELD_DOMAIN.copy(out, 0);
  out.set(header, off);
  off += header.length;
  off = out.writeUInt32BE(context.length, off);
  out.set(context, off);
  return out;
}

/** Builds the string from a header (from encodeFieldHeader), the wrapped L4 key and the sealed field. */
export function serializeEnvelope(header: Uint8Array, wrappedKey: Uint8Array, sealed: Uint8Array): string {
  if (wrappedKey.length !== WRAPPED_KEY_SEALED_BYTES) {
    throw new KcmError('format_header', `wrapped key must be ${WRAPPED_KEY_SEALED_BYTES} bytes`);
  }
  if (sealed.length < NONCE_BYTES + TAG_BYTES || sealed.length > NONCE_BYTES + MAX_FIELD_PLAINTEXT + TAG_BYTES) {
    throw new KcmError('format_length', 'sealed field has an impossible length');
  }
  const body = Buffer.allocUnsafe(header.length + wrappedKey.length + sealed.length);
  body.set(header, 0);
  body.set(wrappedKey, header.length);
  body.set(sealed, header.length + wrappedKey.length);
  return PREFIX_V1 + encodeBase64url(body);
}

/** Reads the version number between "okcm:" and the next ":" (1–3 digits, no leading zero). */
function readVersion(text: string): { version: number; bodyStart: number } {
  if (!text.startsWith(ENVELOPE_PREFIX)) throw new KcmError('format_prefix');
  const colon = text.indexOf(':', ENVELOPE_PREFIX.length);
  const digits = colon < 0 ? '' : text.slice(ENVELOPE_PREFIX.length, colon);
  if (!/^[1-9][0-9]{0,2}$/.test(digits)) throw new KcmError('format_version', 'missing or malformed version');
  return { version: Number(digits), bodyStart: colon + 1 };
}

/**
 * Parses an envelope string. Order: type/length cap → prefix → version →
 * base64url → alg → tenant → key id → version → wrapped key → nonce/ct/tag.
 * Throws KcmError: `format_prefix`, `format_version` (any version but 1),
 * `format_encoding`, `format_header`, `format_length`.
 */
export function parseEnvelope(text: string): FieldEnvelope {
  if (typeof text !== 'string') throw new KcmError('format_prefix', 'not a string');
  if (text.length > MAX_ENVELOPE_CHARS) throw new KcmError('format_encoding', 'ciphertext too long');
  const { version, bodyStart } = readVersion(text);
  if (version !== ENVELOPE_VERSION) {
    throw new KcmError('format_version', `version ${version} not supported (this build reads ${ENVELOPE_VERSION})`);
  }
  const body = decodeBase64urlStrict(text, bodyStart);
  if (body.length < MIN_BODY_BYTES) throw new KcmError('format_length', 'ciphertext too short');
  const r = new ByteReader(body);
  const alg = r.u8('algorithm');
  if (alg !== FIELD_ALG_AES256GCM) r.fail(`unknown algorithm ${alg}`);
  const tenantLen = r.u8('tenant length');
  if (tenantLen > TENANT_ID_MAX) r.fail(`tenant length ${tenantLen} > ${TENANT_ID_MAX}`);
  const tenant = r.latin1(tenantLen, 'tenant');
  const keyIdLen = r.u8('key id length');
  if (keyIdLen > KEY_ID_MAX) r.fail(`key id length ${keyIdLen} > ${KEY_ID_MAX}`);
  const keyId = r.latin1(keyIdLen, 'key id');
  const keyVersion = r.u32('key version');
  validateKeyRef({ kind: KeyKind.service, tenant, keyId, version: keyVersion });
  const header = body.subarray(0, r.position);
  const wrappedKey = r.take(WRAPPED_KEY_SEALED_BYTES, 'wrapped key');
  if (r.remaining < NONCE_BYTES + TAG_BYTES) throw new KcmError('format_length', 'missing nonce or tag');
  if (r.remaining > NONCE_BYTES + MAX_FIELD_PLAINTEXT + TAG_BYTES)
    throw new KcmError('format_length', 'ciphertext over 1 MiB');
  return { alg: FIELD_ALG_AES256GCM, tenant, keyId, keyVersion, header, wrappedKey, sealed: r.rest() };
}
