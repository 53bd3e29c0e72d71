/**
 * High-risk admin routes (ADR-404): the route becomes an approval request
 * (202, see `requireApproval`) that the quorum executes exactly once.
 *
 * The one exception is a development Core on plain loopback HTTP (`kcm dev`,
 * `KCM_DEV=1` without TLS): every caller there is the single
 * `local-operator`, so no second person can ever approve. There the
 * operation runs at once through the same executor (validated the same
 * way), and the audit log says so (`approval.bypass`, reason
 * `dev_loopback_single_operator`). A Core with TLS always requires the quorum.
 */
import { randomUUID } from 'node:crypto';
import type { Action } from '../../../common/src/authz/permissions.ts';
import type { Route, RouteContext } from '../api/router.ts';
import { callerOf, requireApproval } from '../api/routes/approvals.ts';
import type { AuditSink } from '../audit/audit-sink.ts';
import type { ApprovalService } from './approval-service.ts';
import type { ExecutorRegistry } from './executor-registry.ts';

export interface HighRiskDeps {
  approvals: ApprovalService;
  registry: ExecutorRegistry;
  audit: AuditSink;
  /** True only for a development Core on plain loopback HTTP (see above). */
  bypassQuorum: boolean;
}

export interface HighRiskRouteSpec {
  method: Route['method'];
  path: string;
  action: Action;
  tenant?: Route['tenant'];
  operation: string;
  params: (ctx: RouteContext) => unknown;
}

/** The route of a high-risk operation: a proposal (202), or in the dev exception a direct, audited execution (200). */
export function highRiskRoute(d: HighRiskDeps, spec: HighRiskRouteSpec): Route {
  if (!d.bypassQuorum) return requireApproval(d.approvals, spec);
  return {
    method: spec.method,
    path: spec.path,
    action: spec.action,
    ...(spec.tenant ? { tenant: spec.tenant } : {}),
    handler: async (ctx) => {
      const { actor, correlationId } = callerOf(ctx);
      const executor = d.registry.get(spec.operation);
      const params = await executor.validate(spec.params(ctx));
      const approvalId = `direct-${randomUUID()}`;
      d.audit.record({
        action: 'approval.bypass',
        outcome: 'success',
        actor,
        resource: `${spec.operation} ${approvalId}`,
        reason: 'dev_loopback_single_operator',
        ...(correlationId ? { correlationId } : {}),
      });
      const result = await executor.execute(params, {
        approvalId,
        operation: spec.operation,
        proposer: actor,
        approvers: [actor],
        ...(correlationId ? { correlationId } : {}),
      });
      return [200, result];
    },
  };
}
