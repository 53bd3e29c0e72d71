/**
 * Edge lease transport (SPEC.md "Edge lease transport"): how an L3 key crosses
 * from the Core to an edge without its bytes ever leaving the native module.
 *
 * Both ends of one TLS connection export the same 32 bytes with RFC 5705/8446
 * keying-material export (label {@link LEASE_EXPORTER_LABEL}, context
 * {@link LEASE_EXPORTER_CONTEXT}) and import them as the session transport key.
 * Each lease derives its own key from it with HKDF-SHA-256 (RFC 5869): a random
 * 16-byte salt sent in the lease response, info = {@link leaseKeyInfo} naming
 * the edge, tenant and service. Each L3 version is wrapped under that lease key
 * with AAD {@link leaseWrapAad} naming the L3 key. A lease replayed on another
 * TLS connection (other exported secret), for another edge/tenant/service
 * (other info) or relabelled to another version (other AAD) fails to unwrap.
 *
 * Shared by the Core (core/src/edge/) and the edge client (gateway/src/keys/).
 */
import type { Crypto, KeyHandle } from '../../../native/index.ts';
import { KcmError } from '../errors.ts';
import { ByteWriter } from '../format/byte-reader.ts';
import { KEY_REF_MAX_BYTES, KeyKind, type KeyRef, writeKeyRef } from '../format/key-ref.ts';

/** RFC 5705 exporter label; RFC 8446 §7.5 requires the "EXPORTER-" prefix for private labels. */
export const LEASE_EXPORTER_LABEL = 'EXPORTER-okcm-lease-v1';
/** Exporter context: fixed, so both ends derive the same value from the connection alone. */
export const LEASE_EXPORTER_CONTEXT = Buffer.from('okcm/edge-lease/v1', 'latin1');
/** Bytes of the per-lease HKDF salt. */
export const LEASE_SALT_BYTES = 16;
/** Longest edge id bound into the lease info. */
export const EDGE_ID_MAX = 256;

const INFO_DOMAIN = Buffer.from('okcm/edge-lease/v1\0', 'latin1');
const AAD_DOMAIN = Buffer.from('okcm/lease-wrap/v1\0', 'latin1');

/** The part of a TLS socket this module needs (node:tls TLSSocket, or the http2 session's socket proxy). */
export interface KeyingMaterialSource {
  exportKeyingMaterial(length: number, label: string, context: Buffer): Buffer;
}

/**
 * Imports the connection's exported keying material as the session transport
 * key. The exported buffer is zeroed by `importKey`. Throws KcmError
 * `internal_error` when the socket cannot export (not TLS, or not yet secure).
 */
export function sessionTransportKey(crypto: Crypto, socket: KeyingMaterialSource): KeyHandle {
  let secret: Buffer;
  try {
    secret = socket.exportKeyingMaterial(32, LEASE_EXPORTER_LABEL, LEASE_EXPORTER_CONTEXT);
  } catch {
    throw new KcmError('internal_error', 'the TLS connection cannot export keying material');
  }
  try {
    return crypto.importKey(secret);
  } finally {
    secret.fill(0);
  }
}

/** The L3 service key as a KeyRef (same as core/src/keys/key-names.ts l3Ref). */
export function leaseL3Ref(tenant: string, service: string, version: number): KeyRef {
  return { kind: KeyKind.service, tenant, keyId: service, version };
}

/**
 * HKDF info of a lease key: "okcm/edge-lease/v1\0" ‖ u16be len ‖ edge id ‖ u8 len ‖ tenant ‖ u8 len ‖ service.
 * Throws `bad_request` when the edge id is empty, longer than {@link EDGE_ID_MAX} UTF-8 bytes.
 */
export function leaseKeyInfo(edgeId: string, tenant: string, service: string): Buffer {
  const id = Buffer.from(edgeId, 'utf8');
  if (id.length === 0 || id.length > EDGE_ID_MAX) throw new KcmError('bad_request', 'edge id length');
  const t = Buffer.from(tenant, 'latin1');
  const s = Buffer.from(service, 'latin1');
  const out = Buffer.allocUnsafe(INFO_DOMAIN.length + 2 + id.length + 1 + t.length + 1 + s.length);
  let off = INFO_DOMAIN.copy(out, 0);
  off = out.writeUInt16BE(id.length, off);
  off += id.copy(out, off);
  off = out.writeUInt8(t.length, off);
  off += t.copy(out, off);
  off = out.writeUInt8(s.length, off);
  s.copy(out, off);
  return out;
}

/** AAD of one wrapped L3 version: "okcm/lease-wrap/v1\0" ‖ KeyRef(L3) (validated: throws `format_header`). */
export function leaseWrapAad(tenant: string, service: string, version: number): Buffer {
  const w = new ByteWriter(AAD_DOMAIN.length + KEY_REF_MAX_BYTES);
  w.bytes(AAD_DOMAIN);
  writeKeyRef(w, leaseL3Ref(tenant, service, version));
  return w.finish();
}

/** The per-lease key: HKDF-SHA-256(session key, salt, info). The caller destroys it after use. */
export function leaseKey(
  session: KeyHandle,
  salt: Uint8Array,
  edgeId: string,
  tenant: string,
  service: string,
): KeyHandle {
  if (salt.length !== LEASE_SALT_BYTES)
    throw new KcmError('bad_request', `lease salt must be ${LEASE_SALT_BYTES} bytes`);
  return session.derive(salt, leaseKeyInfo(edgeId, tenant, service));
}
