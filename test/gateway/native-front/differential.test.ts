/**
 * The native front answers exactly as the pipeline does. One gateway runs
 * both fronts before a raw TCP upstream that records the bytes it receives
 * and answers from a table of awkward answers (chunked, repeated and
 * hop-by-hop headers, Latin-1 bytes, 204 / 304 / HEAD lengths, a
 * close-delimited body, its own Date and correlation id). Each generated
 * request goes once to the uWS front and once to the native front, each on
 * a fresh connection; the bytes the upstream received and the bytes the
 * client received must be the same, but for the Date value and a correlation
 * id the gateway made (each front makes its own). The requests of served
 * routes must have been served natively (its counter), the others
 * tunnelled to the pipeline.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { LocalGatewayKeys } from '../../../gateway/src/gateway-keys.ts';
import { type GatewayServer, startGateway } from '../../../gateway/src/gateway-server.ts';
import { policySetOf } from '../proxy/proxy-fixture.ts';
import { exchange, nativeFrontSkip } from './native-front-fixture.ts';

/** Answers of the upstream, by the path's last segment. */
const ANSWERS: Record<string, string> = {
  plain: 'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-App: a\r\nContent-Length: 7\r\n\r\n{"a":1}',
  chunked:
    'HTTP/1.1 201 Created\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n',
  dup: 'HTTP/1.1 200 OK\r\nX-A: 1\r\nSet-Cookie: a=1\r\nX-B: 2\r\nx-a: 3\r\nSet-Cookie: b=2\r\nContent-Length: 0\r\n\r\n',
  hop: 'HTTP/1.1 200 OK\r\nConnection: X-Hop, keep-alive\r\nX-Hop: y\r\nKeep-Alive: timeout=5\r\nProxy-Authenticate: Basic\r\nTrailer: x\r\nUpgrade: h2c\r\nX-Kept: k\r\nContent-Length: 2\r\n\r\nok',
  nocontent: 'HTTP/1.1 204 No Content\r\nX-Z: z\r\nContent-Length: 0\r\n\r\n',
  notmodified: 'HTTP/1.1 304 Not Modified\r\nETag: "e"\r\nContent-Length: 123\r\n\r\n',
  latin1: 'HTTP/1.1 200 OK\r\nX-Name: caf\xe9\r\nContent-Length: 1\r\n\r\nx',
  cid: 'HTTP/1.1 200 OK\r\nX-Correlation-Id: from-upstream\r\nContent-Length: 1\r\n\r\nx',
  date: 'HTTP/1.1 200 OK\r\nDate: Tue, 01 Jan 2030 00:00:00 GMT\r\nContent-Length: 1\r\n\r\nx',
  close: 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nuntil the end',
  teapot: "HTTP/1.1 418 I'm a teapot\r\nContent-Length: 3\r\n\r\ntea",
  odd: 'HTTP/1.1 599 Whatever\r\nContent-Length: 0\r\n\r\n',
  length: 'HTTP/1.1 200 OK\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\nfour',
  garbage: 'SSH-2.0-OpenSSH_9.2\r\n\r\n',
  big: `HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n${'b'.repeat(100_000)}`,
  // A head past 16 KiB (the client reads up to 64 KiB).
  bighead: `HTTP/1.1 200 OK\r\n${Array.from({ length: 10 }, (_, i) => `X-Big-${i}: ${'v'.repeat(2000)}\r\n`).join('')}Content-Length: 1\r\n\r\nx`,
  // Integer-like names: a JavaScript header map lists them first, in ascending order.
  numeric: 'HTTP/1.1 200 OK\r\nX-A: 1\r\n7: seven\r\n10: ten\r\n2: two\r\n007: z\r\nContent-Length: 0\r\n\r\n',
};

interface RawUpstream {
  port: number;
  received: Buffer[];
  close(): Promise<void>;
}

