/**
 * Record integrity (ADR-304/403): every stored record carries
 * HMAC-SHA-256(K_mac, canonical(record)), K_mac = HKDF(MasterKey,
 * info "okcm/record-mac/v1"). Without the MasterKey nobody can forge a row;
 * a row copied to another key (another IVK version, another tenant) fails,
 * because the canonical form includes the table and every field.
 *
 * canonical = "okcm/record/v1\0" ‖ table ‖ 00 ‖ for each field in a fixed order:
 *   tag (1 byte: 0 null, 1 string, 2 integer, 3 bytes) ‖ u32 length ‖ bytes
 * (integers as decimal ASCII, so any safe integer is exact).
 */
import { timingSafeEqual } from 'node:crypto';
import type { KeyHandle } from '../../../native/index.ts';
import type {
  ApprovalRecord,
  ClusterRecord,
  EdgeRecord,
  IvkRecord,
  KeyEventRecord,
  L2Record,
  L3Record,
  L3ServiceRecord,
  TenantRecord,
} from './records.ts';

export type Field = string | number | Buffer | null;

const DOMAIN = Buffer.from('okcm/record/v1\0', 'latin1');
export const RECORD_MAC_INFO = Buffer.from('okcm/record-mac/v1', 'latin1');

export function canonical(table: string, fields: readonly Field[]): Buffer {
  const parts: Buffer[] = [DOMAIN, Buffer.from(`${table}\0`, 'latin1')];
  for (const f of fields) {
    let tag: number;
    let body: Buffer;
    if (f === null) [tag, body] = [0, Buffer.alloc(0)];
    else if (typeof f === 'string') [tag, body] = [1, Buffer.from(f, 'utf8')];
    else if (typeof f === 'number') [tag, body] = [2, Buffer.from(String(f), 'latin1')];
    else [tag, body] = [3, f];
    const head = Buffer.allocUnsafe(5);
    head[0] = tag;
    head.writeUInt32BE(body.length, 1);
    parts.push(head, body);
  }
  return Buffer.concat(parts);
}

export function clusterFields(r: Omit<ClusterRecord, 'mac'>): Field[] {
  const s = r.seal;
  return [
    r.clusterId,
    r.region,
    r.sealType,
    r.threshold,
    r.shareCount,
    r.splitId,
    r.kcv,
    r.ceremonyPublicKey,
    s ? s.provider : null,
    s ? s.keyId : null,
    s ? s.keyVersion : null,
    s ? s.encryptedDataKey : null,
    s ? s.wrappedMasterKey : null,
    s ? s.createdAt : null,
    r.manifest,
    r.createdAt,
    r.initState,
    r.ivkDigest,
  ];
}

export function ivkFields(r: Omit<IvkRecord, 'mac'>): Field[] {
  return [r.version, r.state, r.createdAt, r.retiredAt, r.hardExpiry, r.wraps, r.wrapped];
}

export function l2Fields(r: Omit<L2Record, 'mac'>): Field[] {
  return [r.tenant, r.version, r.state, r.ivkVersion, r.wrappedActive, r.wrappedSovereign, r.createdAt];
}

// Schema v3. Each list is every field but `mac`, in declaration order; a
// nullable group (l1) contributes one null per member, and the approval list
// its length followed by each (actor, at), so no two records share a
// canonical form.

export function tenantFields(r: Omit<TenantRecord, 'mac'>): Field[] {
  const l1 = r.l1;
  return [
    r.id,
    r.state,
    r.keyMode,
    l1 ? l1.provider : null,
    l1 ? l1.keyId : null,
    l1 ? l1.region : null,
    r.suspendedAt,
    r.graceDays,
    r.reason,
    r.revokedAt,
    r.createdAt,
    r.updatedAt,
  ];
}

export function l3ServiceFields(r: Omit<L3ServiceRecord, 'mac'>): Field[] {
  return [
    r.tenant,
    r.service,
    r.rotatePeriodMs,
    r.encryptionBudget,
    r.minDecryptVersion,
    r.expiredRetentionMs,
    r.createdAt,
    r.updatedAt,
  ];
}

export function l3Fields(r: Omit<L3Record, 'mac'>): Field[] {
  return [
    r.tenant,
    r.service,
    r.version,
    r.state,
    r.l2Version,
    r.wrapped,
    r.createdAt,
    r.activatedAt,
    r.rotateAfter,
    r.expiredAt,
    r.revokedAt,
    r.encryptions,
  ];
}

/** Covers the store-assigned seq: an event moved to another position in the log fails. */
export function keyEventFields(r: Omit<KeyEventRecord, 'mac'>): Field[] {
  return [r.seq, r.type, r.tenant, r.service, r.version, r.createdAt];
}

export function edgeFields(r: Omit<EdgeRecord, 'mac'>): Field[] {
  return [r.edgeId, r.ackedSeq, r.ackedAt, r.lastSeenAt];
}

export function approvalFields(r: Omit<ApprovalRecord, 'mac'>): Field[] {
  return [
    r.id,
    r.operation,
    r.params,
    r.proposer,
    r.required,
    r.approvals.length,
    ...r.approvals.flatMap((a) => [a.actor, a.at]),
    r.state,
    r.createdAt,
    r.expiresAt,
    r.decidedBy,
    r.decidedAt,
    r.executedAt,
    r.result,
  ];
}

/** Computes and checks record MACs under a key derived from the MasterKey. */
export class RecordMac {
  readonly #key: KeyHandle;

  /** Derives K_mac from the MasterKey (the MasterKey handle stays the caller's). */
  constructor(masterKey: KeyHandle) {
    this.#key = masterKey.derive(Buffer.alloc(0), RECORD_MAC_INFO);
  }

  mac(table: string, fields: readonly Field[]): Buffer {
    return this.#key.hmac(canonical(table, fields));
  }

  /** Constant-time comparison of the stored MAC with a fresh one. */
  verify(table: string, fields: readonly Field[], stored: Buffer): boolean {
    const fresh = this.mac(table, fields);
    return stored.length === fresh.length && timingSafeEqual(fresh, stored);
  }

  destroy(): void {
    this.#key.destroy();
  }
}
