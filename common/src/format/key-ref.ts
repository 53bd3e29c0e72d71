import { KcmError } from '../errors.ts';
import type { ByteReader, ByteWriter } from './byte-reader.ts';
import { isKeyId, isKeyVersion, isTenantId, KEY_ID_MAX, TENANT_ID_MAX } from './ids.ts';

/** The layer a key belongs to (SPEC.md §3). The numbers are wire values. */
export const KeyKind = {
  master: 1,
  ivk: 2,
  tenant: 3,
  service: 4,
  data: 5,
  /** The auto-unseal data key that wraps the MasterKey (ADR-204); its key id is the region. */
  seal: 6,
} as const;
export type KeyKind = (typeof KeyKind)[keyof typeof KeyKind];
const KIND_NAMES: Record<number, string> = { 1: 'master', 2: 'ivk', 3: 'tenant', 4: 'service', 5: 'data', 6: 'seal' };

/** Names one key of the hierarchy: which layer, whose, which key, which version. */
export interface KeyRef {
  kind: KeyKind;
  /** '' for master, IVK and seal keys; the tenant id otherwise. */
  tenant: string;
  /** The key id; '' only for data (L4) keys. */
  keyId: string;
  /** 1 … 2^32−1; 0 only for data (L4) keys. */
  version: number;
}

/** Largest encoded KeyRef: kind + len + 40 + len + 64 + u32. */
export const KEY_REF_MAX_BYTES = 1 + 1 + TENANT_ID_MAX + 1 + KEY_ID_MAX + 4;

/** Throws `format_header` naming the rule a KeyRef breaks (SPEC.md §3 table). */
export function validateKeyRef(ref: KeyRef): void {
  const name = KIND_NAMES[ref.kind];
  if (!name) throw new KcmError('format_header', `unknown key kind ${ref.kind}`);
  const tenantless = ref.kind === KeyKind.master || ref.kind === KeyKind.ivk || ref.kind === KeyKind.seal;
  if (tenantless ? ref.tenant !== '' : !isTenantId(ref.tenant)) {
    throw new KcmError('format_header', `${name} key: ${tenantless ? 'tenant must be empty' : 'invalid tenant id'}`);
  }
  if (ref.kind === KeyKind.data) {
    if (ref.keyId !== '' || ref.version !== 0) {
      throw new KcmError('format_header', 'data key: key id must be empty and version 0');
    }
    return;
  }
  if (!isKeyId(ref.keyId)) throw new KcmError('format_header', `${name} key: invalid key id`);
  if (!isKeyVersion(ref.version)) throw new KcmError('format_header', `${name} key: invalid version`);
}

/** kind ‖ len ‖ tenant ‖ len ‖ key id ‖ u32 version (validated first). */
export function writeKeyRef(w: ByteWriter, ref: KeyRef): void {
  validateKeyRef(ref);
  w.u8(ref.kind).u8(ref.tenant.length).ascii(ref.tenant).u8(ref.keyId.length).ascii(ref.keyId).u32(ref.version);
}

/** Reads and validates one KeyRef. */
export function readKeyRef(r: ByteReader, what: string): KeyRef {
  const kind = r.u8(`${what} kind`) as KeyKind;
  const tenantLen = r.u8(`${what} tenant length`);
  if (tenantLen > TENANT_ID_MAX) r.fail(`${what} tenant length ${tenantLen} > ${TENANT_ID_MAX}`);
  const tenant = r.latin1(tenantLen, `${what} tenant`);
  const keyIdLen = r.u8(`${what} key id length`);
  if (keyIdLen > KEY_ID_MAX) r.fail(`${what} key id length ${keyIdLen} > ${KEY_ID_MAX}`);
  const keyId = r.latin1(keyIdLen, `${what} key id`);
  const version = r.u32(`${what} version`);
  const ref: KeyRef = { kind, tenant, keyId, version };
  validateKeyRef(ref);
  return ref;
}
