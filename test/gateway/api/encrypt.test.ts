/** POST /v1/encrypt: single and batch, encodings, per-item errors, one native call per request. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { parseEnvelope } from '../../../common/src/format/envelope.ts';
import { b64, type Fixture, postJson, startFixture } from './gateway-fixture.ts';

describe('POST /v1/encrypt', () => {
  let f: Fixture;
  before(async () => {
    f = await startFixture();
  });
  after(() => f.close());

  for (const front of ['uws', 'plain'] as const) {
    it(`encrypts one plaintext under the current version (${front})`, async () => {
      const r = await postJson(f, `${f.base[front]}/v1/encrypt/orders`, { plaintext: b64('hello') });
      assert.equal(r.status, 200);
      assert.equal(r.json.data.key_version, 1);
      const env = parseEnvelope(r.json.data.ciphertext);
      assert.deepEqual([env.tenant, env.keyId, env.keyVersion], ['t1', 'orders', 1]);
      assert.ok(!r.json.data.ciphertext.includes(b64('hello')));
    });
  }

  it('takes the key and tenant from the body, and UTF-8 plaintext with encoding utf8', async () => {
    const r = await postJson(
      f,
      `${f.base.uws}/v1/encrypt`,
      { tenant: 't2', key: 'k', plaintext: 'grüße', encoding: 'utf8' },
      {},
    );
    assert.equal(r.status, 200);
    const env = parseEnvelope(r.json.data.ciphertext);
    assert.deepEqual([env.tenant, env.keyId], ['t2', 'k']);
  });

  it('refuses UTF-8 plaintext with a lone surrogate (it has no UTF-8 form) instead of sealing U+FFFD', async () => {
    for (const plaintext of ['a\ud800b', 'x\udc00', '\ud83d']) {
      const r = await postJson(f, `${f.base.uws}/v1/encrypt/orders`, { plaintext, encoding: 'utf8' });
      assert.equal(r.status, 400, JSON.stringify(plaintext));
      assert.equal(r.json.error.code, 'bad_request');
    }
    const ok = await postJson(f, `${f.base.uws}/v1/encrypt/orders`, {
      plaintext: 'emoji \ud83d\ude00',
      encoding: 'utf8',
    });
    assert.equal(ok.status, 200, 'a surrogate pair is fine');
  });

  it('seals a whole batch in one native call (one L3 wrap) with per-item errors', async () => {
    const { handle } = await f.keys.encryptionKey('t1', 'batch');
    const before = handle.info().encryptions;
    const batch = [
      { plaintext: b64('a'), reference: 'r0' },
      { plaintext: 'not base64!', reference: 'r1' },
      { plaintext: b64('c'), context: b64('ctx'), reference: 'r2' },
      { plaintext: b64('d'), context: 'bad context', reference: 'r3' },
      { reference: 'r4' },
    ];
    const r = await postJson(f, `${f.base.uws}/v1/encrypt/batch`, { batch });
    assert.equal(r.status, 200);
    const results = r.json.data.batch_results;
    assert.equal(results.length, 5);
    assert.deepEqual(
      results.map((x: any) => [x.reference, x.error?.code ?? 'ok']),
      [
        ['r0', 'ok'],
        ['r1', 'bad_request'],
        ['r2', 'ok'],
        ['r3', 'invalid_context'],
        ['r4', 'bad_request'],
      ],
    );
    assert.equal(handle.info().encryptions - before, 1, 'one data key wrapped under L3 for the request');
    const [a, c] = [parseEnvelope(results[0].ciphertext), parseEnvelope(results[2].ciphertext)];
    assert.deepEqual(a.wrappedKey, c.wrappedKey, 'items share the request data key');
  });

  it('accepts Vault-style batch_input', async () => {
    const r = await postJson(f, `${f.base.plain}/v1/encrypt/orders`, { batch_input: [{ plaintext: b64('x') }] });
    assert.equal(r.status, 200);
    assert.equal(r.json.data.batch_results.length, 1);
  });

  it('answers a single bad item with its error status', async () => {
    const r = await postJson(f, `${f.base.uws}/v1/encrypt/orders`, { plaintext: 12 });
    assert.equal(r.status, 400);
    assert.equal(r.json.error.code, 'bad_request');
    const big = await postJson(f, `${f.base.uws}/v1/encrypt/orders`, {
      plaintext: Buffer.alloc((1 << 20) + 1).toString('base64'),
    });
    assert.equal(big.status, 413);
    assert.equal(big.json.error.code, 'plaintext_too_large');
  });

  it('refuses requests without a key, with conflicting keys or bad ids', async () => {
    assert.equal((await postJson(f, `${f.base.uws}/v1/encrypt`, { plaintext: b64('x') })).status, 400);
    const conflict = await postJson(f, `${f.base.uws}/v1/encrypt/a`, { key: 'b', plaintext: b64('x') });
    assert.equal(conflict.status, 400);
    const badKey = await postJson(f, `${f.base.uws}/v1/encrypt/bad%20key`, { plaintext: b64('x') });
    assert.equal(badKey.json.error.code, 'invalid_key_id');
    const badTenant = await postJson(
      f,
      `${f.base.uws}/v1/encrypt/k`,
      { plaintext: b64('x') },
      { 'x-okcm-tenant': 'no/slash' },
    );
    assert.equal(badTenant.json.error.code, 'invalid_tenant_id');
    const noTenant = await postJson(f, `${f.base.uws}/v1/encrypt/k`, { plaintext: b64('x') }, {});
    assert.equal(noTenant.status, 400);
  });

  it('refuses callers that are neither certified nor trusted peers (401)', async () => {
    const g = await startFixture({ trust: () => false });
    try {
      const r = await postJson(g, `${g.base.uws}/v1/encrypt/k`, { plaintext: b64('x') });
      assert.equal(r.status, 401);
      assert.equal(r.json.error.code, 'unauthenticated');
      assert.equal((await postJson(g, `${g.base.plain}/v1/encrypt/k`, { plaintext: b64('x') })).status, 401);
    } finally {
      await g.close();
    }
  });

  it('answers 503 not_ready when the keys cannot be obtained', async () => {
    f.keys.setReady(false);
    try {
      const r = await postJson(f, `${f.base.uws}/v1/encrypt/orders`, { plaintext: b64('x') });
      assert.equal(r.status, 503);
      assert.equal(r.json.error.code, 'not_ready');
    } finally {
      f.keys.setReady(true);
    }
  });

  it('reports one L3 use per encrypt, datakey and rewrap request to the key source (the Core budget)', async () => {
    const uses: string[] = [];
    const keys = f.keys as unknown as {
      recordEncryptions?: ((t: string, s: string, v: number, n: number) => void) | undefined;
    };
    const saved = keys.recordEncryptions;
    keys.recordEncryptions = (t, s, v, n) => uses.push(`${t}/${s}/v${v}:${n}`);
    try {
      const enc = await postJson(f, `${f.base.uws}/v1/encrypt/orders`, {
        batch: [{ plaintext: b64('a') }, { plaintext: b64('b') }],
      });
      assert.equal(enc.status, 200);
      assert.equal((await postJson(f, `${f.base.uws}/v1/datakey/wrapped/orders`, {})).status, 200);
      const ct = enc.json.data.batch_results[0].ciphertext;
      assert.equal((await postJson(f, `${f.base.uws}/v1/rewrap/orders`, { ciphertext: ct })).status, 200);
      assert.deepEqual(uses, ['t1/orders/v1:1', 't1/orders/v1:1', 't1/orders/v1:1']);
    } finally {
      keys.recordEncryptions = saved;
    }
  });
});
