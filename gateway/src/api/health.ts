/**
 * GET /healthz: the process serves requests (always 200 while it runs).
 * GET /readyz: 200 when the gateway can encrypt and decrypt — a Core lease is
 * possible or the key cache holds keys; 503 `not_ready` otherwise, so a load
 * balancer stops sending traffic.
 */
import { KcmError } from '../../../common/src/errors.ts';
import type { GatewayKeys } from '../gateway-keys.ts';
import { errorResponse, jsonResponse } from '../pipeline/responses.ts';
import type { Route } from '../pipeline/router.ts';

export function healthRoutes(keys: GatewayKeys): Route[] {
  return [
    {
      name: 'healthz',
      method: 'GET',
      pattern: '/healthz',
      body: 'none',
      auth: false,
      handle(ctx) {
        ctx.response = jsonResponse(200, { status: 'ok' });
      },
    },
    {
      name: 'readyz',
      method: 'GET',
      pattern: '/readyz',
      body: 'none',
      auth: false,
      handle(ctx) {
        if (keys.ready()) {
          ctx.response = jsonResponse(200, { status: 'ready' });
          return;
        }
        const err = new KcmError('not_ready');
        ctx.error = err;
        ctx.response = errorResponse(err);
      },
    },
  ];
}
