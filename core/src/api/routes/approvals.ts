/**
 * /v1/approvals*: four-eyes approval requests (ADR-404) over the admin API.
 *
 *   POST /v1/approvals                {operation, params, ttlMs?} → 201 request    (approval.propose)
 *   GET  /v1/approvals                pending requests + known operations          (approval.read)
 *   GET  /v1/approvals/state/:state   requests in one state (oldest 500)           (approval.read)
 *   GET  /v1/approvals/:id            one request                                  (approval.read)
 *   POST /v1/approvals/:id/approve    → 200 request (executed when the quorum is met) (approval.approve)
 *   POST /v1/approvals/:id/reject     {reason}                                     (approval.approve)
 *   POST /v1/approvals/:id/cancel     {reason?}                                    (approval.cancel)
 *
 * The actor of every step is the caller's verified identity (its CN, see
 * describeIdentity); a request without one is refused `unauthenticated`
 * (fail closed: four eyes means nothing between anonymous callers). The
 * `action` of each route is the permission the router checks.
 *
 * `requireApproval` turns a high-risk admin route (e.g. tenant revoke) into
 * a proposal: it answers 202 with the pending request instead of acting.
 */
import type { Action } from '../../../../common/src/authz/permissions.ts';
import { KcmError } from '../../../../common/src/errors.ts';
import { describeIdentity, type Identity } from '../../../../common/src/tls/identity.ts';
import type { ApprovalService } from '../../quorum/approval-service.ts';
import type { ApprovalState } from '../../store/records.ts';
import { intField, stringField } from '../http-json.ts';
import type { Route, RouteContext } from '../router.ts';

const STATES: readonly ApprovalState[] = ['PENDING', 'EXECUTED', 'FAILED', 'REJECTED', 'CANCELLED', 'EXPIRED'];

export interface ApprovalRouteOptions {
  /** Whether this caller may cancel requests proposed by others (default: nobody). */
  mayCancelAny?: (identity: Identity) => boolean;
  /**
   * Whether the caller holds the operation's scope permission (its executor's
   * `scope(params)`, default `sys.write` on all tenants) — checked on propose,
   * approve, reject and cancel; refused with 403 `forbidden`. Without it only
   * the route permissions apply.
   */
  mayAct?: (identity: Identity, scope: { action: Action; tenant?: string }) => boolean;
}

/** The caller's actor name and correlation id; throws `unauthenticated` when the request has no identity. */
export function callerOf(ctx: RouteContext): { actor: string; identity: Identity; correlationId?: string } {
  if (!ctx.identity) throw new KcmError('unauthenticated', 'approval steps need a caller identity');
  return {
    actor: describeIdentity(ctx.identity),
    identity: ctx.identity,
    ...(ctx.correlationId === undefined ? {} : { correlationId: ctx.correlationId }),
  };
}

export function approvalRoutes(service: ApprovalService, o: ApprovalRouteOptions = {}): Route[] {
  const id = (ctx: RouteContext) => ctx.params.id as string;
  const checkScope = (identity: Identity, operation: string, params: unknown): void => {
    if (!o.mayAct) return;
    const scope = service.scopeOf(operation, params);
    if (!o.mayAct(identity, scope)) {
      throw new KcmError('forbidden', `${operation} needs ${scope.action}${scope.tenant ? ` on ${scope.tenant}` : ''}`);
    }
  };
  const checkRequest = async (ctx: RouteContext): Promise<void> => {
    if (!o.mayAct) return;
    const { identity } = callerOf(ctx);
    const view = await service.get(id(ctx));
    checkScope(identity, view.operation, view.params);
  };
  return [
    {
      method: 'POST',
      path: '/v1/approvals',
      action: 'approval.propose',
      handler: async (ctx) => {
        const { actor, identity, correlationId } = callerOf(ctx);
        const operation = stringField(ctx.body, 'operation', 64);
        checkScope(identity, operation, ctx.body.params ?? {});
        const view = await service.propose(operation, ctx.body.params ?? {}, actor, {
          correlationId,
          ttlMs: intField(ctx.body, 'ttlMs', 0, Number.MAX_SAFE_INTEGER),
        });
        return [201, view];
      },
    },
    {
      method: 'GET',
      path: '/v1/approvals',
      action: 'approval.read',
      handler: async (ctx) => {
        callerOf(ctx);
        return [
          200,
          { approvals: await service.list({ state: 'PENDING', limit: 500 }), operations: service.operations() },
        ];
      },
    },
    {
      method: 'GET',
      path: '/v1/approvals/state/:state',
      action: 'approval.read',
      handler: async (ctx) => {
        callerOf(ctx);
        const state = STATES.find((s) => s === ctx.params.state?.toUpperCase());
        if (!state) throw new KcmError('bad_request', `state must be one of ${STATES.join(', ')}`);
        return [200, { approvals: await service.list({ state, limit: 500 }) }];
      },
    },
    {
      method: 'GET',
      path: '/v1/approvals/:id',
      action: 'approval.read',
      handler: async (ctx) => {
        callerOf(ctx);
        return [200, await service.get(id(ctx))];
      },
    },
    {
      method: 'POST',
      path: '/v1/approvals/:id/approve',
      action: 'approval.approve',
      handler: async (ctx) => {
        const { actor, correlationId } = callerOf(ctx);
        await checkRequest(ctx);
        return [200, await service.approve(id(ctx), actor, { correlationId })];
      },
    },
    {
      method: 'POST',
      path: '/v1/approvals/:id/reject',
      action: 'approval.approve',
      handler: async (ctx) => {
        const { actor, correlationId } = callerOf(ctx);
        await checkRequest(ctx);
        return [200, await service.reject(id(ctx), actor, stringField(ctx.body, 'reason', 200), { correlationId })];
      },
    },
    {
      method: 'POST',
      path: '/v1/approvals/:id/cancel',
      action: 'approval.cancel',
      handler: async (ctx) => {
        const { actor, identity, correlationId } = callerOf(ctx);
        const reason = ctx.body.reason === undefined ? undefined : stringField(ctx.body, 'reason', 200);
        await checkRequest(ctx);
        const privileged = o.mayCancelAny?.(identity) === true;
        return [200, await service.cancel(id(ctx), actor, { correlationId, privileged, reason })];
      },
    },
  ];
}

/**
 * A high-risk admin route that proposes instead of acting: `params(ctx)`
 * builds the operation's parameters from the request (path and body), and
 * the caller becomes the proposer. Answers 202 `{ approval }` with the
 * pending request; the operation runs when the quorum approves it. Throws
 * what `propose` throws (unknown operation, invalid params) and
 * `unauthenticated` without a caller identity.
 */
export function requireApproval(
  service: ApprovalService,
  route: {
    method: Route['method'];
    path: string;
    /** The permission of the original route (e.g. `tenant.write`); proposing needs it, not approval.propose. */
    action: Action;
    /** As Route.tenant: the tenant a tenant-scoped action concerns (default: the `:tenant` path parameter). */
    tenant?: Route['tenant'];
    operation: string;
    params: (ctx: RouteContext) => unknown;
  },
): Route {
  return {
    method: route.method,
    path: route.path,
    action: route.action,
    ...(route.tenant ? { tenant: route.tenant } : {}),
    handler: async (ctx) => {
      const { actor, correlationId } = callerOf(ctx);
      const ttlMs = intField(ctx.body, 'ttlMs', 0, Number.MAX_SAFE_INTEGER);
      const approval = await service.propose(route.operation, route.params(ctx), actor, { correlationId, ttlMs });
      return [202, { approval }];
    },
  };
}
