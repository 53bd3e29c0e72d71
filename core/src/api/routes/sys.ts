/**
 * /v1/sys/*: the root-of-trust endpoints (ADR-202). Status is always served;
 * init, unseal and seal change the state. Responses never contain the
 * MasterKey; init's shares are returned exactly once.
 */
import { KcmError } from '../../../../common/src/errors.ts';
import type { RootOfTrust } from '../../root/root-of-trust.ts';
import { intField, stringField } from '../http-json.ts';
import type { Route } from '../router.ts';

function holderKeys(body: Record<string, unknown>): Buffer[] | undefined {
  const v = body.holderPublicKeys;
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || v.length > 255 || !v.every((k) => typeof k === 'string' && /^[A-Za-z0-9+/]{43}=$/.test(k))) {
    throw new KcmError('bad_request', 'holderPublicKeys must be an array of base64 X25519 public keys (32 bytes)');
  }
  return v.map((k) => Buffer.from(k as string, 'base64'));
}

export function sysRoutes(root: RootOfTrust): Route[] {
  return [
    { method: 'GET', path: '/v1/sys/status', action: 'sys.read', handler: async () => [200, root.status()] },
    {
      method: 'POST',
      path: '/v1/sys/init',
      action: 'sys.write',
      handler: async ({ body }) => {
        const result = await root.init({
          threshold: intField(body, 'threshold', 2, 255),
          shareCount: intField(body, 'shares', 2, 255),
          holderPublicKeys: holderKeys(body),
          abandonPending: body.abandonPending === true,
        });
        return [200, result];
      },
    },
    {
      method: 'POST',
      path: '/v1/sys/init/confirm',
      action: 'sys.write',
      handler: async () => [200, await root.confirmInit()],
    },
    {
      method: 'POST',
      path: '/v1/sys/unseal',
      action: 'sys.write',
      handler: async ({ body }) => {
        if (body.reset === true) return [200, root.resetUnseal()];
        return [200, await root.submitShare(stringField(body, 'share', 1024))];
      },
    },
    { method: 'POST', path: '/v1/sys/seal', action: 'sys.write', handler: async () => [200, root.seal('operator')] },
  ];
}
