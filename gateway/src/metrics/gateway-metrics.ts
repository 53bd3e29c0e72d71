/**
 * The gateway's metrics: requests by route and status, latency by route
 * (ADR-604 buckets), client aborts, rejected bodies, and the key cache
 * figures (hits, misses, lease age, revocations applied) read from
 * GatewayKeys at scrape time.
 */
import type { GatewayKeys } from '../gateway-keys.ts';
import type { RequestContext } from '../pipeline/context.ts';
import { CallbackMetric, Counter, Histogram, Registry } from './registry.ts';

export class GatewayMetrics {
  readonly registry = new Registry();
  readonly requests = this.registry.register(
    new Counter('okcm_gateway_requests_total', 'Requests answered, by route and status.', ['route', 'status']),
  );
  readonly latency = this.registry.register(
    new Histogram(
      'okcm_gateway_request_duration_seconds',
      'Time from accepting a request to handing its response to the transport (ADR-604 buckets).',
      ['route'],
    ),
  );
  readonly aborts = this.registry.register(
    new Counter('okcm_gateway_client_aborts_total', 'Requests the client abandoned before the response.', ['route']),
  );
  readonly policyReloads = this.registry.register(
    new Counter(
      'okcm_gateway_policy_reloads_total',
      'Policy reloads, by outcome (applied; refused: the previous policies stay in force).',
      ['outcome'],
    ),
  );
  readonly batchItems = this.registry.register(
    new Counter('okcm_gateway_batch_items_total', 'Direct API items processed, by route and outcome.', [
      'route',
      'outcome',
    ]),
  );

  constructor(keys: GatewayKeys) {
    const r = this.registry;
    r.register(
      new CallbackMetric(
        'okcm_gateway_key_cache_hits_total',
        'L3 key lookups served from the cache.',
        'counter',
        () => keys.stats().cacheHits,
      ),
    );
    r.register(
      new CallbackMetric(
        'okcm_gateway_key_cache_misses_total',
        'L3 key lookups that missed the cache.',
        'counter',
        () => keys.stats().cacheMisses,
      ),
    );
    r.register(
      new CallbackMetric(
        'okcm_gateway_lease_age_seconds',
        'Age of the oldest L3 lease held.',
        'gauge',
        () => keys.stats().leaseAgeSeconds,
      ),
    );
    r.register(
      new CallbackMetric(
        'okcm_gateway_revocations_applied_total',
        'Revocation events applied to the key cache.',
        'counter',
        () => keys.stats().revocationsApplied,
      ),
    );
    r.register(
      new CallbackMetric('okcm_gateway_ready', '1 when the gateway can obtain keys.', 'gauge', () =>
        keys.ready() ? 1 : 0,
      ),
    );
  }

  /** The record stage: one count and one latency observation per answered request, or one abort. */
  recordRequest(ctx: RequestContext): void {
    const route = ctx.routeName;
    if (ctx.aborted && !ctx.responded) {
      this.aborts.inc({ route });
      return;
    }
    const status = String(ctx.response?.status ?? 500);
    this.requests.inc({ route, status });
    this.latency.observe({ route }, Number(process.hrtime.bigint() - ctx.startedAt) / 1e9);
  }

  /**
   * A request a native front served (native-front.ts drains their records):
   * counted as recordRequest counts one; status 0 is a client abort.
   */
  recordServed(route: string, status: number, seconds: number): void {
    if (status === 0) {
      this.aborts.inc({ route });
      return;
    }
    this.requests.inc({ route, status: String(status) });
    this.latency.observe({ route }, seconds);
  }

  readonly #beforeRender: (() => void)[] = [];

  /** Runs `fn` before each render (a native front moves its records in); returns the unhook. */
  beforeRender(fn: () => void): () => void {
    this.#beforeRender.push(fn);
    return () => {
      const i = this.#beforeRender.indexOf(fn);
      if (i >= 0) this.#beforeRender.splice(i, 1);
    };
  }

  render(): string {
    for (const fn of this.#beforeRender) fn();
    return this.registry.render();
  }
}
