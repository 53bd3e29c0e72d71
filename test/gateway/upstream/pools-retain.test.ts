/**
 * UpstreamPools.retain (a policy reload dropped every route to an origin):
 * the retired pool still serves what it holds — the request in flight and
 * the one queued behind it — and closes, its keep-alive socket with it, once
 * quiet; a request matched by the old routes takes it back; close(true)
 * reaches retired pools too. A real socket server as the upstream.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, describe, it } from 'node:test';
import { UpstreamPools, upstreamOptions } from '../../../gateway/src/upstream/upstream-pools.ts';

/** An upstream answering each request after `delayMs`, counting its open sockets. */
async function slowUpstream(delayMs: number) {
  const open = new Set<net.Socket>();
  const server = net.createServer((s) => {
    open.add(s);
    s.on('close', () => open.delete(s));
    s.on('data', () => {
      setTimeout(() => {
        if (!s.destroyed) s.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
      }, delayMs);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const origin = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  return {
    origin,
    open,
    close: async () => {
      for (const s of open) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

const get = (path: string) => ({ method: 'GET', path, headers: {}, body: undefined });

describe('UpstreamPools.retain', () => {
  const closers: (() => Promise<void>)[] = [];
  after(async () => {
    for (const c of closers) await c();
  });

  it('a retired pool serves its request in flight and its queued one, then closes with its sockets once quiet', async () => {
    const up = await slowUpstream(150);
    closers.push(up.close);
    const pools = new UpstreamPools(upstreamOptions({ connections: 1 }));
    const p = pools.pool(up.origin);
    const inFlight = p.request(get('/a'));
    const queued = p.request(get('/b'));
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(p.waiting, 1);
    pools.retain(new Set());
    assert.deepEqual(pools.retiredOrigins, [up.origin]);
    const [a, b] = await Promise.all([inFlight, queued]);
    assert.deepEqual([a.status, b.status], [200, 200]);
    const end = Date.now() + 3000;
    while ((pools.retiredOrigins.length > 0 || up.open.size > 0) && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.deepEqual(pools.retiredOrigins, [], 'closed once quiet');
    assert.equal(up.open.size, 0, 'its keep-alive connection closed');
    await pools.close();
  });

  it('a request of the old routes takes the retired pool back; close(true) ends a retired pool’s request', async () => {
    const up = await slowUpstream(10_000);
    closers.push(up.close);
    const pools = new UpstreamPools(upstreamOptions({ connections: 2 }));
    const first = pools.pool(up.origin);
    const held = first.request(get('/held'));
    await new Promise((r) => setTimeout(r, 30));
    pools.retain(new Set());
    assert.deepEqual(pools.retiredOrigins, [up.origin], 'busy: retired, not closed');
    assert.equal(pools.pool(up.origin), first, 'taken back, not a second pool');
    assert.deepEqual(pools.retiredOrigins, []);
    pools.retain(new Set());
    const t0 = Date.now();
    await pools.close(true);
    await assert.rejects(held);
    assert.ok(Date.now() - t0 < 2000, 'destroyed at once, not left to its timeouts');
  });
});
