/**
 * /v1/ivk*: IVK versions (ADR-301–304). Key APIs: 503 `sealed` unless active.
 */
import { KcmError } from '../../../../common/src/errors.ts';
import type { RootOfTrust } from '../../root/root-of-trust.ts';
import type { Route } from '../router.ts';

function version(params: Record<string, string>): number {
  const v = Number(params.version);
  if (!Number.isSafeInteger(v) || v < 1) throw new KcmError('bad_request', 'version must be a positive integer');
  return v;
}

/**
 * `rotate` replaces the direct emergency rotation with a quorum route
 * (ADR-404; the Core passes `highRiskRoute(…, operation 'ivk.rotate_emergency')`).
 * Scheduled and volume rotations are the ticker's and need no approval.
 */
export function ivkRoutes(root: RootOfTrust, rotate?: Route): Route[] {
  return [
    { method: 'GET', path: '/v1/ivk', action: 'sys.read', handler: async () => [200, { versions: root.ivk().list() }] },
    rotate ?? {
      method: 'POST',
      path: '/v1/ivk/rotate',
      action: 'sys.write',
      handler: async () => [200, await root.ivk().rotate('emergency')],
    },
    {
      method: 'POST',
      path: '/v1/ivk/:version/revoke',
      action: 'sys.write',
      handler: async ({ params }) => {
        await root.ivk().revoke(version(params));
        return [200, { versions: root.ivk().list() }];
      },
    },
    {
      method: 'DELETE',
      path: '/v1/ivk/:version',
      action: 'sys.write',
      handler: async ({ params }) => {
        await root.ivk().delete(version(params));
        return [200, { versions: root.ivk().list() }];
      },
    },
  ];
}
