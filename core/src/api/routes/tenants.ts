/**
 * /v1/tenants*: tenant lifecycle and L1 links (ADR-103/503/504) over the
 * admin API. Revocation (the kill switch) and L1 unlink are high-risk
 * (ADR-404): their routes create an approval request (202) that executes
 * once the quorum is met (see core/src/quorum/ and `tenantExecutors`).
 * Every call is audited by the key hierarchy with the caller as actor.
 */
import { KcmError } from '../../../../common/src/errors.ts';
import { describeIdentity } from '../../../../common/src/tls/identity.ts';
import type { ExecutorRegistry } from '../../quorum/executor-registry.ts';
import type { HighRiskRouteSpec } from '../../quorum/high-risk-route.ts';
import type { KeyMode, L1Ref } from '../../store/records.ts';
import type { OpCtx } from '../../tenants/hierarchy-context.ts';
import type { KeyHierarchy } from '../../tenants/key-hierarchy.ts';
import { graceDays } from '../../tenants/tenant-state.ts';
import { stringField } from '../http-json.ts';
import type { Route, RouteContext } from '../router.ts';

/** The hierarchy, or 503 `sealed` while the Core has none (sealed, or not yet initialised). */
export type KeysOf = () => KeyHierarchy;

/** Actor and correlation id of the request, for the hierarchy's audit records. */
export function opCtx(ctx: RouteContext): OpCtx {
  return {
    actor: ctx.identity ? describeIdentity(ctx.identity) : 'unknown',
    ...(ctx.correlationId === undefined ? {} : { correlationId: ctx.correlationId }),
  };
}

function tenantParam(ctx: RouteContext): string {
  return ctx.params.tenant as string;
}

function optionalString(body: Record<string, unknown>, name: string, max = 256): string | undefined {
  return body[name] === undefined ? undefined : stringField(body, name, max);
}

/** `{provider, keyId, region?}` or `bad_request` naming the field. */
export function l1RefField(v: unknown): L1Ref {
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new KcmError('bad_request', 'l1 must be an object');
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (k !== 'provider' && k !== 'keyId' && k !== 'region')
      throw new KcmError('bad_request', `l1.${k} is not a field`);
  }
  return {
    provider: stringField(o, 'provider', 64),
    keyId: stringField(o, 'keyId', 2048),
    region: o.region === undefined ? '' : stringField(o, 'region', 64),
  };
}

function keyModeField(v: unknown, allowManaged: boolean): KeyMode | undefined {
  if (v === undefined) return undefined;
  const modes: KeyMode[] = allowManaged ? ['managed', 'byok', 'hyok'] : ['byok', 'hyok'];
  if (typeof v !== 'string' || !modes.includes(v as KeyMode)) {
    throw new KcmError('bad_request', `keyMode must be one of ${modes.join(', ')}`);
  }
  return v as KeyMode;
}

/** Registers the executors of the tenant operations that need a quorum. */
export function registerTenantExecutors(registry: ExecutorRegistry, keys: KeysOf): void {
  const tenantOf = (p: unknown): { tenant: string; reason?: string } => {
    const o = (p ?? {}) as Record<string, unknown>;
    if (typeof o.tenant !== 'string') throw new KcmError('bad_request', 'params.tenant must be a string');
    const reason = typeof o.reason === 'string' ? o.reason.slice(0, 256) : undefined;
    return { tenant: o.tenant, ...(reason ? { reason } : {}) };
  };
  const scope = (p: unknown) => {
    const tenant = (p as { tenant?: unknown } | null)?.tenant;
    return { action: 'tenant.write' as const, ...(typeof tenant === 'string' ? { tenant } : {}) };
  };
  registry.register('tenant.revoke', {
    summary: 'revoke a tenant (kill switch): its L2 and L3 keys are destroyed everywhere',
    validate: tenantOf,
    scope,
    execute: async (p, ctx) => {
      const t = await keys().tenants.revoke(
        p.tenant,
        { reason: p.reason ?? `approval ${ctx.approvalId}` },
        {
          actor: `quorum:${ctx.approvers.join('+')}`,
          ...(ctx.correlationId ? { correlationId: ctx.correlationId } : {}),
        },
      );
      return { tenant: t.id, state: t.state, revokedAt: t.revokedAt };
    },
  });
  registry.register('l1.unlink', {
    summary: "unlink a tenant's customer root key (L1): back to managed keys",
    validate: tenantOf,
    scope,
    execute: async (p, ctx) => {
      const t = await keys().l1.unlink(p.tenant, { actor: `quorum:${ctx.approvers.join('+')}` });
      return { tenant: t.id, keyMode: t.keyMode };
    },
  });
}

