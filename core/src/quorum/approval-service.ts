/**
 * Four-eyes quorum (ADR-404). A high-risk operation becomes an approval
 * request; it executes once M distinct people agree, the proposer counted as
 * the first of them (M = 2 by default: the proposer plus one approver).
 *
 *   PENDING ──approve (quorum met: claim)──▶ EXECUTED ──executor throws──▶ FAILED
 *   PENDING ──reject──▶ REJECTED    PENDING ──cancel──▶ CANCELLED
 *   PENDING ──expiry (sweep, or lazily on approve/reject/cancel)──▶ EXPIRED
 *
 * Rules: the proposer cannot approve (`approval_self`); an approver counts
 * once (`approval_duplicate`); any state but PENDING, or a PENDING request
 * past its expiry, refuses every step (`approval_closed`). One reject by
 * anyone but the proposer closes the request; the proposer (or a caller the
 * API marks `privileged`) cancels.
 *
 * Exactly once: the approval that meets the quorum moves the request from
 * PENDING to EXECUTED (result null = "executing") in one serialisable store
 * transaction, so among concurrent approvals on any number of Core replicas
 * exactly one commits the claim; only that caller runs the executor, after
 * the commit and outside the transaction. Its outcome is written next: the
 * executor's JSON result, or FAILED with the error code. A FAILED request is
 * never retried: a new proposal is needed.
 *
 * Crash window: if the process dies between the claim and the outcome write,
 * the request stays EXECUTED with no result (view outcome 'executing',
 * `executedAt` set) and the audit log has `approval.approve` with reason
 * `quorum_met` but no `approval.execute`. The operator checks the target
 * (executors are idempotent) and, if the effect is missing, proposes again.
 *
 * Audit (fail closed): every step, refused ones included, records
 * `approval.propose|approve|reject|cancel|expire|execute` with the actor, the
 * request id as resource and the correlation id, before the answer leaves.
 * If the audit record of the quorum-completing approval cannot be written,
 * the executor does not run and the request is recorded FAILED
 * (`audit_unavailable`). Alerts (optional) are best effort.
 */
import { randomUUID } from 'node:crypto';
import type { Action } from '../../../common/src/authz/permissions.ts';
import { KcmError } from '../../../common/src/errors.ts';
import type { AuditSink } from '../audit/audit-sink.ts';
import type { ApprovalRecord, ApprovalState } from '../store/records.ts';
import { type ApprovalPolicy, approvalPolicy, proposalTtl } from './approval-policy.ts';
import { ApprovalReporter, isPrintable, type QuorumAlert } from './approval-reporter.ts';
import type { ApprovalStore, UnsignedApproval } from './approval-store.ts';
import { type ApprovalView, approvalView, missingApprovals } from './approval-view.ts';
import { canonicalParams, type JsonValue, parseParams } from './canonical-params.ts';
import type { ExecutorRegistry } from './executor-registry.ts';

export type { QuorumAlert } from './approval-reporter.ts';

export interface ApprovalServiceOptions {
  store: ApprovalStore;
  registry: ExecutorRegistry;
  audit: AuditSink;
  /** Quorum settings; see approval-policy.ts (defaults: M = 2, 7 days, max 30 days). */
  policy?: Partial<ApprovalPolicy>;
  /**
   * Best-effort notification of every step (an AlertSink from common/src/alerts fits): kind `quorum.event`;
   * severity critical for an execution, warning for a refused step or a proposal, info otherwise. A throw is logged.
   */
  alerts?: { alert(a: QuorumAlert): void };
  log?: (msg: string) => void;
  now?: () => number;
  newId?: () => string;
}

export interface StepOptions {
  correlationId?: string | undefined;
}

export interface ProposeOptions extends StepOptions {
  /** How long the request stays open; default policy.defaultTtlMs, at most policy.maxTtlMs. */
  ttlMs?: number | undefined;
}

export interface CancelOptions extends StepOptions {
  /** The caller may cancel requests of others (the API decides from its permissions). */
  privileged?: boolean | undefined;
  reason?: string | undefined;
}

/** Actor, and reason texts: printable, bounded (they go to the audit log). */

