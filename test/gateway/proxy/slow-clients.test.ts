/**
 * 1,000 concurrent slow clients on the uWS front, each trickling a 1 KiB
 * body to a passthrough route in 4 pieces 100 ms apart: every one gets its
 * bytes echoed by the real upstream, and the process RSS (measured after a
 * forced GC before the run and after it) grows by a bounded amount — the
 * gateway buffers at most each route's body limit per request and keeps no
 * per-request state once a request ends.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { DEFAULT_UPSTREAM_OPTIONS } from '../../../gateway/src/upstream/upstream-pools.ts';
import { call, type ProxyFixture, startProxyFixture } from './proxy-fixture.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const N = 1000;
const PIECES = 4;
const PIECE = 256;

function slowClient(port: number, i: number): Promise<boolean> {
  const body = Buffer.alloc(PIECE * PIECES, 0x61 + (i % 26));
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let got = Buffer.alloc(0);
    const timer = setTimeout(() => {
      s.destroy();
      resolve(false);
    }, 60_000);
    s.on('error', () => {});
    s.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d]);
      const text = got.toString('latin1');
      const head = text.indexOf('\r\n\r\n');
      if (head >= 0 && got.length - head - 4 >= body.length) {
        clearTimeout(timer);
        s.destroy();
        resolve(text.startsWith('HTTP/1.1 200') && got.subarray(head + 4).equals(body));
      }
    });
    s.on('connect', async () => {
      s.write(
        `POST /raw/echo HTTP/1.1\r\nhost: x\r\nx-tenant-id: t1\r\ncontent-type: text/plain\r\ncontent-length: ${body.length}\r\n\r\n`,
      );
      for (let k = 0; k < PIECES; k++) {
        await new Promise((r) => setTimeout(r, 100));
        s.write(body.subarray(k * PIECE, (k + 1) * PIECE));
      }
    });
  });
}

describe('1,000 concurrent slow clients (uWS front, passthrough route)', () => {
  let f: ProxyFixture;
  before(async () => {
    // The app, the gateway and the 1,000 clients share this process's event loop: with the fault
    // tests' 300 ms upstream deadlines a burst of 1,000 requests would measure this process's own
    // saturation (504s), not the gateway. The production defaults apply here instead.
    f = await startProxyFixture({}, { upstream: DEFAULT_UPSTREAM_OPTIONS });
  });
  after(async () => {
    await f.close();
  });

  it('all answered, RSS growth bounded', async (t) => {
    // Warm up: pools, JIT, the first connections.
    await Promise.all(Array.from({ length: 50 }, (_, i) => slowClient(f.gw.ports.uws as number, i)));
    gc();
    const rss0 = process.memoryUsage().rss;
    let peak = rss0;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss);
    }, 20);
    const t0 = performance.now();
    const results = await Promise.all(Array.from({ length: N }, (_, i) => slowClient(f.gw.ports.uws as number, i)));
    const ms = performance.now() - t0;
    clearInterval(sampler);
    await new Promise((r) => setTimeout(r, 200));
    gc();
    const rss1 = process.memoryUsage().rss;
    const mb = (n: number) => (n / 1048576).toFixed(1);
    t.diagnostic(
      `${N} clients in ${ms.toFixed(0)} ms; RSS before ${mb(rss0)} MB, peak ${mb(peak)} MB, after ${mb(rss1)} MB`,
    );
    assert.equal(results.filter(Boolean).length, N, 'every client got its bytes back');
    // Client and upstream sockets live in this process too; the bound covers all three sides.
    assert.ok(peak - rss0 < 256 * 1048576, `peak growth ${mb(peak - rss0)} MB`);
    assert.ok(rss1 - rss0 < 64 * 1048576, `retained growth ${mb(rss1 - rss0)} MB`);
    assert.equal(f.gw.pipeline.inFlight, 0);
    const still = await call(f, `${f.base.uws}/raw/echo`, { body: 'ok' });
    assert.equal(still.status, 200);
  });
});
