/**
 * The direct API refuses contexts in the proxy's reserved domain, so a
 * proxied field (bound to a context starting with "okcm/proxy/v1\0") can be
 * neither opened past the route's readers nor forged through /v1/*.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { PROXY_CONTEXT_DOMAIN } from '../../../gateway/src/pipeline/context-domains.ts';
import { call, type ProxyFixture, startProxyFixture } from '../proxy/proxy-fixture.ts';

describe('direct API: reserved contexts', () => {
  let f: ProxyFixture;
  before(async () => {
    f = await startProxyFixture();
  });
  after(() => f.close());

  const direct = (path: string, body: unknown) =>
    call(f, `${f.base.uws}${path}`, {
      headers: { 'content-type': 'application/json', 'x-okcm-tenant': 't1' },
      body: JSON.stringify(body),
    });

  it('a proxied field cannot be decrypted, and no field can be encrypted, with a proxy-domain context', async () => {
    const stored = await call(f, `${f.base.uws}/orders`, {
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ id: 'rc1', card: { number: '4111 1111 1111 1111' } }),
    });
    assert.equal(stored.status, 201);
    const ciphertext = stored.json().stored.card.number as string;
    assert.match(ciphertext, /^okcm:1:/);
    for (const tail of ['', 'x', '\u0009proxytest']) {
      const context = Buffer.concat([PROXY_CONTEXT_DOMAIN, Buffer.from(tail, 'latin1')]).toString('base64');
      const d = await direct('/v1/decrypt/orders', { ciphertext, context });
      assert.equal(d.status, 400);
      assert.equal(d.json().error.code, 'invalid_context');
      assert.doesNotMatch(d.body.toString(), /4111/);
      const e = await direct('/v1/encrypt/orders', { plaintext: 'eA==', context });
      assert.equal(e.status, 400);
      const b = await direct('/v1/decrypt/orders', { batch: [{ ciphertext, context }] });
      assert.doesNotMatch(b.body.toString(), /4111/);
    }
  });

  it('contexts that only contain the domain later, or a prefix of it, are ordinary', async () => {
    for (const c of [Buffer.from('okcm/proxy/v1'), Buffer.concat([Buffer.from('a'), PROXY_CONTEXT_DOMAIN])]) {
      const context = c.toString('base64');
      const e = await direct('/v1/encrypt/orders', { plaintext: 'eA==', context });
      assert.equal(e.status, 200);
      const d = await direct('/v1/decrypt/orders', { ciphertext: e.json().data.ciphertext, context });
      assert.equal(d.json().data.plaintext, 'eA==');
    }
  });
});
