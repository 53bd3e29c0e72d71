/**
 * What the API and CLI show of an approval request: the stored record with
 * its JSON texts parsed, the approvals still missing, and the outcome of the
 * execution. Never holds a MAC or a secret (params and results never do).
 *
 * `result` by state: EXECUTED → the executor's JSON result (null while the
 * execution runs or if the process died during it: `outcome` 'executing');
 * FAILED → `{ error: { code, message } }`; REJECTED / CANCELLED →
 * `{ reason }` (the operator's text; CANCELLED may have none); PENDING /
 * EXPIRED → null.
 */
import type { Approval, ApprovalRecord, ApprovalState } from '../store/records.ts';
import { type JsonValue, parseParams } from './canonical-params.ts';

export type ExecutionOutcome = 'executing' | 'succeeded' | 'failed';

export interface ApprovalView {
  id: string;
  operation: string;
  params: JsonValue;
  proposer: string;
  /** M: distinct people the request needs, the proposer counted. */
  required: number;
  approvals: Approval[];
  /** Approvals still needed (0 once the quorum is met). */
  missing: number;
  /** The stored state, except that a PENDING request past its expiry reads EXPIRED. */
  state: ApprovalState;
  createdAt: number;
  expiresAt: number;
  decidedBy: string | null;
  decidedAt: number | null;
  executedAt: number | null;
  outcome: ExecutionOutcome | null;
  result: JsonValue | null;
}

/** Approvals still needed: M minus the proposer minus the approvers so far. */
export function missingApprovals(r: Pick<ApprovalRecord, 'required' | 'approvals'>): number {
  return Math.max(0, r.required - 1 - r.approvals.length);
}

function outcomeOf(r: Pick<ApprovalRecord, 'state' | 'result'>): ExecutionOutcome | null {
  if (r.state === 'FAILED') return 'failed';
  if (r.state !== 'EXECUTED') return null;
  return r.result === null ? 'executing' : 'succeeded';
}

/** The public view of `r` at time `now`. */
export function approvalView(r: Omit<ApprovalRecord, 'mac'>, now: number): ApprovalView {
  return {
    id: r.id,
    operation: r.operation,
    params: parseParams(r.params),
    proposer: r.proposer,
    required: r.required,
    approvals: r.approvals.map((a) => ({ actor: a.actor, at: a.at })),
    missing: missingApprovals(r),
    state: r.state === 'PENDING' && now >= r.expiresAt ? 'EXPIRED' : r.state,
    createdAt: r.createdAt,
    expiresAt: r.expiresAt,
    decidedBy: r.decidedBy,
    decidedAt: r.decidedAt,
    executedAt: r.executedAt,
    outcome: outcomeOf(r),
    result: r.result === null ? null : parseParams(r.result),
  };
}
