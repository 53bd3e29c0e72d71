/**
 * The native front in a real gateway (proxy-fixture.ts starts it beside the
 * uWS and h2c fronts): what it serves itself, with which keys, what it hands
 * to the pipeline and how, and how the gateway's metrics, policy reloads and
 * draining see it.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { parseEnvelope } from '../../../common/src/format/envelope.ts';
import { call, type ProxyFixture, policySetOf, startProxyFixture, testPolicy } from '../proxy/proxy-fixture.ts';
import { exchange, nativeFrontSkip } from './native-front-fixture.ts';

const CARD = '4111 1111 1111 1111';
const JSON_TYPE = { 'content-type': 'application/json' };
const order = (n: number) => JSON.stringify({ card: { number: CARD, brand: 'visa' }, n });

const until = async (cond: () => boolean, ms: number, what: string): Promise<void> => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
};

/** The PROXY v2 header naming 10.9.9.9:1234 → 127.0.0.1:80 (what a client must not be able to send through). */
function spoofedProxyHeader(): Buffer {
  return Buffer.concat([
    Buffer.from('\r\n\r\n\0\r\nQUIT\n', 'latin1'),
    Buffer.from([0x21, 0x11, 0, 12, 10, 9, 9, 9, 127, 0, 0, 1, 0x04, 0xd2, 0, 80]),
  ]);
}

const skip = nativeFrontSkip();

