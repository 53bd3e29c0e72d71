/**
 * The gateway's upstream HTTP/1.1 client (gateway/src/upstream/h1-client.ts)
 * against real servers on loopback: node:http (keep-alive, close, slow),
 * raw net servers (stale keep-alive, garbage), and node:https with a test
 * PKI made here.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { makeTestPki } from '../../../common/src/pki/index.ts';
import { H1Pool, type H1PoolOptions } from '../../../gateway/src/upstream/h1-client.ts';
import { idleLimitMs, KEEP_ALIVE_MARGIN_MS } from '../../../gateway/src/upstream/h1-connection.ts';
import { UpstreamFailure } from '../../../gateway/src/upstream/upstream-failure.ts';

const OPTS: H1PoolOptions = {
  connections: 4,
  maxQueue: 64,
  queueTimeoutMs: 2000,
  connectTimeoutMs: 2000,
  headersTimeoutMs: 2000,
  bodyTimeoutMs: 2000,
  keepAliveTimeoutMs: 4000,
  maxResponseBytes: 1 << 20,
};

const closers: (() => unknown)[] = [];
after(async () => {
  for (const c of closers.reverse()) await c();
});

async function listen(server: net.Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const open = new Set<net.Socket>();
  server.on('connection', (s: net.Socket) => open.add(s.on('close', () => open.delete(s))));
  closers.push(() => {
    for (const s of open) s.destroy();
    return new Promise((r) => server.close(r));
  });
  return (server.address() as AddressInfo).port;
}

function pool(port: number, o: Partial<H1PoolOptions> = {}, scheme = 'http'): H1Pool {
  const p = new H1Pool(new URL(`${scheme}://127.0.0.1:${port}`), { ...OPTS, ...o });
  closers.push(() => p.close(true));
  return p;
}

async function until(f: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) assert.fail('condition not reached in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function kindOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (err) {
    assert.ok(err instanceof UpstreamFailure, String(err));
    return err.kind;
  }
}

function echoServer(seen: {
  sockets: Set<net.Socket>;
  requests: { method: string; url: string; headers: http.IncomingHttpHeaders; body: string }[];
}) {
  const server = http.createServer((req, res) => {
    seen.sockets.add(req.socket);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      seen.requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      if (req.url === '/close') res.setHeader('connection', 'close');
      if (req.url === '/chunked') {
        res.write('a'.repeat(3000));
        res.end('b');
        return;
      }
      if (req.url?.startsWith('/slow')) {
        setTimeout(() => res.end('late'), 300);
        return;
      }
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ method: req.method, url: req.url, body }));
    });
  });
  server.keepAliveTimeout = 10_000;
  return server;
}

describe('upstream HTTP/1.1 client', () => {
  it('sends method, target, host and headers; body with its length; reuses one keep-alive connection', async () => {
    const seen = {
      sockets: new Set<net.Socket>(),
      requests: [] as { method: string; url: string; headers: http.IncomingHttpHeaders; body: string }[],
    };
    const port = await listen(echoServer(seen));
    const p = pool(port);
    for (let i = 0; i < 5; i++) {
      const r = await p.request({
        method: 'POST',
        path: `/a?i=${i}`,
        headers: { 'x-a': 'v', 'x-multi': ['1', '2'] },
        body: Buffer.from('{"k":1}'),
      });
      assert.equal(r.status, 200);
      assert.deepEqual(JSON.parse(r.body.toString()), { method: 'POST', url: `/a?i=${i}`, body: '{"k":1}' });
    }
    assert.equal(seen.sockets.size, 1, 'one connection reused');
    const h = seen.requests[0]?.headers;
    assert.equal(h?.host, `127.0.0.1:${port}`);
    assert.equal(h?.['x-a'], 'v');
    assert.equal(h?.['x-multi'], '1, 2');
    assert.equal(h?.['content-length'], '7');
    const empty = await p.request({ method: 'POST', path: '/e', headers: {} });
    assert.equal(empty.status, 200);
    assert.equal(seen.requests.at(-1)?.headers['content-length'], '0');
    // Bodies on both sides of the one-buffer limit (16 KB) arrive whole, on the same connection.
    for (const size of [16 * 1024, 16 * 1024 + 1, 200_000]) {
      const body = Buffer.alloc(size, 'x');
      const r = await p.request({ method: 'PUT', path: `/big/${size}`, headers: {}, body });
      assert.equal(r.status, 200);
      assert.equal(seen.requests.at(-1)?.body, body.toString(), `${size} bytes`);
      assert.equal(seen.requests.at(-1)?.headers['content-length'], String(size));
    }
    assert.equal(seen.sockets.size, 1, 'still one connection');
  });

  it('chunked answers are read whole; Connection: close answers drop the connection', async () => {
    const seen = { sockets: new Set<net.Socket>(), requests: [] as never[] };
    const port = await listen(echoServer(seen as never));
    const p = pool(port);
    const r = await p.request({ method: 'GET', path: '/chunked', headers: {} });
    assert.equal(r.body.toString(), `${'a'.repeat(3000)}b`);
    // The idle connection is reused for /close, which then drops it; the next request opens a new one.
    await p.request({ method: 'GET', path: '/close', headers: {} });
    await until(() => p.size === 0);
    assert.equal((await p.request({ method: 'GET', path: '/again', headers: {} })).status, 200);
    assert.equal(seen.sockets.size, 2);
  });

  it('answers trickling in on several connections at once (close-delimited, chunked, split heads) are each read whole', async () => {
    // Plain TCP connections all read into one shared buffer (h1-connection.ts): interleaved reads must not mix.
    const server = net.createServer((s) => {
      s.once('data', async (d) => {
        const url = /^GET (\S+)/.exec(d.toString('latin1'))?.[1] ?? '/';
        const n = Number(url.slice(2));
        const body = Buffer.alloc(20_000 + n * 1000, 97 + n);
        const pieces =
          url[1] === 'c'
            ? [Buffer.from('HTTP/1.1 200 OK\r\nx-n: '), Buffer.from(`${n}\r\n\r\n`), body]
            : [
                Buffer.from('HTTP/1.1 200 OK\r\ntransfer-'),
                Buffer.from(`encoding: chunked\r\nx-n: ${n}\r\n\r\n${body.length.toString(16)}\r\n`),
                body,
                Buffer.from('\r\n0\r\n\r\n'),
              ];
        for (const piece of pieces) {
          for (let at = 0; at < piece.length; at += 7000) {
            s.write(piece.subarray(at, at + 7000));
            await new Promise((r) => setTimeout(r, 3));
          }
        }
        if (url[1] === 'c') s.end();
      });
    });
    const port = await listen(server);
    const p = pool(port, { connections: 8 });
    const paths = ['/c1', '/k2', '/c3', '/k4', '/c5', '/k6'];
    const answers = await Promise.all(paths.map((path) => p.request({ method: 'GET', path, headers: {} })));
    answers.forEach((r, i) => {
      const n = Number((paths[i] as string).slice(2));
      assert.equal(r.status, 200);
      assert.equal(r.headers['x-n'], String(n));
      assert.deepEqual(r.body, Buffer.alloc(20_000 + n * 1000, 97 + n), paths[i]);
    });
  });

  it('at most `connections` at once; the rest wait in order and all complete', async () => {
    const seen = { sockets: new Set<net.Socket>(), requests: [] as never[] };
    const port = await listen(echoServer(seen as never));
    const p = pool(port, { connections: 2 });
    const all = await Promise.all(
      Array.from({ length: 10 }, (_, i) => p.request({ method: 'GET', path: `/slow/${i}`, headers: {} })),
    );
    assert.ok(all.every((r) => r.body.toString() === 'late'));
    assert.equal(seen.sockets.size, 2);
  });

  it('a stale idle connection closed by the upstream: an idempotent request is retried on a new one', async () => {
    let n = 0;
    // Answers one request per connection, then closes it without saying so (no Connection: close).
    const server = net.createServer((s) => {
      n++;
      s.once('data', () => {
        s.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
        setTimeout(() => s.destroy(), 5);
      });
    });
    const port = await listen(server);
    const p = pool(port);
    assert.equal((await p.request({ method: 'GET', path: '/', headers: {} })).body.toString(), 'ok');
    await new Promise((r) => setTimeout(r, 30));
    assert.equal((await p.request({ method: 'GET', path: '/', headers: {} })).body.toString(), 'ok');
    assert.equal(n, 2);
  });

  it('failures are typed: refused, reset mid-answer, garbage, too large, headers and body deadlines', async () => {
    const free = await listen(net.createServer());
    await new Promise<void>((r) => setTimeout(r, 0));
    const refusedPort = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const port = (s.address() as AddressInfo).port;
        s.close(() => resolve(port));
      });
    });
    void free;
    assert.equal(await kindOf(pool(refusedPort).request({ method: 'GET', path: '/', headers: {} })), 'unavailable');

    const reset = await listen(
      net.createServer((s) =>
        s.once('data', () => {
          s.write('HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial');
          setTimeout(() => s.resetAndDestroy(), 10);
        }),
      ),
    );
    assert.equal(
      await kindOf(pool(reset).request({ method: 'POST', path: '/', headers: {}, body: Buffer.from('x') })),
      'unavailable',
    );

    const garbage = await listen(net.createServer((s) => s.once('data', () => s.end('SSH-2.0-nope\r\n\r\n'))));
    assert.equal(await kindOf(pool(garbage).request({ method: 'GET', path: '/', headers: {} })), 'bad_response');

    const big = await listen(
      net.createServer((s) =>
        s.once('data', () => s.end(`HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n${'x'.repeat(100)}`)),
      ),
    );
    assert.equal(
      await kindOf(pool(big, { maxResponseBytes: 10 }).request({ method: 'GET', path: '/', headers: {} })),
      'too_large',
    );

    const silent = await listen(net.createServer(() => {}));
    const t0 = Date.now();
    assert.equal(
      await kindOf(pool(silent, { headersTimeoutMs: 150 }).request({ method: 'GET', path: '/', headers: {} })),
      'timeout',
    );
    assert.ok(Date.now() - t0 < 1500);

    const stalls = await listen(
      net.createServer((s) => s.once('data', () => s.write('HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n12'))),
    );
    assert.equal(
      await kindOf(pool(stalls, { bodyTimeoutMs: 150 }).request({ method: 'GET', path: '/', headers: {} })),
      'timeout',
    );
  });

  it('a header value or target with CR/LF is refused before anything is sent', async () => {
    let connections = 0;
    const port = await listen(net.createServer(() => connections++));
    const p = pool(port);
    assert.equal(
      await kindOf(p.request({ method: 'GET', path: '/', headers: { 'x-a': 'v\r\nx-injected: 1' } })),
      'bad_request',
    );
    assert.equal(await kindOf(p.request({ method: 'GET', path: '/a b', headers: {} })), 'bad_request');
    assert.equal(await kindOf(p.request({ method: 'GET', path: '/', headers: { 'bad name': 'v' } })), 'bad_request');
    assert.equal(connections, 0);
  });

  it('the caller giving up aborts the request and destroys its connection', async () => {
    let closed = false;
    const port = await listen(
      net.createServer((s) =>
        s.resume().on('close', () => {
          closed = true;
        }),
      ),
    );
    const p = pool(port);
    let abort: (() => void) | undefined;
    const pending = p.request({
      method: 'GET',
      path: '/',
      headers: {},
      onAbort: (fn) => {
        abort = fn;
      },
    });
    await new Promise((r) => setTimeout(r, 50));
    abort?.();
    assert.equal(await kindOf(pending), 'aborted');
    await until(() => closed);
    assert.equal(p.size, 0);
  });

  it('idle connections close after keepAliveTimeoutMs; close() refuses new requests', async () => {
    const seen = { sockets: new Set<net.Socket>(), requests: [] as never[] };
    const port = await listen(echoServer(seen as never));
    const p = pool(port, { keepAliveTimeoutMs: 100 });
    await p.request({ method: 'GET', path: '/', headers: {} });
    assert.equal(p.size, 1);
    await until(() => p.size === 0);
    await p.close();
    assert.equal(await kindOf(p.request({ method: 'GET', path: '/', headers: {} })), 'unavailable');
  });

  it("the upstream's Keep-Alive timeout bounds reuse: never reused past it less a margin, not reused at ≤ 1 s", async () => {
    // Node's http server announces `Keep-Alive: timeout=N` (N = keepAliveTimeout in whole seconds) and closes then.
    const seen = { sockets: new Set<net.Socket>(), requests: [] as never[] };
    const server = echoServer(seen as never);
    server.keepAliveTimeout = 2000;
    const port = await listen(server);
    const p = pool(port);
    const post = () => p.request({ method: 'POST', path: '/', headers: {}, body: Buffer.from('{}') });
    assert.equal((await post()).status, 200);
    assert.equal((await post()).status, 200);
    assert.equal(seen.sockets.size, 1, 'reused within the announced timeout');
    // Past 2 s − margin the connection is not taken again (the sweeper may not have run yet).
    await new Promise((r) => setTimeout(r, 2000 - KEEP_ALIVE_MARGIN_MS + 50));
    assert.equal((await post()).status, 200);
    assert.equal(seen.sockets.size, 2, 'a new connection, not the one the upstream closes at 2 s');

    // An upstream announcing timeout=1 (or less) gets a new connection per request.
    const seen1 = { sockets: new Set<net.Socket>(), requests: [] as never[] };
    const short = echoServer(seen1 as never);
    short.keepAliveTimeout = 1500;
    const p1 = pool(await listen(short));
    for (let i = 0; i < 3; i++) assert.equal((await p1.request({ method: 'GET', path: '/', headers: {} })).status, 200);
    assert.equal(seen1.sockets.size, 3);
  });

  it('idleLimitMs reads timeout=N from Keep-Alive and never exceeds the configured limit', () => {
    assert.equal(idleLimitMs(undefined, 4000), 4000);
    assert.equal(idleLimitMs('timeout=5', 4000), 4000);
    assert.equal(idleLimitMs('timeout=3', 4000), 2000);
    assert.equal(idleLimitMs('max=100, timeout=2', 4000), 1000);
    assert.equal(idleLimitMs('Timeout = 3 , max=5', 4000), 2000);
    assert.equal(idleLimitMs(['max=5', 'timeout=3'], 4000), 2000);
    assert.equal(idleLimitMs('timeout=1', 4000), 0);
    assert.equal(idleLimitMs('timeout=0', 4000), 0);
    assert.equal(idleLimitMs('timeout="3"', 4000), 2000);
    // Not a timeout parameter, malformed, or absurd: the configured limit stands.
    assert.equal(idleLimitMs('max=3', 4000), 4000);
    assert.equal(idleLimitMs('xtimeout=1', 4000), 4000);
    assert.equal(idleLimitMs('timeout=abc', 4000), 4000);
    assert.equal(idleLimitMs('timeout=99999999999', 4000), 4000);
    // The same value again (the last one read is remembered), then others: each read as itself.
    for (const [v, want] of [
      ['timeout=3', 2000],
      ['timeout=3', 2000],
      ['max=3', 4000],
      ['timeout=3', 2000],
      ['timeout=2', 1000],
    ] as const) {
      assert.equal(idleLimitMs(v, 4000), want, v);
    }
    assert.equal(idleLimitMs('timeout=3', 10_000), 2000);
    assert.equal(idleLimitMs('timeout=3', 1500), 1500);
  });

  describe('wait queue when every connection is busy', () => {
    /** A node:http upstream that holds every answer until `release()`; `urls` in arrival order. */
    async function heldServer() {
      const urls: string[] = [];
      const held: http.ServerResponse[] = [];
      const server = http.createServer((req, res) => {
        req.resume();
        req.on('end', () => {
          urls.push(req.url ?? '');
          held.push(res);
        });
      });
      const port = await listen(server);
      return {
        port,
        urls,
        /** Answers the requests held so far. */
        release() {
          for (const r of held.splice(0)) r.end(`ok ${r.req.url}`);
        },
      };
    }
    const get = (p: H1Pool, path: string, onAbort?: (abort: () => void) => void) =>
      p.request({
        method: 'POST',
        path,
        headers: {},
        body: Buffer.alloc(60 * 1024, 'a'),
        ...(onAbort ? { onAbort } : {}),
      });

    it('a full queue refuses the next request at once with `busy`; nothing of it is sent', async () => {
      const up = await heldServer();
      const p = pool(up.port, { connections: 1, maxQueue: 2, headersTimeoutMs: 5000, queueTimeoutMs: 5000 });
      const admitted = [0, 1, 2].map((i) => get(p, `/a/${i}`));
      assert.equal(p.waiting, 2);
      const t0 = performance.now();
      assert.equal(await kindOf(get(p, '/a/3')), 'busy');
      assert.ok(performance.now() - t0 < 100, 'refused at once');
      const none = pool(up.port, { connections: 1, maxQueue: 0 });
      const first = get(none, '/b/0');
      assert.equal(await kindOf(get(none, '/b/1')), 'busy', 'maxQueue 0: nothing waits');
      await until(() => up.urls.length === 2);
      up.release();
      assert.equal(await kindOf(first), 'ok');
      for (let i = 0; i < 2; i++) {
        await until(() => up.urls.length === 3 + i);
        up.release();
      }
      assert.deepEqual(
        (await Promise.all(admitted)).map((r) => r.body.toString()),
        ['ok /a/0', 'ok /a/1', 'ok /a/2'],
      );
      assert.ok(!up.urls.includes('/a/3') && !up.urls.includes('/b/1'), 'refused requests never sent');
    });

    it('a request waiting queueTimeoutMs fails with `timeout` and leaves the queue', async () => {
      const up = await heldServer();
      const p = pool(up.port, { connections: 1, headersTimeoutMs: 5000, queueTimeoutMs: 200 });
      const first = get(p, '/q/0');
      const t0 = performance.now();
      const waiting = [1, 2].map((i) => get(p, `/q/${i}`));
      assert.deepEqual(await Promise.all(waiting.map(kindOf)), ['timeout', 'timeout']);
      const ms = performance.now() - t0;
      assert.ok(ms >= 180 && ms < 1500, `${ms} ms`);
      assert.equal(p.waiting, 0);
      // A later waiter gets its own full wait, and the connection still serves the next request.
      const late = get(p, '/q/3');
      up.release();
      assert.equal(await kindOf(first), 'ok');
      await until(() => up.urls.length === 2);
      up.release();
      assert.equal(await kindOf(late), 'ok');
      assert.deepEqual(up.urls, ['/q/0', '/q/3']);
    });

    it('waiters are served in arrival order as connections free up', async () => {
      const up = await heldServer();
      const p = pool(up.port, { connections: 2, maxQueue: 6, headersTimeoutMs: 5000 });
      const all = Array.from({ length: 8 }, (_, i) => get(p, `/o/${i}`));
      assert.equal(p.waiting, 6);
      for (let n = 2; n <= 8; n += 2) {
        await until(() => up.urls.length === n);
        up.release();
      }
      const bodies = (await Promise.all(all)).map((r) => r.body.toString());
      assert.deepEqual(
        bodies,
        Array.from({ length: 8 }, (_, i) => `ok /o/${i}`),
      );
      assert.deepEqual(
        up.urls,
        Array.from({ length: 8 }, (_, i) => `/o/${i}`),
      );
      assert.equal(p.size, 2);
    });

    it('an aborted waiter is skipped, never sent; many aborts leave the rest in order', async () => {
      const up = await heldServer();
      const p = pool(up.port, { connections: 1, maxQueue: 300, headersTimeoutMs: 5000 });
      const first = get(p, '/x/first');
      const aborts: (() => void)[] = [];
      const queued = Array.from({ length: 200 }, (_, i) =>
        get(p, `/x/${i}`, (fn) => {
          aborts[i] = fn;
        }),
      );
      assert.equal(p.waiting, 200);
      // Abort all but every 50th: the queue compacts, the rest keep their order.
      for (let i = 0; i < 200; i++) if (i % 50 !== 0) aborts[i]?.();
      assert.equal(p.waiting, 4);
      const kinds = await Promise.all(queued.map((q, i) => (i % 50 !== 0 ? kindOf(q) : Promise.resolve('kept'))));
      assert.ok(kinds.every((k) => k === 'aborted' || k === 'kept'));
      for (let n = 1; n <= 5; n++) {
        await until(() => up.urls.length === n);
        up.release();
      }
      assert.equal(await kindOf(first), 'ok');
      for (const i of [0, 50, 100, 150]) assert.equal(await kindOf(queued[i] as Promise<unknown>), 'ok');
      assert.deepEqual(up.urls, ['/x/first', '/x/0', '/x/50', '/x/100', '/x/150']);
      assert.equal(p.waiting, 0);
    });
  });

  it('https upstream verified against the configured CA; an unknown CA is refused', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'okcm-h1-'));
    closers.push(() => rmSync(dir, { recursive: true, force: true }));
    const pki = makeTestPki(dir);
    const server = https.createServer({ cert: pki.core.certPem, key: pki.core.keyPem }, (_req, res) =>
      res.end('tls ok'),
    );
    const port = await listen(server);
    const good = pool(port, { ca: Buffer.from(pki.ca.certPem) }, 'https');
    assert.equal((await good.request({ method: 'GET', path: '/', headers: {} })).body.toString(), 'tls ok');
    assert.equal(
      await kindOf(pool(port, {}, 'https').request({ method: 'GET', path: '/', headers: {} })),
      'unavailable',
    );
  });
});
