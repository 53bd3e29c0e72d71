/**
 * A saturated upstream through the real gateway: every pooled connection
 * busy on a hanging node:http upstream, the wait queue full → 503
 * `upstream_busy` at once; a waiter past `queueTimeoutMs` → 504
 * `upstream_timeout`. Also the `upstreams.maxQueue` / `queueTimeoutMs`
 * configuration: defaults, bounds and errors naming the field.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { gatewayConfig } from '../../../gateway/src/gateway-config.ts';
import { DEFAULT_UPSTREAM_OPTIONS, upstreamOptions } from '../../../gateway/src/upstream/upstream-pools.ts';
import { call, type ProxyFixture, type Reply, startProxyFixture } from './proxy-fixture.ts';

const until = async (cond: () => boolean, ms: number, what: string) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
};

const code = (r: Reply): string => r.json().error.code;
const hangs = (f: ProxyFixture) => f.up.received.filter((r) => r.url.startsWith('/raw/hang')).length;
const waiting = (f: ProxyFixture) => f.gw.upstreams?.pool(`http://127.0.0.1:${f.up.appPort}`).waiting ?? -1;

describe('proxy: saturated upstream', () => {
  it('connections busy and the queue full → 503 upstream_busy at once; queued requests still wait', async () => {
    const f = await startProxyFixture(
      {},
      { upstream: { connections: 2, maxQueue: 3, headersTimeoutMs: 5000, queueTimeoutMs: 5000 } },
    );
    try {
      const body = Buffer.alloc(60 * 1024, 'a');
      const admitted = Array.from({ length: 5 }, (_, i) => call(f, `${f.base.uws}/raw/hang/${i}`, { body }));
      await until(() => hangs(f) === 2 && waiting(f) === 3, 3000, 'two requests upstream, three waiting');
      const t0 = performance.now();
      const busy = await Promise.all([1, 2, 3].map((i) => call(f, `${f.base.uws}/raw/hang/x${i}`, { body })));
      const ms = performance.now() - t0;
      assert.deepEqual(
        busy.map((r) => [r.status, code(r)]),
        Array(3).fill([503, 'upstream_busy']),
      );
      assert.ok(ms < 1000, `answered in ${ms} ms`);
      assert.ok(!busy[0]?.body.toString().includes(String(f.up.appPort)), 'no upstream address in the answer');
      assert.equal(hangs(f), 2, 'nothing of a refused request reached the upstream');
      assert.equal(waiting(f), 3, 'the waiters are still queued');
      // The gateway still answers other upstreams and its own routes meanwhile.
      const other = await call(f, `${f.base.uws}/refused/x`, { body: 'x' });
      assert.equal(other.status, 502);
      void Promise.allSettled(admitted);
    } finally {
      await f.close();
    }
  });

  it('a request waiting past queueTimeoutMs → 504 upstream_timeout, before the headers deadline', async () => {
    const f = await startProxyFixture(
      {},
      { upstream: { connections: 1, maxQueue: 8, headersTimeoutMs: 5000, queueTimeoutMs: 300 } },
    );
    try {
      const first = call(f, `${f.base.uws}/raw/hang/first`, { body: 'x' });
      await until(() => hangs(f) === 1, 3000, 'the first request upstream');
      const t0 = performance.now();
      const r = await call(f, `${f.base.uws}/raw/hang/second`, { body: 'x' });
      const ms = performance.now() - t0;
      assert.deepEqual([r.status, code(r)], [504, 'upstream_timeout']);
      assert.ok(ms >= 250 && ms < 2500, `${ms} ms`);
      assert.equal(waiting(f), 0);
      assert.equal(hangs(f), 1, 'the timed-out request was never sent');
      void first.catch(() => {});
    } finally {
      await f.close();
    }
  });
});

describe('upstreams.maxQueue and queueTimeoutMs configuration', () => {
  const core = { url: 'https://core:8443', certFile: 'c.pem', keyFile: 'k.pem', caFile: 'ca.pem' };
  const conf = (upstreams: unknown) => gatewayConfig({ core, fronts: { uws: { port: 0 } }, upstreams }, '/etc/kcm', {});

  it('defaults: 8 × connections waiters, 5 s wait; the file values pass through', () => {
    assert.equal(DEFAULT_UPSTREAM_OPTIONS.maxQueue, 8 * DEFAULT_UPSTREAM_OPTIONS.connections);
    assert.equal(DEFAULT_UPSTREAM_OPTIONS.queueTimeoutMs, 5000);
    assert.equal(upstreamOptions({ connections: 4 }).maxQueue, 32);
    assert.equal(upstreamOptions({ connections: 4, maxQueue: 0 }).maxQueue, 0);
    const c = conf({ maxQueue: 0, queueTimeoutMs: 250 });
    assert.deepEqual(c.upstreams.options, { maxQueue: 0, queueTimeoutMs: 250 });
  });

  it('names the bad field', () => {
    assert.throws(() => conf({ maxQueue: -1 }), /upstreams\.maxQueue/);
    assert.throws(() => conf({ queueTimeoutMs: 0 }), /upstreams\.queueTimeoutMs/);
    assert.throws(() => conf({ maxQueue: 1.5 }), /upstreams\.maxQueue/);
    assert.throws(() => upstreamOptions({ maxQueue: 2_000_000 }), /upstream\.maxQueue must be an integer from 0/);
    assert.throws(() => upstreamOptions({ queueTimeoutMs: 700_000 }), /upstream\.queueTimeoutMs/);
  });
});