describe('the native front in the gateway', { skip }, () => {
  let f: ProxyFixture;
  before(async () => {
    f = await startProxyFixture();
  });
  after(async () => {
    await f?.close();
  });

  const stats = () => {
    const front = f.gw.nativeFront;
    assert.ok(front);
    return front.stats();
  };

  it('seals a request itself; the upstream stores only ciphertext, which opens through the pipeline', async () => {
    const served = stats().served;
    const before = f.up.received.length;
    const r = await call(f, `${f.base.native}/orders`, { headers: JSON_TYPE, body: order(1) });
    assert.equal(r.status, 201);
    assert.equal(stats().served, served + 1, 'served by the native front');
    const got = f.up.received[before];
    assert.ok(got);
    const text = got.body.toString('utf8');
    assert.ok(!text.includes('4111'), 'the upstream never saw the card number');
    const stored = JSON.parse(text);
    assert.deepEqual([stored.card.brand, stored.n], ['visa', 1]);
    const env = parseEnvelope(stored.card.number);
    assert.deepEqual([env.tenant, env.keyId], ['t1', 'orders']);
    const id = (r.json() as { id: string }).id;
    const back = await call(f, `${f.base.uws}/orders/${id}`, { headers: { 'x-okcm-caller': 'billing' } });
    assert.equal(back.json().card.number, CARD, 'the pipeline opens what the front sealed');
  });

  it('seals as the pipeline does: the same bytes upstream but for the envelopes, of the same key version', async () => {
    const body = '{ "card" : {"number":"4111 1111 1111 1111", "x": [1, 2.50, -0]}, "z": "\\u00e9" }';
    const bodies: string[] = [];
    for (const base of [f.base.uws, f.base.native]) {
      const before = f.up.received.length;
      const r = await call(f, `${base}/orders`, {
        headers: { ...JSON_TYPE, 'x-correlation-id': 'same', host: 'gw.example' },
        body,
      });
      assert.equal(r.status, 201, base);
      const got = f.up.received[before];
      assert.ok(got);
      const { 'content-length': _length, ...headers } = got.headers;
      bodies.push(`${JSON.stringify(headers)} ${got.body.toString('utf8')}`);
    }
    const envelopes = bodies.map((b) => /"(okcm:[^"]+)"/.exec(b)?.[1] as string);
    const [a, b] = envelopes.map((e) => parseEnvelope(e));
    assert.ok(a && b);
    assert.deepEqual([b.tenant, b.keyId, b.keyVersion], [a.tenant, a.keyId, a.keyVersion]);
    const masked = bodies.map((x) => x.replace(/"okcm:[^"]+"/g, '"<envelope>"'));
    assert.equal(masked[1], masked[0]);
  });

  it('reports each request it seals as one L3 use, as the pipeline does', async () => {
    // Uses of earlier tests are reported first (the front's records move every 25 ms).
    await new Promise((r) => setTimeout(r, 100));
    const uses: number[] = [];
    const keys = f.keys as typeof f.keys & { recordEncryptions?: (...a: [string, string, number, number]) => void };
    keys.recordEncryptions = (tenant, service, _version, count) => {
      if (tenant === 't1' && service === 'orders') uses.push(count);
    };
    try {
      const served = stats().served;
      for (let i = 0; i < 3; i++) await call(f, `${f.base.native}/orders`, { headers: JSON_TYPE, body: order(i) });
      assert.equal(stats().served, served + 3);
      await until(() => uses.reduce((a, b) => a + b, 0) >= 3, 2000, 'three uses reported');
      assert.equal(
        uses.reduce((a, b) => a + b, 0),
        3,
      );
    } finally {
      delete keys.recordEncryptions;
    }
  });

  it('a rotation switches the version it seals under at once', async () => {
    const seal = async (): Promise<number> => {
      const before = f.up.received.length;
      const r = await call(f, `${f.base.native}/orders`, { headers: JSON_TYPE, body: order(9) });
      assert.equal(r.status, 201);
      const got = f.up.received[before];
      assert.ok(got);
      const stored = JSON.parse(got.body.toString('utf8'));
      return parseEnvelope(stored.card.number).keyVersion;
    };
    const first = await seal();
    const next = f.keys.rotate('t1', 'orders');
    assert.equal(await seal(), next, 'the very next request');
    assert.notEqual(next, first);
  });

  it('a revoked key is refused within a second, as the pipeline refuses it', async () => {
    // A tenant of its own: its only version revoked.
    const headers = { ...JSON_TYPE, 'x-tenant-id': 'revokee' };
    const ok = await call(f, `${f.base.native}/orders`, { headers, body: order(1) });
    assert.equal(ok.status, 201);
    f.keys.revoke('revokee', 'orders', 1);
    const t0 = Date.now();
    const before = f.up.received.length;
    const viaNative = await call(f, `${f.base.native}/orders`, { headers, body: order(2) });
    const viaUws = await call(f, `${f.base.uws}/orders`, { headers, body: order(3) });
    assert.ok(Date.now() - t0 < 1000, 'refused within a second');
    assert.ok(viaNative.status >= 400, `refused (${viaNative.status})`);
    assert.equal(viaNative.status, viaUws.status);
    assert.equal(viaNative.json().error.code, viaUws.json().error.code);
    assert.equal(f.up.received.length, before, 'nothing reached the upstream');
  });

  it('without keys (no lease possible), the pipeline answers: 503, nothing forwarded', async () => {
    f.keys.setReady(false);
    try {
      const before = f.up.received.length;
      const r = await call(f, `${f.base.native}/orders`, { headers: JSON_TYPE, body: order(1) });
      assert.equal(r.status, 503);
      assert.equal(f.up.received.length, before);
    } finally {
      f.keys.setReady(true);
    }
  });

  it('hands a route it does not serve to the pipeline, with the client as the peer', async () => {
    const declined = stats().declined;
    const before = f.up.received.length;
    // A fresh connection: one that was declined before stays a tunnel.
    const answer = await exchange(
      Number(new URL(f.base.native).port),
      'GET /ct/orders/1 HTTP/1.1\r\nHost: x\r\nX-Tenant-Id: t1\r\nX-Correlation-Id: tunnelled\r\n\r\n',
    );
    assert.match(answer.toString('latin1'), /^HTTP\/1\.1 \d{3} [^\r]*\r\n[\s\S]*x-correlation-id: tunnelled\r\n/);
    assert.equal(stats().declined, declined + 1, 'a response-rule route goes to the pipeline');
    const got = f.up.received[before];
    assert.ok(got);
    assert.equal(got.headers['x-forwarded-for'], '127.0.0.1', 'the peer the pipeline saw is the client');
  });

  it('a client cannot name its own address through the tunnel', async () => {
    const before = f.up.received.length;
    const s = net.connect(Number(new URL(f.base.native).port), '127.0.0.1');
    const closed = new Promise<Buffer>((resolve) => {
      const chunks: Buffer[] = [];
      s.on('data', (d: Buffer) => chunks.push(d));
      s.on('close', () => resolve(Buffer.concat(chunks)));
      s.on('error', () => {});
    });
    await new Promise<void>((r) => s.on('connect', () => r()));
    // Declined (a route with response rules), so the connection becomes a tunnel…
    s.write('GET /ct/orders/1 HTTP/1.1\r\nHost: x\r\nX-Tenant-Id: t1\r\n\r\n');
    await until(() => f.up.received.length > before, 2000, 'the first request upstream');
    // …then a PROXY header naming another peer, and a request a trusted peer could make.
    s.write(
      Buffer.concat([
        spoofedProxyHeader(),
        Buffer.from('GET /raw/echo HTTP/1.1\r\nHost: x\r\nX-Tenant-Id: t1\r\n\r\n'),
      ]),
    );
    await closed;
    await new Promise((r) => setTimeout(r, 100));
    const spoofed = f.up.received
      .slice(before)
      .filter((x) => String(x.headers['x-forwarded-for']).includes('10.9.9.9'));
    assert.deepEqual(spoofed, [], 'no request reached the upstream as from the spoofed address');
  });

  it('the requests it serves are in the metrics, by route and status, with their latency', async () => {
    await call(f, `${f.base.native}/raw/echo`, { method: 'PUT', body: 'x' });
    const text = f.gw.metrics.render();
    const line = text
      .split('\n')
      .find((l) => l.startsWith('okcm_gateway_requests_total{route="proxy proxytest * /raw/*",status="200"}'));
    assert.ok(line, 'counted');
    assert.match(text, /okcm_gateway_request_duration_seconds_count\{route="proxy proxytest \* \/raw\/\*"\} [1-9]/);
  });

  it('a policy reload changes what it serves', async () => {
    const policy = testPolicy() as { routes: { path: string }[] };
    const without = { ...policy, routes: policy.routes.filter((r) => r.path !== '/raw/*') };
    f.gw.reloadPolicies(policySetOf(without));
    try {
      const r = await call(f, `${f.base.native}/raw/echo`, { method: 'PUT', body: 'x' });
      assert.equal(r.status, 404, 'the pipeline answers: no such route any more');
    } finally {
      f.gw.reloadPolicies(policySetOf(testPolicy()));
    }
    const r = await call(f, `${f.base.native}/raw/echo`, { method: 'PUT', body: 'x' });
    assert.equal(r.status, 200);
  });
});

