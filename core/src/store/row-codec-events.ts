/**
 * Rows ↔ records of the event family (schema v3): key_events, edges,
 * approvals. Same rules as row-codec.ts. `approvals.approvals` is stored as
 * JSON text, `[{"actor":…,"at":…},…]` in the record's order, and parsed back
 * into the same array (a stored value that is not such an array is corrupt).
 */
import type { Approval, ApprovalRecord, ApprovalState, EdgeRecord, KeyEventRecord, KeyEventType } from './records.ts';
import {
  bad,
  bufOf,
  checkBuf,
  checkEnum,
  checkInt,
  checkIntOrNull,
  checkText,
  corrupt,
  enumOf,
  intOf,
  intOrNullOf,
  type Row,
  type SqlValue,
  textOf,
} from './row-codec.ts';
import { checkTextOrNull, textOrNullOf } from './row-codec-tenants.ts';

export const KEY_EVENT_TYPES: readonly KeyEventType[] = [
  'tenant.revoked',
  'tenant.suspended',
  'tenant.resumed',
  'l3.rotated',
  'l3.revoked',
  'l3.min_decrypt',
];
export const APPROVAL_STATES: readonly ApprovalState[] = [
  'PENDING',
  'EXECUTED',
  'FAILED',
  'REJECTED',
  'CANCELLED',
  'EXPIRED',
];

export const KEY_EVENT_COLUMNS = ['seq', 'type', 'tenant', 'service', 'version', 'created_at', 'mac'] as const;
export const EDGE_COLUMNS = ['edge_id', 'acked_seq', 'acked_at', 'last_seen_at', 'mac'] as const;
export const APPROVAL_COLUMNS = [
  'id',
  'operation',
  'params',
  'proposer',
  'required',
  'approvals',
  'state',
  'created_at',
  'expires_at',
  'decided_by',
  'decided_at',
  'executed_at',
  'result',
  'mac',
] as const;

/** Parameters of a key_events row in KEY_EVENT_COLUMNS order (seq as given: the store assigns it first). */
export function keyEventParams(op: string, r: KeyEventRecord): SqlValue[] {
  return [
    checkInt(op, 'seq', r.seq),
    checkEnum(op, 'type', r.type, KEY_EVENT_TYPES),
    checkText(op, 'tenant', r.tenant),
    checkTextOrNull(op, 'service', r.service),
    checkIntOrNull(op, 'version', r.version),
    checkInt(op, 'createdAt', r.createdAt),
    checkBuf(op, 'mac', r.mac),
  ];
}

/** Parameters of an edges row in EDGE_COLUMNS order. */
export function edgeParams(op: string, r: EdgeRecord): SqlValue[] {
  return [
    checkText(op, 'edgeId', r.edgeId),
    checkInt(op, 'ackedSeq', r.ackedSeq),
    checkIntOrNull(op, 'ackedAt', r.ackedAt),
    checkInt(op, 'lastSeenAt', r.lastSeenAt),
    checkBuf(op, 'mac', r.mac),
  ];
}

/** The JSON text stored for an approval list; throws `internal_error` for a malformed list. */
export function approvalsJson(op: string, list: unknown): string {
  if (!Array.isArray(list)) bad(op, 'approvals', 'an array');
  const clean = list.map((a: unknown, i) => {
    if (a === null || typeof a !== 'object') bad(op, `approvals[${i}]`, 'an object');
    const { actor, at } = a as Partial<Approval>;
    return { actor: checkText(op, `approvals[${i}].actor`, actor), at: checkInt(op, `approvals[${i}].at`, at) };
  });
  return JSON.stringify(clean);
}

/** Parameters of an approvals row in APPROVAL_COLUMNS order. */
export function approvalParams(op: string, r: ApprovalRecord): SqlValue[] {
  return [
    checkText(op, 'id', r.id),
    checkText(op, 'operation', r.operation),
    checkText(op, 'params', r.params),
    checkText(op, 'proposer', r.proposer),
    checkInt(op, 'required', r.required),
    approvalsJson(op, r.approvals),
    checkEnum(op, 'state', r.state, APPROVAL_STATES),
    checkInt(op, 'createdAt', r.createdAt),
    checkInt(op, 'expiresAt', r.expiresAt),
    checkTextOrNull(op, 'decidedBy', r.decidedBy),
    checkIntOrNull(op, 'decidedAt', r.decidedAt),
    checkIntOrNull(op, 'executedAt', r.executedAt),
    checkTextOrNull(op, 'result', r.result),
    checkBuf(op, 'mac', r.mac),
  ];
}

// ---- rows → records

export function keyEventOf(row: Row): KeyEventRecord {
  return {
    seq: intOf('seq', row.seq),
    type: enumOf('type', row.type, KEY_EVENT_TYPES),
    tenant: textOf('tenant', row.tenant),
    service: textOrNullOf('service', row.service),
    version: intOrNullOf('version', row.version),
    createdAt: intOf('created_at', row.created_at),
    mac: bufOf('mac', row.mac),
  };
}

export function edgeOf(row: Row): EdgeRecord {
  return {
    edgeId: textOf('edge_id', row.edge_id),
    ackedSeq: intOf('acked_seq', row.acked_seq),
    ackedAt: intOrNullOf('acked_at', row.acked_at),
    lastSeenAt: intOf('last_seen_at', row.last_seen_at),
    mac: bufOf('mac', row.mac),
  };
}

function approvalListOf(v: unknown): Approval[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(textOf('approvals', v));
  } catch {
    corrupt('approvals (not JSON)');
  }
  if (!Array.isArray(parsed)) corrupt('approvals (not an array)');
  return parsed.map((a: unknown) => {
    const { actor, at } = (a ?? {}) as Record<string, unknown>;
    if (typeof at !== 'number') corrupt('approvals[].at');
    return { actor: textOf('approvals[].actor', actor), at: intOf('approvals[].at', at) };
  });
}

export function approvalOf(row: Row): ApprovalRecord {
  return {
    id: textOf('id', row.id),
    operation: textOf('operation', row.operation),
    params: textOf('params', row.params),
    proposer: textOf('proposer', row.proposer),
    required: intOf('required', row.required),
    approvals: approvalListOf(row.approvals),
    state: enumOf('state', row.state, APPROVAL_STATES),
    createdAt: intOf('created_at', row.created_at),
    expiresAt: intOf('expires_at', row.expires_at),
    decidedBy: textOrNullOf('decided_by', row.decided_by),
    decidedAt: intOrNullOf('decided_at', row.decided_at),
    executedAt: intOrNullOf('executed_at', row.executed_at),
    result: textOrNullOf('result', row.result),
    mac: bufOf('mac', row.mac),
  };
}
