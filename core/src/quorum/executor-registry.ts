/**
 * The operations a quorum can execute (ADR-404): each high-risk operation
 * (tenant.revoke, ivk.rotate_emergency, shares.rekey, authz.policy_change,
 * l1.unlink, …) registers one executor. Only registered operations can be
 * proposed; the registry is filled at start-up and is read-only afterwards
 * in practice (nothing removes an entry).
 */
import type { Action } from '../../../common/src/authz/permissions.ts';
import { KcmError } from '../../../common/src/errors.ts';
import type { JsonValue } from './canonical-params.ts';

/** What an executor learns about the request it carries out. */
export interface ExecutionContext {
  /** The approval request id: executors use it as their idempotency key. */
  approvalId: string;
  operation: string;
  proposer: string;
  /** The approvers, in approval order (the last one completed the quorum). */
  approvers: readonly string[];
  /** Correlation id of the request that completed the quorum, if it had one. */
  correlationId?: string;
}

/**
 * One high-risk operation.
 *
 * `validate` runs at propose time (and again just before `execute`): it
 * returns the normalised parameters or throws a KcmError (client codes such
 * as `bad_request`, `tenant_not_found`) that refuses the proposal.
 *
 * `execute` runs at most once per approval request, after the quorum claim
 * has committed, outside any store transaction. It must be idempotent
 * (running it again for the same effect is harmless: revoking a revoked
 * tenant succeeds), because the operator's recovery from a crash between the
 * claim and the recorded outcome is a new proposal. It returns a JSON value
 * (never a secret) that is stored as the request's result; a throw records
 * the request as FAILED with the error's code.
 */
export interface OperationExecutor<P extends JsonValue = JsonValue> {
  validate(params: unknown): P | Promise<P>;
  execute(params: P, ctx: ExecutionContext): Promise<JsonValue>;
  /** Distinct people this operation needs (proposer included); at least the service default, which wins if higher. */
  required?: number;
  /** One line shown to approvers, e.g. "revoke a tenant (kill switch)". */
  summary?: string;
  /**
   * The permission a person needs over the operation's target to propose,
   * approve, reject or cancel it (e.g. `tenant.write` on the tenant being
   * revoked), checked by the approval routes with the caller's identity, so an
   * operator scoped to some tenants cannot act on others' requests. Default:
   * `sys.write` for all tenants.
   */
  scope?(params: unknown): { action: Action; tenant?: string };
}

/** `tenant.revoke`: dotted lower-case segments (1–64 characters). */
const OPERATION = /^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$/;

export function isOperationName(name: string): boolean {
  return name.length <= 64 && OPERATION.test(name);
}

/** Operation name → executor. */
export class ExecutorRegistry {
  readonly #executors = new Map<string, OperationExecutor>();

  /**
   * Registers the executor of `operation`. Throws `internal_error` for a
   * malformed name, a name registered twice, or `required` below 2.
   */
  register<P extends JsonValue>(operation: string, executor: OperationExecutor<P>): this {
    if (!isOperationName(operation)) {
      throw new KcmError(
        'internal_error',
        `ExecutorRegistry.register: bad operation name ${JSON.stringify(operation)}`,
      );
    }
    if (this.#executors.has(operation)) {
      throw new KcmError('internal_error', `ExecutorRegistry.register: ${operation} is already registered`);
    }
    const r = executor.required;
    if (r !== undefined && (!Number.isSafeInteger(r) || r < 2 || r > 16)) {
      throw new KcmError('internal_error', `ExecutorRegistry.register: ${operation} required must be 2–16, got ${r}`);
    }
    this.#executors.set(operation, executor as unknown as OperationExecutor);
    return this;
  }

  /** The executor of `operation`, or `bad_request` naming the unknown operation. */
  get(operation: string): OperationExecutor {
    const e = this.#executors.get(operation);
    if (!e) throw new KcmError('bad_request', `unknown operation ${JSON.stringify(operation.slice(0, 64))}`);
    return e;
  }

  has(operation: string): boolean {
    return this.#executors.has(operation);
  }

  /** Registered operations, sorted, with their summaries. */
  list(): { operation: string; summary: string; required: number | null }[] {
    return [...this.#executors.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([operation, e]) => ({ operation, summary: e.summary ?? '', required: e.required ?? null }));
  }
}
