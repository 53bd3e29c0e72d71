/** GET /healthz and /readyz. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Fixture, getText, startFixture } from './gateway-fixture.ts';

describe('health endpoints', () => {
  let f: Fixture;
  before(async () => {
    f = await startFixture();
  });
  after(() => f.close());

  it('healthz answers 200 on both fronts', async () => {
    for (const base of [f.base.uws, f.base.plain]) {
      const r = await getText(f, `${base}/healthz`);
      assert.equal(r.status, 200);
      assert.deepEqual(JSON.parse(r.text), { status: 'ok' });
    }
  });

  it('readyz follows the keys: 503 not_ready while no lease is possible', async () => {
    assert.equal((await getText(f, `${f.base.uws}/readyz`)).status, 200);
    f.keys.setReady(false);
    const r = await getText(f, `${f.base.uws}/readyz`);
    assert.equal(r.status, 503);
    assert.equal(JSON.parse(r.text).error.code, 'not_ready');
    f.keys.setReady(true);
    assert.equal((await getText(f, `${f.base.plain}/readyz`)).status, 200);
  });

  it('answers 404 and 405 with the error shape', async () => {
    const nf = await getText(f, `${f.base.uws}/nope`);
    assert.equal(nf.status, 404);
    assert.equal(JSON.parse(nf.text).error.code, 'not_found');
    const na = await getText(f, `${f.base.plain}/v1/encrypt/x`);
    assert.equal(na.status, 405);
  });
});
