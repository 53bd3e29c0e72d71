/** GET /metrics: Prometheus text with request counts, ADR-604 latency buckets and key cache figures. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { b64, type Fixture, getText, postJson, startFixture } from './gateway-fixture.ts';

function value(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  assert.ok(line, `no series ${series}`);
  return Number(line.slice(series.length + 1));
}

describe('GET /metrics', () => {
  let f: Fixture;
  before(async () => {
    f = await startFixture();
  });
  after(() => f.close());

  it('counts requests by route and status and exposes the ADR-604 buckets', async () => {
    for (let i = 0; i < 3; i++) await postJson(f, `${f.base.uws}/v1/encrypt/m`, { plaintext: b64('x') });
    await postJson(f, `${f.base.plain}/v1/encrypt/m`, '{oops');
    const m = await getText(f, `${f.base.uws}/metrics`);
    assert.equal(m.status, 200);
    assert.match(m.type, /^text\/plain; version=0\.0\.4/);
    assert.equal(value(m.text, 'okcm_gateway_requests_total{route="encrypt",status="200"}'), 3);
    assert.equal(value(m.text, 'okcm_gateway_requests_total{route="encrypt",status="400"}'), 1);
    const les = [
      ...m.text.matchAll(/okcm_gateway_request_duration_seconds_bucket\{route="encrypt",le="([^"]+)"\}/g),
    ].map((x) => x[1]);
    assert.deepEqual(les, ['0.0001', '0.00025', '0.0005', '0.001', '0.0025', '0.005', '0.01', '+Inf']);
    assert.equal(value(m.text, 'okcm_gateway_request_duration_seconds_count{route="encrypt"}'), 4);
    assert.equal(value(m.text, 'okcm_gateway_batch_items_total{route="encrypt",outcome="ok"}'), 3);
    assert.ok(value(m.text, 'okcm_gateway_key_cache_hits_total') >= 2);
    assert.ok(value(m.text, 'okcm_gateway_key_cache_misses_total') >= 1);
    assert.equal(value(m.text, 'okcm_gateway_revocations_applied_total'), 0);
    assert.equal(value(m.text, 'okcm_gateway_ready'), 1);
    assert.ok(!m.text.includes(b64('x')));
  });
});
