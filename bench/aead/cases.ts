/**
 * The cases of the AEAD benchmark and the contestants of each.
 *
 * Contract:
 *  - Cases: one message of 64 B, 1 KB, 16 KB, and a batch of 16 fields of
 *    64 B. Every AAD is 32 bytes. Inputs are random and fixed per case; every
 *    contestant of a case seals the same inputs.
 *  - An op is one message for single-message cases and one whole batch (16
 *    fields) for the batch case; {@link Entry.messagesPerOp} converts.
 *  - {@link buildCase} returns the entries of one case; native entries are
 *    left out when `ctx.native` is null, openssl when `ctx.openssl` is null.
 *    Call {@link Entry.verify} of every entry before timing it.
 */
import { randomBytes } from 'node:crypto';
import type sodiumNs from 'libsodium-wrappers';
import type { KeyHandle } from '../../native/index.ts';
import {
  handGcm,
  handleEnvelope,
  handleSeal,
  handleSealBatch,
  handleSealEach,
  handleSealInto,
  type Sealer,
  sodiumAead,
} from './contestants.ts';
import { loopTimer, type Timed } from './measure.ts';
import { type OpensslOptions, opensslTimer } from './openssl-speed.ts';

/** What a row is, for ratios and targets. */
export type Role =
  | 'native'
  | 'native-into'
  | 'native-batch'
  | 'native-envelope'
  | 'native-each'
  | 'node-crypto'
  | 'node-face'
  | 'libsodium'
  | 'openssl';

export interface CaseDef {
  id: string;
  label: string;
  /** Plaintext bytes per message. */
  bytes: number;
  /** Messages per op: 1, or the batch size. */
  fields: number;
}

export const AAD_BYTES = 32;
export const BATCH = 16;

export const CASES: readonly CaseDef[] = [
  { id: '64B', label: '64 B', bytes: 64, fields: 1 },
  { id: '1KB', label: '1 KB', bytes: 1024, fields: 1 },
  { id: '16KB', label: '16 KB', bytes: 16384, fields: 1 },
  { id: 'batch16x64B', label: `batch ${BATCH} × 64 B`, bytes: 64, fields: BATCH },
];

export interface Entry {
  role: Role;
  /** Row label. */
  name: string;
  /** What one op costs in calls, for the table (e.g. "1 call", "16 calls"). */
  calls: string;
  messagesPerOp: number;
  timed: Timed;
  /** Correctness guard; throws when the output does not decrypt back. */
  verify: () => void;
}

export interface CaseContext {
  /** AES key bytes shared by every AES contestant (so outputs can be checked independently). */
  keyBytes: Buffer;
  /** That key imported into the native backend, or null when native is unavailable. */
  native: KeyHandle | null;
  /** That key imported into the face's node backend. */
  nodeFace: KeyHandle;
  sodium: typeof sodiumNs;
  sodiumKey: Uint8Array;
  /** openssl speed settings (bytes is set per case), or null when openssl is unavailable. */
  openssl: Omit<OpensslOptions, 'bytes'> | null;
}

function entry(role: Role, name: string, calls: string, messagesPerOp: number, s: Sealer): Entry {
  return { role, name, calls, messagesPerOp, timed: loopTimer(name, s.op), verify: s.verify };
}

/** The contestants of one case, in interleaving order. */
export function buildCase(def: CaseDef, ctx: CaseContext): Entry[] {
  const pts = Array.from({ length: def.fields }, () => randomBytes(def.bytes));
  const aads = Array.from({ length: def.fields }, () => randomBytes(AAD_BYTES));
  const { keyBytes, native, nodeFace, sodium, sodiumKey } = ctx;
  const out: Entry[] = [];
  const n = def.fields;
  if (def.fields === 1) {
    const pt = pts[0] as Buffer;
    const aad = aads[0] as Buffer;
    if (native) out.push(entry('native', 'native seal', '1 call', 1, handleSeal(native, keyBytes, pt, aad)));
    if (native) {
      out.push(
        entry('native-into', 'native sealInto (reused output)', '1 call', 1, handleSealInto(native, keyBytes, pt, aad)),
      );
    }
    out.push(entry('node-crypto', 'node:crypto by hand', '1 call', 1, handGcm(keyBytes, pts, aads)));
    out.push(entry('node-face', 'face node backend seal', '1 call', 1, handleSeal(nodeFace, keyBytes, pt, aad)));
    out.push(entry('libsodium', 'libsodium XChaCha20-Poly1305', '1 call', 1, sodiumAead(sodium, sodiumKey, pts, aads)));
    if (ctx.openssl) {
      const name = 'openssl speed (bulk EVP)';
      const timed = opensslTimer(name, { ...ctx.openssl, bytes: def.bytes });
      out.push({ role: 'openssl', name, calls: 'n/a', messagesPerOp: 1, timed, verify: () => {} });
    }
    return out;
  }
  if (native) {
    out.push(entry('native-batch', 'native sealBatch', '1 call', n, handleSealBatch(native, keyBytes, pts, aads)));
    const wrapAad = randomBytes(AAD_BYTES);
    out.push(
      entry(
        'native-envelope',
        'native envelope batch',
        '1 call',
        n,
        handleEnvelope(native, keyBytes, wrapAad, pts, aads),
      ),
    );
    out.push(
      entry('native-each', 'native seal per field', `${n} calls`, n, handleSealEach(native, keyBytes, pts, aads)),
    );
  }
  out.push(entry('node-crypto', 'node:crypto by hand', `${n} calls`, n, handGcm(keyBytes, pts, aads)));
  out.push(
    entry(
      'node-face',
      'face node backend sealBatch',
      `1 (${n} inside)`,
      n,
      handleSealBatch(nodeFace, keyBytes, pts, aads),
    ),
  );
  out.push(
    entry('libsodium', 'libsodium XChaCha20-Poly1305', `${n} calls`, n, sodiumAead(sodium, sodiumKey, pts, aads)),
  );
  return out;
}