/** `highRisk` turns a spec into its quorum route (core/src/quorum/high-risk-route.ts). */
export function tenantRoutes(keys: KeysOf, highRisk: (spec: HighRiskRouteSpec) => Route): Route[] {
  return [
    {
      method: 'GET',
      path: '/v1/tenants',
      action: 'tenant.read',
      tenant: () => undefined,
      handler: async () => [200, { tenants: await keys().tenants.list('', 1000) }],
    },
    {
      method: 'POST',
      path: '/v1/tenants',
      action: 'tenant.write',
      tenant: () => undefined,
      handler: async (ctx) => {
        const b = ctx.body;
        const keyMode = keyModeField(b.keyMode, true);
        const req = {
          id: stringField(b, 'id', 64),
          ...(keyMode ? { keyMode } : {}),
          ...(b.l1 === undefined ? {} : { l1: l1RefField(b.l1) }),
        };
        return [201, await keys().tenants.create(req, opCtx(ctx))];
      },
    },
    {
      method: 'GET',
      path: '/v1/tenants/:tenant',
      action: 'tenant.read',
      handler: async (ctx) => [200, await keys().tenants.get(tenantParam(ctx))],
    },
    {
      method: 'POST',
      path: '/v1/tenants/:tenant/suspend',
      action: 'tenant.write',
      handler: async (ctx) => {
        const days = ctx.body.graceDays === undefined ? undefined : graceDays(ctx.body.graceDays);
        const reason = optionalString(ctx.body, 'reason');
        const o = { ...(days ? { graceDays: days } : {}), ...(reason ? { reason } : {}) };
        return [200, await keys().tenants.suspend(tenantParam(ctx), o, opCtx(ctx))];
      },
    },
    {
      method: 'POST',
      path: '/v1/tenants/:tenant/resume',
      action: 'tenant.write',
      handler: async (ctx) => [200, await keys().tenants.resume(tenantParam(ctx), opCtx(ctx))],
    },
    highRisk({
      method: 'POST',
      path: '/v1/tenants/:tenant/revoke',
      action: 'tenant.write',
      operation: 'tenant.revoke',
      params: (ctx) => ({ tenant: tenantParam(ctx), ...(ctx.body.reason ? { reason: ctx.body.reason } : {}) }),
    }),
    {
      method: 'POST',
      path: '/v1/tenants/:tenant/l1',
      action: 'tenant.write',
      handler: async (ctx) => {
        const keyMode = keyModeField(ctx.body.keyMode ?? 'byok', false) as 'byok' | 'hyok';
        const l1 = l1RefField(ctx.body.l1);
        return [200, await keys().l1.link(tenantParam(ctx), { l1, keyMode }, opCtx(ctx))];
      },
    },
    highRisk({
      method: 'POST',
      path: '/v1/tenants/:tenant/l1/unlink',
      action: 'tenant.write',
      operation: 'l1.unlink',
      params: (ctx) => ({ tenant: tenantParam(ctx) }),
    }),
    {
      method: 'POST',
      path: '/v1/tenants/:tenant/l1/probe',
      // A failed probe suspends the tenant (l1_unreachable): a write, not a read.
      action: 'tenant.write',
      handler: async (ctx) => [200, await keys().l1.probe(tenantParam(ctx), opCtx(ctx))],
    },
    {
      method: 'POST',
      path: '/v1/tenants/:tenant/prewarm',
      action: 'key.write',
      handler: async (ctx) => {
        const s = ctx.body.services;
        if (s !== undefined && (!Array.isArray(s) || s.length > 1000 || s.some((x) => typeof x !== 'string'))) {
          throw new KcmError('bad_request', 'services must be an array of at most 1000 names');
        }
        return [200, await keys().services.prewarm(tenantParam(ctx), s as string[] | undefined, opCtx(ctx))];
      },
    },
  ];
}