/** Reads each request (head and Content-Length body), records its bytes, answers from ANSWERS. */
async function rawUpstream(): Promise<RawUpstream> {
  const received: Buffer[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    let buf = Buffer.alloc(0);
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.subarray(0, end).toString('latin1');
        const len = Number(/\r\ncontent-length: (\d+)/i.exec(head)?.[1] ?? 0);
        if (buf.length < end + 4 + len) return;
        received.push(buf.subarray(0, end + 4 + len));
        buf = buf.subarray(end + 4 + len);
        const path = head.split(' ')[1] ?? '';
        const key = path.split('?')[0]?.split('/').pop() ?? '';
        const answer = ANSWERS[key] ?? ANSWERS.plain;
        s.write(Buffer.from(answer as string, 'latin1'));
        if (key === 'close' || key === 'garbage') s.end();
      }
    });
  });
  const port = await new Promise<number>((r) =>
    server.listen(0, '127.0.0.1', () => r((server.address() as net.AddressInfo).port)),
  );
  return {
    port,
    received,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

interface GenRequest {
  method: string;
  target: string;
  headers: [string, string][];
  body: string | undefined;
  zeroLength: boolean;
}

const skip = nativeFrontSkip();

describe('the native front answers as the pipeline', { skip }, () => {
  let up: RawUpstream;
  let gw: GatewayServer;
  let keys: LocalGatewayKeys;
  before(async () => {
    up = await rawUpstream();
    keys = new LocalGatewayKeys();
    const card = { select: '$.card.number', field: 'card.number' };
    gw = await startGateway({
      keys,
      uws: { host: '127.0.0.1', port: 0 },
      native: { host: '127.0.0.1', port: 0 },
      log: () => {},
      proxy: {
        policies: policySetOf({
          id: 'diff',
          key: 'orders',
          upstreams: { raw: `http://127.0.0.1:${up.port}/base/` },
          defaults: { tenant: { from: 'header', header: 'x-tenant-id', trustedPeers: ['127.0.0.0/8'] } },
          routes: [
            { method: '*', path: '/p/*', upstream: 'raw' },
            {
              method: 'GET',
              path: '/t/:tenant/files/*',
              upstream: 'raw',
              tenant: { from: 'pathParam', param: 'tenant' },
            },
            { method: 'POST', path: '/orders', upstream: 'raw', request: [card] },
          ],
        }),
        upstream: { headersTimeoutMs: 2000, bodyTimeoutMs: 2000 },
      },
    });
  });
  after(async () => {
    await gw?.close();
    keys?.close();
    await up?.close();
  });

  /** The upstream's received bytes and the client's answer, for `request` sent to `port`. */
  async function through(port: number, request: string): Promise<{ upstream: string; answer: string }> {
    const before = up.received.length;
    const answer = (await exchange(port, Buffer.from(request, 'latin1'))).toString('latin1');
    const upstream = up.received
      .slice(before)
      .map((b) => b.toString('latin1'))
      .join('');
    return { upstream, answer };
  }

  /** Date values and a correlation id the gateway made, replaced by placeholders. */
  function normal(text: string, madeId: boolean): string {
    let t = text.replace(/\r\nDate: [^\r]*/g, '\r\nDate: <date>');
    // Ids the fronts made (hex, 13 digits or more); the one trace id the requests may give is kept.
    if (madeId)
      t = t.replace(
        /\r\nx-correlation-id: (?!0af7651916cd43dd8448eb211c80319c)[0-9a-f]{13,}/g,
        '\r\nx-correlation-id: <made>',
      );
    return t;
  }

  const TARGETS = Object.keys(ANSWERS).map((k) => `/p/${k}`);
  /** Headers of distinct names, each sent or not (the tenant most often: without it nothing is served). */
  const HEADERS: [string, string][] = [
    ['Accept', '*/*'],
    ['X-Forwarded-For', '10.1.2.3'],
    ['X-Forwarded-Host', 'orig.example'],
    ['Connection', 'keep-alive'],
    ['Keep-Alive', 'timeout=1'],
    ['Proxy-Authorization', 'Basic x'],
    ['TE', 'trailers'],
    ['Accept-Encoding', 'gzip'],
    ['X-Okcm-Caller', 'someone'],
    ['Constructor', 'c'],
    ['X-Empty', ''],
    ['5', 'five'],
  ];
  /** One value of a header that may come in several spellings, or twice (which a front joins). */
  const CHOICES: [string, string[]][] = [
    ['X-Tenant-Id', ['acme', 'acme', 'acme', 'acme', 'acme', 'acme', 'a,b', 'bad!']],
    ['X-Correlation-Id', ['client-given-1', 'not valid!']],
    ['traceparent', ['00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', '00-XYZ-b7ad6b7169203331-01']],
  ];
  const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];

  const arbRequest = fc.record({
    method: fc.constantFrom(...METHODS),
    target: fc.oneof(
      { arbitrary: fc.constantFrom(...TARGETS), weight: 5 },
      fc.constantFrom('/p/plain?q=1&x=%20', '/p/plain?', '/t/acme/files/a/b', '/t/ac!me/files/x', '/P/plain'),
      fc.constantFrom('/orders', '/p//x', '/p/%70lain', '/p/a;b', '/healthz', '/nowhere', '/p/plain/'),
    ),
    headers: fc
      .tuple(
        fc.subarray(HEADERS),
        ...CHOICES.map(([name, values]) =>
          fc.option(
            fc.constantFrom(...values).map((v): [string, string] => [name, v]),
            { freq: 4, nil: undefined },
          ),
        ),
        fc.boolean(),
      )
      .map(([plain, ...rest]) => {
        const twice = rest.pop() as boolean;
        const chosen = (rest as ([string, string] | undefined)[]).filter((h): h is [string, string] => h !== undefined);
        // Now and then a repeated header (the uWS adapter joins it; the native front declines).
        return [...chosen, ...plain, ...(twice && plain.length > 0 ? [plain[0] as [string, string]] : [])];
      }),
    body: fc.option(fc.string({ maxLength: 40 }), { nil: undefined }),
    zeroLength: fc.boolean(),
  });

  function requestText(r: GenRequest): string {
    let head = `${r.method} ${r.target} HTTP/1.1\r\nHost: gw.example\r\n`;
    for (const [n, v] of r.headers) head += `${n}: ${v}\r\n`;
    const body = r.body === undefined ? '' : Buffer.from(r.body, 'utf8').toString('latin1');
    if (body.length > 0 || r.zeroLength) head += `Content-Length: ${body.length}\r\n`;
    return `${head}\r\n${body}`;
  }

  it('same upstream bytes and same answer bytes, for generated requests', async () => {
    const front = gw.nativeFront;
    assert.ok(front && gw.ports.native && gw.ports.uws);
    const served0 = front.stats().served;
    let servedCases = 0;
    await fc.assert(
      fc.asyncProperty(arbRequest, async (r) => {
        const text = requestText(r);
        const a = await through(gw.ports.uws as number, text);
        const before = front.stats().served;
        const b = await through(gw.ports.native as number, text);
        if (front.stats().served > before) servedCases++;
        assert.equal(normal(b.upstream, true), normal(a.upstream, true), `upstream bytes of ${JSON.stringify(text)}`);
        assert.equal(normal(b.answer, true), normal(a.answer, true), `answer bytes of ${JSON.stringify(text)}`);
      }),
      { numRuns: 200 },
    );
    assert.ok(servedCases >= 10, `the native front served ${servedCases} of the generated requests itself`);
    assert.ok(front.stats().served - served0 === servedCases);
  });

  it('every fixed answer of the upstream, for GET and HEAD', async () => {
    const front = gw.nativeFront;
    assert.ok(front);
    const served = front.stats().served;
    for (const target of TARGETS) {
      for (const method of ['GET', 'HEAD']) {
        const text = `${method} ${target} HTTP/1.1\r\nHost: gw.example\r\nX-Tenant-Id: acme\r\nX-Correlation-Id: fixed-1\r\n\r\n`;
        const a = await through(gw.ports.uws as number, text);
        const b = await through(gw.ports.native as number, text);
        assert.equal(normal(b.upstream, false), normal(a.upstream, false), `${method} ${target}: upstream bytes`);
        assert.equal(normal(b.answer, false), normal(a.answer, false), `${method} ${target}: answer bytes`);
        assert.equal((a.answer.match(/\r\nDate: /gi) ?? []).length, 1, `${method} ${target}: one Date header`);
      }
    }
    assert.equal(front.stats().served, served + 2 * TARGETS.length, 'every one served by the native front itself');
  });
});