describe('the native front while the gateway drains', { skip }, () => {
  it('hands every new request to the pipeline, which answers 503 not_ready', async () => {
    const f = await startProxyFixture();
    try {
      // A request in flight keeps the drain open.
      const hanging = call(f, `${f.base.uws}/raw/hang`).catch(() => undefined);
      await until(() => f.up.received.some((r) => r.url === '/raw/hang'), 2000, 'the hanging request upstream');
      const closing = f.gw.close({ drainMs: 1000 });
      const r = await call(f, `${f.base.native}/raw/echo`, { method: 'PUT', body: 'x' });
      assert.equal(r.status, 503);
      assert.equal(r.json().error.code, 'not_ready');
      await closing;
      await hanging;
    } finally {
      await f.close();
    }
  });
});

describe('the native front while the gateway drains, with its own request in flight', { skip }, () => {
  it('finishes that request within drainMs before it stops', async () => {
    const f = await startProxyFixture({}, { upstream: { headersTimeoutMs: 3000 } });
    try {
      const front = f.gw.nativeFront;
      assert.ok(front);
      const served = front.stats().served;
      // /raw/hang is served natively and answered only when the upstream is told to (below).
      const pending = call(f, `${f.base.native}/raw/hang/drain`);
      await until(
        () => front.stats().served === served + 1 && f.up.received.some((r) => r.url === '/raw/hang/drain'),
        2000,
        'the request upstream',
      );
      assert.equal(front.stats().inFlight, 1);
      const closing = f.gw.close({ drainMs: 2000 });
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(front.stats().inFlight, 1, 'still waiting for it');
      f.up.releaseHanging();
      const r = await pending;
      assert.equal(r.status, 200, 'answered, not cut');
      await closing;
    } finally {
      await f.close();
    }
  });
});

describe('the native front’s upstream pool', { skip }, () => {
  it('connections busy and the queue full → 503 upstream_busy at once; waiters past queueTimeoutMs → 504', async () => {
    const f = await startProxyFixture(
      {},
      { upstream: { connections: 2, maxQueue: 3, headersTimeoutMs: 1500, queueTimeoutMs: 800 } },
    );
    try {
      const hangs = () => f.up.received.filter((r) => r.url.startsWith('/raw/hang')).length;
      const front = f.gw.nativeFront;
      assert.ok(front);
      const served = front.stats().served;
      const admitted = Array.from({ length: 5 }, (_, i) => call(f, `${f.base.native}/raw/hang/${i}`));
      await until(() => hangs() === 2 && front.stats().served === served + 5, 3000, 'two upstream, three queued');
      const t0 = performance.now();
      const busy = await Promise.all([1, 2, 3].map((i) => call(f, `${f.base.native}/raw/hang/x${i}`)));
      assert.ok(performance.now() - t0 < 500, 'answered at once');
      assert.deepEqual(
        busy.map((r) => [r.status, r.json().error.code]),
        Array(3).fill([503, 'upstream_busy']),
      );
      assert.equal(hangs(), 2, 'nothing of a refused request reached the upstream');
      const settled = await Promise.all(admitted);
      const codes = settled.map((r) => `${r.status} ${r.json().error.code}`).sort();
      assert.deepEqual(codes.slice(2), Array(3).fill('504 upstream_timeout'), 'the waiters timed out in the queue');
    } finally {
      await f.close();
    }
  });
});
