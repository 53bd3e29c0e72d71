/**
 * The stored form of a sovereign binding (L2Record.wrappedSovereign): the L1
 * provider's encrypted data key plus the L2 key wrapped under that data key.
 * Pure codec, no keys, no I/O. Layout (all lengths u32 big-endian, checked
 * against their bounds before slicing):
 *
 *   "oks" ‖ u8 version (1) ‖ len ‖ provider key id (UTF-8) ‖ len ‖ provider key version
 *   ‖ len ‖ provider ciphertext ‖ wrapped-key blob (SPEC.md §4, the rest)
 *
 * Throws KcmError `format_prefix`, `format_version`, `format_header` or
 * `format_length` like the other codecs.
 */
import { KcmError } from '../../../common/src/errors.ts';
import { ByteReader, ByteWriter } from '../../../common/src/format/byte-reader.ts';
import { decodeWrappedKey, type WrappedKeyBlob } from '../../../common/src/format/wrapped-key.ts';
import type { EncryptedDataKey } from '../seal/seal-provider.ts';
import { L1_KEY_ID_MAX } from './l1-registry.ts';

const MAGIC = Buffer.from('oks', 'latin1');
export const SOVEREIGN_BLOB_VERSION = 1;
const MAX_KEY_VERSION = 256;
/** AWS KMS's largest CiphertextBlob. */
const MAX_CIPHERTEXT = 6144;

export interface SovereignBlob {
  dataKey: EncryptedDataKey;
  /** Encoded wrapped-key blob of the L2 under the data key. */
  wrappedL2: Buffer;
}

export function encodeSovereignBlob(b: SovereignBlob): Buffer {
  const keyId = Buffer.from(b.dataKey.keyId, 'utf8');
  const keyVersion = Buffer.from(b.dataKey.keyVersion, 'utf8');
  const ct = b.dataKey.ciphertext;
  if (keyId.length > L1_KEY_ID_MAX || keyVersion.length > MAX_KEY_VERSION || ct.length > MAX_CIPHERTEXT) {
    throw new KcmError('format_header', 'sovereign binding field too long');
  }
  const w = new ByteWriter(4 + 12 + keyId.length + keyVersion.length + ct.length + b.wrappedL2.length);
  w.bytes(MAGIC).u8(SOVEREIGN_BLOB_VERSION);
  for (const part of [keyId, keyVersion, ct]) w.u32(part.length).bytes(part);
  w.bytes(b.wrappedL2);
  return Buffer.from(w.finish());
}

export function decodeSovereignBlob(bytes: Uint8Array): SovereignBlob & { wrapped: WrappedKeyBlob } {
  const r = new ByteReader(bytes);
  const magic = r.take(Math.min(3, bytes.length), 'magic');
  if (magic.length !== 3 || Buffer.compare(magic, MAGIC) !== 0) {
    throw new KcmError('format_prefix', 'not a sovereign binding');
  }
  const version = r.u8('version');
  if (version !== SOVEREIGN_BLOB_VERSION) throw new KcmError('format_version', `sovereign binding v${version}`);
  const field = (max: number, what: string): Buffer => {
    const n = r.u32(`${what} length`);
    if (n > max) r.fail(`${what} length ${n} > ${max}`);
    return Buffer.from(r.take(n, what));
  };
  const keyId = field(L1_KEY_ID_MAX, 'key id').toString('utf8');
  const keyVersion = field(MAX_KEY_VERSION, 'key version').toString('utf8');
  const ciphertext = field(MAX_CIPHERTEXT, 'ciphertext');
  const wrappedL2 = Buffer.from(r.rest());
  return { dataKey: { keyId, keyVersion, ciphertext }, wrappedL2, wrapped: decodeWrappedKey(wrappedL2) };
}
