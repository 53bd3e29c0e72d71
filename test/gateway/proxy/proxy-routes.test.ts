/**
 * The policy reverse proxy against a real upstream: passthrough byte
 * identity (no parse, no re-serialisation, hop-by-hop headers dropped,
 * x-forwarded-for and the correlation id added), encryption on the way in
 * (the upstream never sees the plaintext; only the selected values change,
 * a repeated selected member is refused), decryption on the way out for an
 * allowed reader vs mask / ciphertext for others, tenant sources, body limits.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { parseEnvelope } from '../../../common/src/format/envelope.ts';
import { call, type ProxyFixture, startProxyFixture } from './proxy-fixture.ts';

const CARD = '4111 1111 1111 1111';

describe('proxy routes', () => {
  let f: ProxyFixture;
  before(async () => {
    f = await startProxyFixture();
  });
  after(async () => {
    await f.close();
  });

  it('passthrough: the upstream receives the very bytes sent and the client the very bytes answered', async () => {
    // Odd but valid JSON (spacing, key order, escapes, duplicate keys): any re-serialisation would change it.
    const weird = Buffer.from('{ "b":1,  "a" : "\\u00e9\\/x", "a": [1.0e0 ,-0]  }\n', 'utf8');
    for (const base of [f.base.uws, f.base.plain]) {
      const before = f.up.received.length;
      const r = await call(f, `${base}/raw/echo?q=1&x=%20`, {
        method: 'PUT',
        headers: {
          'content-type': 'application/json',
          'x-correlation-id': 'corr-123',
          'x-forwarded-for': '10.9.8.7',
        },
        body: weird,
      });
      assert.equal(r.status, 200);
      assert.deepEqual(r.body, weird, 'response bytes unchanged');
      const got = f.up.received[before];
      assert.ok(got);
      assert.equal(got.method, 'PUT');
      assert.equal(got.url, '/raw/echo?q=1&x=%20');
      assert.deepEqual(got.body, weird, 'request bytes unchanged');
      assert.equal(got.headers['x-correlation-id'], 'corr-123');
      assert.equal(got.headers['x-forwarded-for'], '10.9.8.7, 127.0.0.1');
      assert.equal(r.headers['x-correlation-id'], 'corr-123');
      assert.equal(r.headers['x-upstream'], 'app');
      assert.equal(r.headers['x-private-hop'], undefined, 'a header named by Connection is hop-by-hop');
      assert.notEqual(r.headers['keep-alive'], 'timeout=7', "the upstream's keep-alive is hop-by-hop");
    }
    // Non-JSON bodies pass too: a passthrough route does not look at the content type.
    const bin = Buffer.from([0, 255, 1, 254, 0x7b]);
    const r = await call(f, `${f.base.uws}/raw/echo`, { headers: { 'content-type': 'image/png' }, body: bin });
    assert.deepEqual([r.status, r.body], [200, bin]);
  });

  it('headers named like Object.prototype members pass both ways as any other header', async () => {
    for (const base of [f.base.uws, f.base.plain]) {
      const before = f.up.received.length;
      const r = await call(f, `${base}/raw/echo`, {
        method: 'PUT',
        headers: { constructor: 'c1', tostring: 't1', valueof: 'v1' },
        body: '{}',
      });
      assert.equal(r.status, 200, base);
      const got = f.up.received[before];
      assert.ok(got);
      assert.deepEqual(
        [got.headers.constructor, got.headers.tostring, got.headers.valueof],
        ['c1', 't1', 'v1'],
        `${base}: request headers reach the upstream as sent`,
      );
      assert.equal(r.headers.constructor, 'up-c', `${base}: the upstream's "constructor" header reaches the client`);
    }
  });

  it('encrypts selected fields on the way in: the upstream stores only ciphertext', async () => {
    const before = f.up.received.length;
    const doc = { card: { number: CARD, brand: 'visa' }, note: 'keep me' };
    const r = await call(f, `${f.base.uws}/orders`, {
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(doc),
    });
    assert.equal(r.status, 201);
    const got = f.up.received[before];
    assert.ok(got);
    const text = got.body.toString('utf8');
    assert.ok(!text.includes('4111'), 'the upstream never saw the card number');
    const stored = JSON.parse(text);
    assert.equal(stored.note, 'keep me');
    assert.equal(stored.card.brand, 'visa');
    const env = parseEnvelope(stored.card.number);
    assert.deepEqual([env.tenant, env.keyId], ['t1', 'orders']);
    assert.equal(got.headers['content-length'], String(got.body.length), 'length of the new body');
  });

  it('changes only the selected values, both ways: every other byte goes through as it was sent', async () => {
    // A 20-digit id (beyond 2^53), 1.50 and -0, spacing, key order, escapes elsewhere: a parse and
    // re-serialisation would change each of them.
    const head =
      '{ "id" : 12345678901234567890, "price": 1.50, "z": -0,\n  "card" : {"brand":"vi\\u0073a", "number":  ';
    const tail = ' },\t"note": "caf\\u00e9 \\/" }\n';
    const created = await call(f, `${f.base.uws}/orders`, {
      headers: { 'content-type': 'application/json' },
      body: `${head}"${CARD}"${tail}`,
    });
    assert.equal(created.status, 201);
    const id = created.json().id as string;
    const stored = f.up.orders.get(id) as string;
    assert.ok(stored.startsWith(head) && stored.endsWith(tail), 'only the card number changed on the way in');
    const envelope = stored.slice(head.length + 1, stored.length - tail.length - 1);
    assert.equal(parseEnvelope(envelope).tenant, 't1');

    const reader = await call(f, `${f.base.uws}/orders/${id}`, { headers: { 'x-okcm-caller': 'billing' } });
    assert.equal(reader.body.toString('utf8'), `${head}"${CARD}"${tail}`, 'and only it changed on the way out');
  });

  it('refuses a body that repeats a selected member: no consumer may read a clear duplicate', async () => {
    const before = f.up.received.length;
    for (const body of [
      `{"card": {"number": "x", "number": "${CARD}"}}`,
      `{"card": {"number": "${CARD}"}, "card": {"number": "x"}}`,
      `{"card": {"number": "x", "\\u006eumber": "${CARD}"}}`,
    ]) {
      const r = await call(f, `${f.base.uws}/orders`, { headers: { 'content-type': 'application/json' }, body });
      assert.equal(r.status, 400, body);
      assert.equal(r.json().error.code, 'json_duplicate_key');
      assert.ok(!r.body.toString().includes('4111'));
    }
    assert.equal(f.up.received.length, before, 'nothing was forwarded');
    // A repeat off the selected paths is the upstream's business.
    const ok = await call(f, `${f.base.uws}/orders`, {
      headers: { 'content-type': 'application/json' },
      body: `{"card": {"number": "${CARD}", "brand": "a", "brand": "b"}, "x": 1, "x": 2}`,
    });
    assert.equal(ok.status, 201);
  });

  it('decrypts for an allowed reader; masks or passes ciphertext for others', async () => {
    const created = await call(f, `${f.base.uws}/orders`, {
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ card: { number: CARD } }),
    });
    const id = created.json().id as string;
    const stored = JSON.parse(f.up.orders.get(id) as string).card.number as string;

    const reader = await call(f, `${f.base.uws}/orders/${id}`, { headers: { 'x-okcm-caller': 'billing' } });
    assert.equal(reader.status, 200);
    assert.equal(reader.json().card.number, CARD);
    assert.equal(reader.headers.etag, undefined, 'the stored validator does not describe the decrypted body');
    assert.equal(reader.headers['cache-control'], 'no-store');
    assert.deepEqual(reader.headers['set-cookie'], ['a=1', 'b=2'], 'repeated headers kept apart');

    const byRole = await call(f, `${f.base.plain}/orders/${id}`, { headers: { 'x-okcm-roles': 'x, support-lead' } });
    assert.equal(byRole.json().card.number, CARD);

    const other = await call(f, `${f.base.uws}/orders/${id}`, { headers: { 'x-okcm-caller': 'someone' } });
    assert.equal(other.status, 200);
    assert.equal(other.json().card.number, '****');
    assert.ok(!other.body.toString().includes('4111'));

    const ct = await call(f, `${f.base.uws}/ct/orders/${id}`);
    assert.equal(ct.status, 200);
    assert.equal(ct.json().card.number, stored, 'ciphertext unchanged for a non-reader');
    assert.equal(ct.headers.etag, '"v1"', 'nothing changed: the upstream bytes and validators pass');

    // Another tenant reading the record: its ciphertext does not open under t2 (opaque 422, nothing leaks).
    const wrong = await call(f, `${f.base.uws}/orders/${id}`, {
      headers: { 'x-okcm-caller': 'billing', 'x-tenant-id': 't2' },
    });
    assert.equal(wrong.status, 422);
    assert.equal(wrong.json().error.code, 'field_decryption_failed');
    assert.ok(!wrong.body.toString().includes('4111'));
  });

  it('a plaintext value where a ciphertext belongs is never passed on', async () => {
    const r = await call(f, `${f.base.uws}/dec/plain`, { headers: { 'x-okcm-caller': 'billing' } });
    assert.equal(r.status, 422);
    assert.ok(!r.body.toString().includes('4111'));
  });

  it('non-2xx upstream answers on a decrypting route pass with absent fields skipped', async () => {
    const r = await call(f, `${f.base.uws}/orders/999`, { headers: { 'x-okcm-caller': 'billing' } });
    assert.equal(r.status, 404);
    assert.deepEqual(r.json(), { error: 'no such order' });
  });

  it('tenant sources fail closed; body limits are enforced before forwarding', async () => {
    const before = f.up.received.length;
    const none = await call(f, `${f.base.uws}/raw/echo`, { headers: { 'x-tenant-id': '' }, body: 'x' });
    assert.equal(none.status, 400);
    const bad = await call(f, `${f.base.uws}/raw/echo`, { headers: { 'x-tenant-id': 'no spaces' }, body: 'x' });
    assert.equal(bad.json().error.code, 'invalid_tenant_id');
    const big = await call(f, `${f.base.uws}/raw/echo`, { body: Buffer.alloc(64 * 1024 + 1, 0x61) });
    assert.deepEqual([big.status, big.json().error.code], [413, 'body_too_large']);
    const bigPlain = await call(f, `${f.base.plain}/raw/echo`, { body: Buffer.alloc(64 * 1024 + 1, 0x61) });
    assert.equal(bigPlain.status, 413);
    assert.equal(f.up.received.length, before, 'nothing refused was forwarded');
    const notRouted = await call(f, `${f.base.uws}/nowhere`);
    assert.equal(notRouted.status, 404);
    const wrongMethod = await call(f, `${f.base.uws}/orders`, { method: 'DELETE' });
    assert.equal(wrongMethod.status, 405);
    const health = await call(f, `${f.base.uws}/healthz`);
    assert.equal(health.status, 200, 'the direct API still answers');
  });
});
