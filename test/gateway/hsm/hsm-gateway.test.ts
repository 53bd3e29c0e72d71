/**
 * The pkcs11 backend end to end: a real gateway (uWS) with a SoftHSM2 token,
 * proxy routes with `backend: "pkcs11"` and `"native"` in front of a real
 * upstream on port 0, and the direct API with a key named in `hsm.keys`.
 * Ciphertexts cross between the backends both ways. Skipped with the reason
 * when SoftHSM is not installed, except under CI=true.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Agent, request } from 'undici';
import { decryptFields } from '../../../common/src/crypto/field-cipher.ts';
import { LocalGatewayKeys } from '../../../gateway/src/gateway-keys.ts';
import { type GatewayServer, startGateway } from '../../../gateway/src/gateway-server.ts';
import { HsmBackend } from '../../../gateway/src/hsm/hsm-backend.ts';
import { defaultCrypto } from '../../../native/index.ts';
import { createSoftHsmToken, type SoftHsmToken, softHsmSkip } from '../../support/softhsm.ts';
import { policySetOf, startUpstreams, type Upstreams } from '../proxy/proxy-fixture.ts';

const CARD = '4111 1111 1111 1111';

function policy(): unknown {
  const card = { select: '$.card.number', field: 'card.number' };
  return {
    id: 'hsmtest',
    key: 'orders',
    upstreams: { app: 'http://127.0.0.1:1' },
    defaults: {
      tenant: { from: 'header', header: 'x-tenant-id', trustedPeers: ['127.0.0.1', '::1'] },
      readers: { identities: ['billing'], roles: [], others: 'mask', mask: '****' },
      backend: 'pkcs11',
    },
    routes: [
      { method: 'POST', path: '/orders', upstream: 'app', request: [card] },
      { method: 'GET', path: '/orders/:id', upstream: 'app', response: [card] },
      // The upstream app serves /ct/… as /…: the same records through the native backend.
      { method: 'POST', path: '/ct/orders', upstream: 'app', backend: 'native', request: [card] },
      { method: 'GET', path: '/ct/orders/:id', upstream: 'app', backend: 'native', response: [card] },
    ],
  };
}

describe('pkcs11 backend in the gateway (SoftHSM2)', { skip: softHsmSkip() }, () => {
  let token: SoftHsmToken;
  let hsm: HsmBackend;
  let keys: LocalGatewayKeys;
  let up: Upstreams;
  let gw: GatewayServer;
  let agent: Agent;
  let base: string;

  before(async () => {
    token = createSoftHsmToken();
    hsm = await HsmBackend.open({
      module: token.modulePath,
      tokenLabel: token.tokenLabel,
      pin: token.pin,
      sessions: 2,
      keys: ['hsm-orders'],
      crypto: defaultCrypto(),
    });
    up = await startUpstreams();
    const policies = policySetOf(policy(), 'hsm');
    keys = new LocalGatewayKeys();
    gw = await startGateway({
      keys,
      hsm,
      uws: { host: '127.0.0.1', port: 0 },
      log: () => {},
      proxy: {
        policies,
        upstreamUrls: new Map([['app', new URL(`http://127.0.0.1:${up.appPort}`)]]),
        callerHeaders: { identity: 'x-okcm-caller' },
      },
    });
    agent = new Agent({ keepAliveTimeout: 1000 });
    base = `http://127.0.0.1:${gw.ports.uws}`;
  });

  after(async () => {
    await agent?.close();
    await gw?.close();
    keys?.close();
    await up?.close();
    await hsm?.close();
    token?.cleanup();
  });

  async function call(path: string, body?: unknown, headers: Record<string, string> = {}) {
    const res = await request(`${base}${path}`, {
      method: body === undefined ? 'GET' : 'POST',
      dispatcher: agent,
      headers: {
        'x-tenant-id': 't1',
        'x-okcm-tenant': 't1',
        'x-okcm-caller': 'billing',
        'content-type': 'application/json',
        ...headers,
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.body.text();
    return { status: res.statusCode, json: text ? JSON.parse(text) : undefined, text };
  }

  it('proxy: a pkcs11 route encrypts in the token; the native route reads it, and the other way round', async () => {
    const opsBefore = hsm.stats().operations;
    const r1 = await call('/orders', { card: { number: CARD }, note: 'token' });
    assert.equal(r1.status, 201);
    const stored = JSON.parse(up.orders.get('1') as string);
    assert.match(stored.card.number, /^okcm:1:/);
    assert.ok(!(up.received.at(-1)?.body.toString() ?? '').includes(CARD), 'no plaintext reached the upstream');
    assert.ok(hsm.stats().operations > opsBefore, 'the token did the work');

    const viaToken = await call('/orders/1');
    assert.equal(viaToken.status, 200);
    assert.equal(viaToken.json.card.number, CARD);
    const viaNative = await call('/ct/orders/1');
    assert.equal(viaNative.json.card.number, CARD, 'token ciphertext opens natively');

    const opsNative = hsm.stats().operations;
    const r2 = await call('/ct/orders', { card: { number: CARD }, note: 'native' });
    assert.equal(r2.status, 201);
    assert.equal(hsm.stats().operations, opsNative, 'the native route does not touch the token');
    const back = await call('/orders/2');
    assert.equal(back.json.card.number, CARD, 'native ciphertext opens in the token');
    assert.equal((await call('/orders/1', undefined, { 'x-okcm-caller': 'someone' })).json.card.number, '****');
  });

  it('proxy: a tampered stored ciphertext fails that response (422), and the gateway goes on', async () => {
    const doc = JSON.parse(up.orders.get('1') as string);
    const ct: string = doc.card.number;
    const last = ct.at(-2) === 'A' ? 'B' : 'A';
    doc.card.number = `${ct.slice(0, -2)}${last}${ct.at(-1)}`;
    up.orders.set('9', JSON.stringify(doc));
    const r = await call('/orders/9');
    assert.equal(r.status, 422);
    assert.equal(r.json.error.code, 'field_decryption_failed');
    assert.equal((await call('/orders/1')).json.card.number, CARD);
  });

  it('direct API: a key in hsm.keys encrypts and decrypts in the token, batches per item, natively readable', async () => {
    const ctx = Buffer.from('invoice-7').toString('base64');
    const opsBefore = hsm.stats().operations;
    const enc = await call('/v1/encrypt/hsm-orders', {
      batch: [
        { plaintext: Buffer.from('alpha').toString('base64'), context: ctx, reference: 'a' },
        { plaintext: 'not base64!', reference: 'bad' },
        { plaintext: '', context: ctx, reference: 'empty' },
      ],
    });
    assert.equal(enc.status, 200);
    const [a, bad, empty] = enc.json.data.batch_results;
    assert.match(a.ciphertext, /^okcm:1:/);
    assert.ok(bad.error, 'a bad item gets its own error');
    assert.match(empty.ciphertext, /^okcm:1:/);
    assert.equal(hsm.stats().operations, opsBefore + 1 + 2, 'one unwrap + two GCM operations');
    // The key is cached now: the synchronous answer (HsmGatewayKeys.cachedEncryptionKey) is a token view too.
    const again = await call('/v1/encrypt/hsm-orders', { plaintext: Buffer.from('beta').toString('base64') });
    assert.equal(again.status, 200);
    assert.equal(hsm.stats().operations, opsBefore + 3 + 2, 'a cache hit still seals in the token');

    const dec = await call('/v1/decrypt/hsm-orders', {
      batch: [
        { ciphertext: a.ciphertext, context: ctx },
        { ciphertext: a.ciphertext, context: Buffer.from('other').toString('base64') },
        { ciphertext: empty.ciphertext, context: ctx },
      ],
    });
    assert.equal(dec.status, 200);
    const [ok, wrong, none] = dec.json.data.batch_results;
    assert.equal(Buffer.from(ok.plaintext, 'base64').toString(), 'alpha');
    assert.equal(wrong.error.code, 'decryption_failed');
    assert.equal(none.plaintext, '');

    // The same ciphertext opens natively with the gateway's L3 key.
    const l3 = await keys.decryptionKey('t1', 'hsm-orders', a.key_version);
    const [native] = decryptFields('t1', () => l3, [a.ciphertext], [Buffer.from('invoice-7')]);
    assert.deepEqual(native?.ok && native.plaintext.toString(), 'alpha');

    // A key not in hsm.keys stays native.
    const ops = hsm.stats().operations;
    const other = await call('/v1/encrypt/files', { plaintext: Buffer.from('x').toString('base64') });
    assert.equal(other.status, 200);
    assert.equal(hsm.stats().operations, ops);
  });

  it('metrics count token operations; the token holds only the transport key afterwards', async () => {
    const text = gw.metrics.registry.render();
    const ops = Number(/okcm_gateway_hsm_operations_total (\d+)/.exec(text)?.[1]);
    assert.ok(ops > 0);
    assert.match(text, /okcm_gateway_hsm_errors_total 0/);
    const t = hsm.token;
    const s = t.openSession();
    try {
      t.lib.C_FindObjectsInit(s, []);
      const objects = t.lib.C_FindObjects(s, 100);
      t.lib.C_FindObjectsFinal(s);
      assert.deepEqual(objects, [(await hsm.transportKey()).object]);
    } finally {
      t.closeSession(s);
    }
  });
});
