/**
 * /v1/tenants/:tenant/keys*: L3 service keys (ADR-601) over the admin API —
 * create, inspect, rotate, settings, raise the minimum decryption version,
 * revoke one version. Key material never leaves the Core here (edges lease
 * through the edge API); answers carry versions, states and times only.
 */
import { KcmError } from '../../../../common/src/errors.ts';
import { stringField } from '../http-json.ts';
import type { Route, RouteContext } from '../router.ts';
import { type KeysOf, opCtx } from './tenants.ts';

function versionParam(ctx: RouteContext, name = 'version'): number {
  const raw = ctx.params[name] ?? ctx.body[name];
  const v = typeof raw === 'string' ? Number(raw) : raw;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1 || v > 0xffff_ffff) {
    throw new KcmError('bad_request', `${name} must be an integer from 1 to 4294967295`);
  }
  return v;
}

const t = (ctx: RouteContext) => ctx.params.tenant as string;
const s = (ctx: RouteContext) => ctx.params.service as string;

export function serviceKeyRoutes(keys: KeysOf): Route[] {
  return [
    {
      method: 'GET',
      path: '/v1/tenants/:tenant/keys',
      action: 'key.read',
      handler: async (ctx) => [200, { services: await keys().services.list(t(ctx)) }],
    },
    {
      method: 'POST',
      path: '/v1/tenants/:tenant/keys',
      action: 'key.write',
      handler: async (ctx) => [
        201,
        await keys().services.create(t(ctx), stringField(ctx.body, 'service', 64), ctx.body.settings, opCtx(ctx)),
      ],
    },
    {
      method: 'GET',
      path: '/v1/tenants/:tenant/keys/:service',
      action: 'key.read',
      handler: async (ctx) => [200, await keys().services.get(t(ctx), s(ctx))],
    },
    {
      method: 'POST',
      path: '/v1/tenants/:tenant/keys/:service/rotate',
      action: 'key.write',
      handler: async (ctx) => [200, await keys().services.rotate(t(ctx), s(ctx), opCtx(ctx))],
    },
    {
      method: 'POST',
      path: '/v1/tenants/:tenant/keys/:service/settings',
      action: 'key.write',
      handler: async (ctx) => [200, await keys().services.updateSettings(t(ctx), s(ctx), ctx.body, opCtx(ctx))],
    },
    {
      method: 'POST',
      path: '/v1/tenants/:tenant/keys/:service/min-decrypt',
      action: 'key.write',
      handler: async (ctx) => [200, await keys().services.setMinDecrypt(t(ctx), s(ctx), versionParam(ctx), opCtx(ctx))],
    },
    {
      method: 'POST',
      path: '/v1/tenants/:tenant/keys/:service/versions/:version/revoke',
      action: 'key.write',
      handler: async (ctx) => [200, await keys().services.revokeVersion(t(ctx), s(ctx), versionParam(ctx), opCtx(ctx))],
    },
  ];
}
