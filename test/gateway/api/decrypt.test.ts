/** POST /v1/decrypt: round trips, opaque failures, per-item errors in a batch. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { b64, type Fixture, postJson, startFixture } from './gateway-fixture.ts';

describe('POST /v1/decrypt', () => {
  let f: Fixture;
  let ct: string;
  before(async () => {
    f = await startFixture();
    const r = await postJson(f, `${f.base.uws}/v1/encrypt/orders`, {
      plaintext: b64('secret-1'),
      context: b64('row-7'),
    });
    ct = r.json.data.ciphertext;
  });
  after(() => f.close());

  for (const front of ['uws', 'plain'] as const) {
    it(`returns the plaintext with the same context (${front})`, async () => {
      const r = await postJson(f, `${f.base[front]}/v1/decrypt/orders`, { ciphertext: ct, context: b64('row-7') });
      assert.equal(r.status, 200);
      assert.equal(Buffer.from(r.json.data.plaintext, 'base64').toString(), 'secret-1');
    });
  }

  it('returns UTF-8 text with encoding utf8, and needs no key in the path', async () => {
    const r = await postJson(f, `${f.base.uws}/v1/decrypt`, {
      ciphertext: ct,
      context: b64('row-7'),
      encoding: 'utf8',
    });
    assert.equal(r.json.data.plaintext, 'secret-1');
  });

  it('fails opaquely for a wrong context, tenant, key, tampered or foreign text', async () => {
    const flipped = `${ct.slice(0, -3)}${ct.at(-3) === 'A' ? 'B' : 'A'}${ct.slice(-2)}`;
    const cases: [unknown, Record<string, string>, string][] = [
      [{ ciphertext: ct, context: b64('row-8') }, { 'x-okcm-tenant': 't1' }, 'orders'],
      [{ ciphertext: ct }, { 'x-okcm-tenant': 't1' }, 'orders'],
      [{ ciphertext: ct, context: b64('row-7') }, { 'x-okcm-tenant': 't2' }, 'orders'],
      [{ ciphertext: ct, context: b64('row-7') }, { 'x-okcm-tenant': 't1' }, 'other'],
      [{ ciphertext: flipped, context: b64('row-7') }, { 'x-okcm-tenant': 't1' }, 'orders'],
      [{ ciphertext: 'vault:v1:abcd' }, { 'x-okcm-tenant': 't1' }, 'orders'],
      [{ ciphertext: 'okcm:2:AAAA' }, { 'x-okcm-tenant': 't1' }, 'orders'],
    ];
    const bodies = new Set<string>();
    for (const [body, headers, key] of cases) {
      const r = await postJson(f, `${f.base.uws}/v1/decrypt/${key}`, body, headers);
      assert.equal(r.status, 400);
      assert.equal(r.json.error.code, 'decryption_failed');
      bodies.add(JSON.stringify(r.json));
    }
    assert.equal(bodies.size, 1, 'every failure has the same body');
  });

  it('gives each bad batch item its own error and opens the rest', async () => {
    const r = await postJson(f, `${f.base.plain}/v1/decrypt/orders`, {
      batch: [
        { ciphertext: ct, context: b64('row-7'), reference: 'good' },
        { ciphertext: ct, context: b64('nope'), reference: 'ctx' },
        { ciphertext: 42, reference: 'type' },
        { ciphertext: ct, context: b64('row-7') },
      ],
    });
    assert.equal(r.status, 200);
    const out = r.json.data.batch_results;
    assert.equal(Buffer.from(out[0].plaintext, 'base64').toString(), 'secret-1');
    assert.equal(out[0].reference, 'good');
    assert.equal(out[1].error.code, 'decryption_failed');
    assert.equal(out[2].error.code, 'bad_request');
    assert.ok(out[3].plaintext);
  });

  it('refuses a UTF-8 answer for binary plaintext, per item', async () => {
    const enc = await postJson(f, `${f.base.uws}/v1/encrypt/orders`, { plaintext: b64(Buffer.from([0xff, 0xfe])) });
    const r = await postJson(f, `${f.base.uws}/v1/decrypt/orders`, {
      ciphertext: enc.json.data.ciphertext,
      encoding: 'utf8',
    });
    assert.equal(r.status, 400);
    assert.equal(r.json.error.code, 'bad_request');
  });

  it('stops decrypting a revoked version', async () => {
    const enc = await postJson(f, `${f.base.uws}/v1/encrypt/revoked`, { plaintext: b64('x') });
    f.keys.revoke('t1', 'revoked', 1);
    const r = await postJson(f, `${f.base.uws}/v1/decrypt/revoked`, { ciphertext: enc.json.data.ciphertext });
    assert.equal(r.json.error.code, 'decryption_failed');
  });
});