function text(name: string, v: unknown, max: number): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > max || !isPrintable(v)) {
    throw new KcmError('bad_request', `${name} must be 1–${max} printable characters`);
  }
  return v;
}

function unsigned(r: ApprovalRecord): UnsignedApproval {
  const { mac: _mac, ...rest } = r;
  return rest;
}

interface Step {
  expired: boolean;
  record: UnsignedApproval;
}

export class ApprovalService {
  readonly policy: ApprovalPolicy;
  readonly #o: ApprovalServiceOptions;
  readonly #now: () => number;
  readonly #reporter: ApprovalReporter;
  readonly #log: (msg: string) => void;

  constructor(o: ApprovalServiceOptions) {
    this.policy = approvalPolicy(o.policy);
    this.#o = o;
    this.#now = o.now ?? Date.now;
    this.#log = o.log ?? ((m: string) => console.error(`[quorum] ${m}`));
    this.#reporter = new ApprovalReporter(o.audit, o.alerts, this.#log);
  }

  /**
   * Proposes `operation` with `params` (validated and normalised by the
   * operation's executor, stored as canonical JSON). Returns the PENDING
   * request. Throws `bad_request` (unknown operation, params not plain JSON or
   * too large, expiry out of bounds, bad proposer), or whatever the executor's
   * `validate` throws.
   */
  propose(operation: string, params: unknown, proposer: string, o: ProposeOptions = {}): Promise<ApprovalView> {
    return this.#audited('approval.propose', proposer, null, o, async () => {
      text('proposer', proposer, 256);
      const executor = this.#o.registry.get(operation);
      const canonical = canonicalParams(await executor.validate(params));
      const now = this.#now();
      const record: UnsignedApproval = {
        id: (this.#o.newId ?? randomUUID)(),
        operation,
        params: canonical,
        proposer,
        required: Math.max(this.policy.required, executor.required ?? 0),
        approvals: [],
        state: 'PENDING',
        createdAt: now,
        expiresAt: now + proposalTtl(this.policy, o.ttlMs),
        decidedBy: null,
        decidedAt: null,
        executedAt: null,
        result: null,
      };
      await this.#o.store.transaction((tx) => tx.insertApproval(record));
      return { record, reason: `${operation}, ${record.required} people` };
    });
  }

  /**
   * Approves request `id` as `actor`. When this approval meets the quorum the
   * operation executes here, once, and the returned view says how it went
   * (state EXECUTED with outcome 'succeeded', or FAILED with the error).
   * Throws `approval_not_found`, `approval_closed` (not PENDING, or expired:
   * then it is marked EXPIRED), `approval_self`, `approval_duplicate`,
   * `bad_request` (bad actor).
   */
  approve(id: string, actor: string, o: StepOptions = {}): Promise<ApprovalView> {
    let claimed: UnsignedApproval | null = null;
    return this.#audited('approval.approve', actor, id, o, async () => {
      text('actor', actor, 256);
      const step = await this.#step(id, (r, now) => {
        if (r.proposer === actor) throw new KcmError('approval_self', id);
        if (r.approvals.some((a) => a.actor === actor)) throw new KcmError('approval_duplicate', id);
        const next: UnsignedApproval = { ...r, approvals: [...r.approvals, { actor, at: now }] };
        if (missingApprovals(next) > 0) return next;
        return { ...next, state: 'EXECUTED', executedAt: now };
      });
      if (!step.expired && step.record.state === 'EXECUTED') claimed = step.record;
      return { record: step.record, reason: claimed ? 'quorum_met' : `${missingApprovals(step.record)} missing` };
    }).then(
      (view) => (claimed ? this.#execute(claimed, o) : view),
      async (err: unknown) => {
        // The claim committed but its audit record failed: do not execute (fail closed).
        if (claimed) await this.#finish(claimed, { error: err }, o).catch(() => {});
        throw err;
      },
    );
  }

  /**
   * Rejects request `id` (a veto: the request closes). `reason` is 1–200
   * printable characters. Throws like `approve`, and `forbidden` when the
   * proposer rejects (the proposer cancels instead).
   */
  reject(id: string, actor: string, reason: string, o: StepOptions = {}): Promise<ApprovalView> {
    return this.#audited('approval.reject', actor, id, o, async () => {
      text('actor', actor, 256);
      text('reason', reason, 200);
      const step = await this.#step(id, (r, now) => {
        if (r.proposer === actor) throw new KcmError('forbidden', 'the proposer cancels instead of rejecting');
        return { ...r, state: 'REJECTED', decidedBy: actor, decidedAt: now, result: JSON.stringify({ reason }) };
      });
      return { record: step.record, reason };
    });
  }

  /**
   * Cancels request `id`: only its proposer, or a `privileged` caller.
   * Throws like `approve`, and `forbidden` for anyone else.
   */
  cancel(id: string, actor: string, o: CancelOptions = {}): Promise<ApprovalView> {
    return this.#audited('approval.cancel', actor, id, o, async () => {
      text('actor', actor, 256);
      const reason = o.reason === undefined ? undefined : text('reason', o.reason, 200);
      const step = await this.#step(id, (r, now) => {
        if (r.proposer !== actor && o.privileged !== true) {
          throw new KcmError('forbidden', 'only the proposer (or an administrator) cancels a request');
        }
        const result = reason === undefined ? null : JSON.stringify({ reason });
        return { ...r, state: 'CANCELLED', decidedBy: actor, decidedAt: now, result };
      });
      return { record: step.record, ...(reason === undefined ? {} : { reason }) };
    });
  }

  /** The operations that can be proposed, with their summaries and any higher M. */
  /**
   * The permission over its target that acting on `operation` with `params`
   * needs (the executor's `scope`, default `sys.write` on all tenants); an
   * unknown operation or unreadable params give the default, which is the
   * strictest.
   */
  scopeOf(operation: string, params: unknown): { action: Action; tenant?: string } {
    const strictest = { action: 'sys.write' as Action };
    if (!this.#o.registry.has(operation)) return strictest;
    try {
      return this.#o.registry.get(operation).scope?.(params) ?? strictest;
    } catch {
      return strictest;
    }
  }

  operations(): { operation: string; summary: string; required: number }[] {
    return this.#o.registry.list().map((e) => ({
      operation: e.operation,
      summary: e.summary,
      required: Math.max(this.policy.required, e.required ?? 0),
    }));
  }

  /** The request `id`; throws `approval_not_found`. */
  async get(id: string): Promise<ApprovalView> {
    const r = await this.#o.store.getApproval(id);
    if (!r) throw new KcmError('approval_not_found', id);
    return approvalView(r, this.#now());
  }

  /** Requests oldest first, optionally only those stored in `state`, at most `limit` (1–500, default 100). */
  async list(o: { state?: ApprovalState | undefined; limit?: number | undefined } = {}): Promise<ApprovalView[]> {
    const limit = o.limit ?? 100;
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > 500) {
      throw new KcmError('bad_request', 'limit must be an integer from 1 to 500');
    }
    const now = this.#now();
    return (await this.#o.store.listApprovals(o.state ?? null, limit)).map((r) => approvalView(r, now));
  }

  /**
   * Marks PENDING requests past their expiry EXPIRED (the oldest `limit`
   * PENDING requests are examined); returns the ids it expired. Each is
   * audited `approval.expire` with actor `system`.
   */
  async sweep(limit = 500): Promise<string[]> {
    const now = this.#now();
    const due = (await this.#o.store.listApprovals('PENDING', limit)).filter((r) => now >= r.expiresAt);
    const expired: string[] = [];
    for (const r of due) {
      // No mutation: #step commits EXPIRED for a request past its expiry and then throws approval_closed.
      const closed = await this.#step(r.id).then(
        () => false,
        (e: unknown) => (e instanceof KcmError && e.code === 'approval_closed' ? true : Promise.reject(e)),
      );
      if (closed) expired.push(r.id);
    }
    return expired;
  }

  /**
   * One transition of a PENDING request in one transaction. A request past
   * its expiry is marked EXPIRED (committed, audited) and the step then throws
   * `approval_closed`; otherwise `mutate` gives the next record (or throws,
   * and nothing is written).
   */
  async #step(id: string, mutate?: (r: UnsignedApproval, now: number) => UnsignedApproval): Promise<Step> {
    const step = await this.#o.store.transaction(async (tx): Promise<Step> => {
      const r = await tx.getApproval(id);
      if (!r) throw new KcmError('approval_not_found', id);
      if (r.state !== 'PENDING') throw new KcmError('approval_closed', `${id} is ${r.state}`);
      const now = this.#now();
      if (now >= r.expiresAt) {
        const record: UnsignedApproval = { ...unsigned(r), state: 'EXPIRED', decidedAt: now };
        await tx.updateApproval(record);
        return { expired: true, record };
      }
      if (!mutate) return { expired: false, record: unsigned(r) };
      const record = mutate(unsigned(r), now);
      await tx.updateApproval(record);
      return { expired: false, record };
    });
    if (step.expired) {
      this.#reporter.report('approval.expire', 'success', 'system', id, {}, 'expired');
      throw new KcmError('approval_closed', `${id} expired`);
    }
    return step;
  }

  /** Runs the executor of a claimed request and records its outcome; returns the final view. */
  async #execute(claimed: UnsignedApproval, o: StepOptions): Promise<ApprovalView> {
    let outcome: { value: JsonValue } | { error: unknown };
    try {
      const executor = this.#o.registry.get(claimed.operation);
      const params = await executor.validate(parseParams(claimed.params));
      const value = await executor.execute(params, {
        approvalId: claimed.id,
        operation: claimed.operation,
        proposer: claimed.proposer,
        approvers: claimed.approvals.map((a) => a.actor),
        ...(o.correlationId === undefined ? {} : { correlationId: o.correlationId }),
      });
      outcome = { value: value === undefined ? null : value };
    } catch (error) {
      outcome = { error };
    }
    return approvalView(await this.#finish(claimed, outcome, o), this.#now());
  }

  /** Writes the outcome of a claimed request (if it is still executing), then audits and alerts it. */
  async #finish(
    claimed: UnsignedApproval,
    outcome: { value: JsonValue } | { error: unknown },
    o: StepOptions,
  ): Promise<UnsignedApproval> {
    const failed = 'error' in outcome;
    let result: string;
    if (failed) {
      const e = outcome.error;
      const code = e instanceof KcmError ? e.code : 'internal_error';
      const message = e instanceof KcmError && e.source !== 'internal' ? e.message : code.replaceAll('_', ' ');
      if (!(e instanceof KcmError) || e.source === 'internal')
        this.#log(`${claimed.id} execution failed: ${String(e)}`);
      result = JSON.stringify({ error: { code, message } });
    } else {
      result = canonicalParams(outcome.value);
    }
    const final = await this.#o.store.transaction(async (tx) => {
      const r = await tx.getApproval(claimed.id);
      if (r?.state !== 'EXECUTED' || r.result !== null) {
        throw new KcmError('internal_error', `${claimed.id}: outcome already recorded`);
      }
      const next: UnsignedApproval = { ...unsigned(r), state: failed ? 'FAILED' : 'EXECUTED', result };
      await tx.updateApproval(next);
      return next;
    });
    const reason = failed ? (JSON.parse(result) as { error: { code: string } }).error.code : undefined;
    this.#reporter.report('approval.execute', failed ? 'failure' : 'success', 'system', claimed.id, o, reason);
    return final;
  }

  /**
   * Runs one public step: audits its success (with `reason`) or its failure
   * (with the error code) as `action` before the answer leaves, alerts, and
   * returns the view of the record the step wrote.
   */
  async #audited(
    action: string,
    actor: string,
    id: string | null,
    o: StepOptions,
    fn: () => Promise<{ record: UnsignedApproval; reason?: string }>,
  ): Promise<ApprovalView> {
    let done: { record: UnsignedApproval; reason?: string };
    try {
      done = await fn();
    } catch (err) {
      const code = err instanceof KcmError ? err.code : 'internal_error';
      this.#reporter.report(action, 'failure', actor, id, o, code);
      throw err;
    }
    this.#reporter.report(action, 'success', actor, done.record.id, o, done.reason);
    return approvalView(done.record, this.#now());
  }
}
