/**
 * The IVK head: SHA-256("okcm/ivk-head/v1\0" ‖ "v:state;" for each version in
 * ascending order), kept in the MAC'd cluster record and rewritten in the same
 * transaction as every rotation, state change and deletion. Per-row MACs stop
 * a forged row; the head also stops a deleted row or an older, validly MAC'd
 * copy of a row being put back (a retired key made ACTIVE again).
 */
import { createHash } from 'node:crypto';
import type { IvkRecord } from '../store/records.ts';

export function ivkDigest(records: readonly Pick<IvkRecord, 'version' | 'state'>[]): Buffer {
  const h = createHash('sha256').update('okcm/ivk-head/v1\0');
  for (const r of [...records].sort((a, b) => a.version - b.version)) h.update(`${r.version}:${r.state};`);
  return h.digest();
}
