/** Every direct API route, in match order. */
import type { GatewayKeys } from '../gateway-keys.ts';
import type { Route } from '../pipeline/router.ts';
import type { ApiOptions } from './api-input.ts';
import { datakeyRoutes } from './datakey.ts';
import { decryptRoutes } from './decrypt.ts';
import { encryptRoutes } from './encrypt.ts';
import { healthRoutes } from './health.ts';
import { metricsRoutes } from './metrics.ts';
import { rewrapRoutes } from './rewrap.ts';

export function directApiRoutes(o: ApiOptions & { keys: GatewayKeys }): Route[] {
  return [
    ...healthRoutes(o.keys),
    ...metricsRoutes(o.metrics),
    ...encryptRoutes(o),
    ...decryptRoutes(o),
    ...datakeyRoutes(o),
    ...rewrapRoutes(o),
  ];
}
