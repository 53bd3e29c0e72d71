/**
 * GET /metrics: Prometheus text (requests by route and status, latency
 * histograms with the ADR-604 buckets, client aborts, batch items, key cache
 * hits/misses, lease age, revocations applied, readiness).
 */
import type { GatewayMetrics } from '../metrics/gateway-metrics.ts';
import { PROMETHEUS_CONTENT_TYPE } from '../metrics/registry.ts';
import type { Route } from '../pipeline/router.ts';

export function metricsRoutes(metrics: GatewayMetrics): Route[] {
  return [
    {
      name: 'metrics',
      method: 'GET',
      pattern: '/metrics',
      body: 'none',
      auth: false,
      handle(ctx) {
        ctx.response = {
          status: 200,
          headers: { 'content-type': PROMETHEUS_CONTENT_TYPE, 'cache-control': 'no-store' },
          body: metrics.render(),
        };
      },
    },
  ];
}
