/**
 * What the client gets when the upstream's answer is framed oddly or does
 * not fit the policy, through a real gateway in front of a raw upstream that
 * sends hand-made bytes:
 *
 * - a 205 with content is refused (502), never passed to a non-reader
 *   unmasked; an empty 205 (by length or chunked) passes;
 * - 204 / HEAD on the uWS front: no false `Content-Length: 0`, no body;
 * - a Latin-1 byte of an upstream header value reaches the client as that byte;
 * - an answer with both Transfer-Encoding and Content-Length is read, and its
 *   connection is not reused (RFC 9112 §6.1);
 * - a body the response rules do not fit (field absent, wrong shape, too many
 *   fields) is the upstream's fault: 502 `upstream_bad_response` naming the
 *   code, the path in the audit reasons; a field that fails to decrypt stays
 *   422 `field_decryption_failed` (policies/README.md);
 * - the response transform itself refuses content in a bodiless answer.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { KcmError } from '../../../common/src/errors.ts';
import type { RequestContext } from '../../../gateway/src/pipeline/context.ts';
import { StaticKeyProvider } from '../../../gateway/src/pipeline/key-provider.ts';
import type { PolicySet } from '../../../gateway/src/policy/policy-loader.ts';
import { decryptResponseBody } from '../../../gateway/src/proxy/proxy-transforms.ts';
import { type Fixture, startFixture } from '../api/gateway-fixture.ts';
import { policySetOf } from './proxy-fixture.ts';

const CARD = '{"card":{"number":"4111 1111 1111 111"}}';
const json = (status: string, body: string) =>
  `HTTP/1.1 ${status}\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}`;

/** The raw upstream's answer per request target (Latin-1 bytes). */
const ANSWERS: Record<string, string> = {
  '/dec/205-body': `HTTP/1.1 205 Reset Content\r\ncontent-type: application/json\r\ncontent-length: ${CARD.length}\r\n\r\n${CARD}`,
  '/dec/205-chunked-body': `HTTP/1.1 205 Reset Content\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n${CARD.length.toString(16)}\r\n${CARD}\r\n0\r\n\r\n`,
  '/dec/205-empty': 'HTTP/1.1 205 Reset Content\r\ncontent-length: 0\r\n\r\n',
  '/dec/205-chunked-empty': 'HTTP/1.1 205 Reset Content\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n',
  '/raw/205-body': `HTTP/1.1 205 Reset Content\r\ncontent-length: ${CARD.length}\r\n\r\n${CARD}`,
  '/raw/204': 'HTTP/1.1 204 No Content\r\nx-a: 1\r\n\r\n',
  '/raw/head': 'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1234\r\n\r\n',
  '/raw/latin1': 'HTTP/1.1 200 OK\r\nx-name: caf\xe9\r\ncontent-length: 2\r\n\r\nok',
  '/raw/tecl': 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-length: 3\r\n\r\n2\r\nok\r\n0\r\n\r\n',
  '/raw/chunked': 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n',
  '/dec/missing': json('200 OK', '{"other":1}'),
  '/dec/shape': json('200 OK', '{"card":"4111 1111 1111 1111"}'),
  '/many/list': json('200 OK', JSON.stringify({ items: Array.from({ length: 5 }, () => ({ n: '4111' })) })),
  '/dec/not-ciphertext': json('200 OK', CARD),
};

/** A keep-alive upstream that answers each request head from ANSWERS; counts its connections. */
async function rawUpstream(): Promise<{ server: net.Server; port: number; connections: () => number }> {
  let connections = 0;
  const server = net.createServer((s) => {
    connections++;
    s.on('error', () => {});
    let pending = '';
    s.on('data', (d: Buffer) => {
      pending += d.toString('latin1');
      for (let at = pending.indexOf('\r\n\r\n'); at >= 0; at = pending.indexOf('\r\n\r\n')) {
        const target = pending.split(' ')[1] ?? '';
        pending = pending.slice(at + 4);
        s.write(Buffer.from(ANSWERS[target] ?? json('404 Not Found', '{}'), 'latin1'));
      }
    });
  });
  const port = await new Promise<number>((r) =>
    server.listen(0, '127.0.0.1', () => r((server.address() as net.AddressInfo).port)),
  );
  return { server, port, connections: () => connections };
}

function policies(): PolicySet {
  return policySetOf({
    id: 'framing',
    key: 'orders',
    upstreams: { app: 'http://127.0.0.1:1' },
    defaults: {
      tenant: { from: 'header', header: 'x-tenant-id', trustedPeers: ['127.0.0.1'] },
      readers: { identities: ['billing'], roles: [], others: 'mask' },
    },
    routes: [
      { method: '*', path: '/raw/*', upstream: 'app' },
      { method: 'GET', path: '/dec/*', upstream: 'app', response: [{ select: '$.card.number' }] },
      {
        method: 'GET',
        path: '/many/*',
        upstream: 'app',
        limits: { maxFields: 2 },
        response: [{ select: '$.items[*].n' }],
      },
    ],
  });
}

/** Sends `bytes` on a new connection; everything read until the server closes or `ms` pass (Latin-1). */
function rawSend(port: number, bytes: string, ms = 600): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    const out: Buffer[] = [];
    s.on('data', (d: Buffer) => out.push(d));
    s.on('error', () => {});
    const t = setTimeout(() => s.destroy(), ms);
    s.on('close', () => {
      clearTimeout(t);
      resolve(Buffer.concat(out).toString('latin1'));
    });
    s.write(Buffer.from(bytes, 'latin1'));
  });
}

const ask = (method: string, path: string, extra = '') =>
  `${method} ${path} HTTP/1.1\r\nhost: x\r\nx-tenant-id: t1\r\n${extra}connection: close\r\n\r\n`;
const statusOf = (answer: string) => Number(answer.slice(9, 12));
const headerOf = (answer: string, name: string) =>
  answer
    .slice(0, answer.indexOf('\r\n\r\n'))
    .split('\r\n')
    .filter((l) => l.toLowerCase().startsWith(`${name}:`))
    .map((l) => l.slice(name.length + 1).trim());
const bodyOf = (answer: string) => answer.slice(answer.indexOf('\r\n\r\n') + 4);

describe('proxy: upstream answer framing and fit', () => {
  let up: Awaited<ReturnType<typeof rawUpstream>>;
  let f: Fixture;
  const audited = new Map<string, string[] | undefined>();
  const front = () => f.gw.ports.uws as number;

  before(async () => {
    up = await rawUpstream();
    f = await startFixture({
      log: () => {},
      audit: { record: (ctx) => audited.set(ctx.path, ctx.auditReasons) },
      proxy: {
        policies: policies(),
        upstreamUrls: new Map([['app', new URL(`http://127.0.0.1:${up.port}`)]]),
        upstream: { headersTimeoutMs: 1000, bodyTimeoutMs: 1000, connectTimeoutMs: 500 },
        callerHeaders: { identity: 'x-okcm-caller', roles: 'x-okcm-roles' },
      },
    });
  });
  after(async () => {
    await f.close();
    await new Promise<void>((r) => up.server.close(() => r()));
  });

  it('a 205 with content (by length or chunked) is 502 upstream_bad_response, the content never reaches anyone', async () => {
    for (const path of ['/dec/205-body', '/dec/205-chunked-body', '/raw/205-body']) {
      for (const caller of ['', 'x-okcm-caller: billing\r\n']) {
        const a = await rawSend(front(), ask('GET', path, caller));
        assert.equal(statusOf(a), 502, `${path} ${caller}`);
        assert.match(bodyOf(a), /"upstream_bad_response"/);
        assert.ok(!a.includes('4111'), `${path}: nothing of the upstream body`);
      }
    }
  });

  it('an empty 205 (Content-Length: 0 or an empty chunked body) passes as 205', async () => {
    for (const path of ['/dec/205-empty', '/dec/205-chunked-empty']) {
      const a = await rawSend(front(), ask('GET', path));
      assert.equal(statusOf(a), 205, path);
      assert.equal(bodyOf(a), '');
    }
  });

  it('uWS front: a 204 has no Content-Length; a HEAD answer has no false Content-Length: 0 and no body', async () => {
    const a = await rawSend(front(), ask('GET', '/raw/204'));
    assert.equal(statusOf(a), 204);
    assert.deepEqual(headerOf(a, 'content-length'), []);
    assert.deepEqual(headerOf(a, 'x-a'), ['1']);
    const h = await rawSend(front(), ask('HEAD', '/raw/head'));
    assert.equal(statusOf(h), 200);
    // The upstream's length of the HEAD answer (what a GET would get), never a false 0.
    assert.deepEqual(headerOf(h, 'content-length'), ['1234']);
    assert.equal(bodyOf(h), '');
  });

  it('plaintext node front (HTTP/1.1): the same framing: no Content-Length on 204, the upstream length on HEAD, no body', async () => {
    const plain = f.gw.ports.h2Plain as number;
    const a = await rawSend(plain, ask('GET', '/raw/204'));
    assert.equal(statusOf(a), 204);
    assert.deepEqual(headerOf(a, 'content-length'), []);
    const h = await rawSend(plain, ask('HEAD', '/raw/head'));
    assert.equal(statusOf(h), 200);
    assert.deepEqual(headerOf(h, 'content-length'), ['1234']);
    assert.equal(bodyOf(h), '');
  });

  it('uWS front: a Latin-1 byte of an upstream header value reaches the client as that byte', async () => {
    const a = Buffer.from(await rawSend(front(), ask('GET', '/raw/latin1')), 'latin1');
    assert.ok(a.includes(Buffer.from('x-name: caf\xe9\r\n', 'latin1')), a.toString('latin1'));
  });

  it('Transfer-Encoding with Content-Length: read by chunks, and the connection is not reused', async () => {
    // Requests one at a time: the pool holds at most one idle connection.
    const tecl = async () => {
      const a = await rawSend(front(), ask('GET', '/raw/tecl'));
      assert.deepEqual([statusOf(a), bodyOf(a)], [200, 'ok']);
    };
    await tecl();
    const before = up.connections();
    await tecl();
    assert.equal(up.connections() - before, 1, 'the previous answer with both headers closed its connection');
    const afterBoth = up.connections();
    for (let i = 0; i < 2; i++) assert.equal(bodyOf(await rawSend(front(), ask('GET', '/raw/chunked'))), 'ok');
    assert.equal(up.connections() - afterBoth, 1, 'a new connection, then reused: chunked alone keeps it alive');
  });

  it('a body the response rules do not fit is the upstream’s fault: 502 naming the code, the path audited', async () => {
    for (const [path, code, reason] of [
      ['/dec/missing', 'selector_missing', 'upstream body: selector_missing: $.card'],
      ['/dec/shape', 'selector_type_mismatch', 'upstream body: selector_type_mismatch: $.card is not'],
      ['/many/list', 'too_many_fields', 'upstream body: too_many_fields: limit 2'],
    ] as const) {
      const a = await rawSend(front(), ask('GET', path));
      assert.equal(statusOf(a), 502, path);
      const error = JSON.parse(bodyOf(a)).error as { code: string; message: string };
      assert.equal(error.code, 'upstream_bad_response');
      assert.ok(error.message.endsWith(`upstream body: ${code}`), error.message);
      assert.ok(!a.includes('4111'), `${path}: nothing of the upstream body`);
      assert.ok(audited.get(path)?.[0]?.startsWith(reason), `${path}: ${audited.get(path)}`);
    }
  });

  it('a selected value a reader cannot decrypt stays 422 field_decryption_failed (policies/README.md)', async () => {
    const a = await rawSend(front(), ask('GET', '/dec/not-ciphertext', 'x-okcm-caller: billing\r\n'));
    assert.equal(statusOf(a), 422);
    assert.equal(JSON.parse(bodyOf(a)).error.code, 'field_decryption_failed');
    assert.ok(!a.includes('4111'));
  });

  it('the response transform refuses content in a HEAD, 204, 205 or 304 answer instead of skipping it', async () => {
    const route = policies().routes.find((r) => r.pattern.text === '/dec/*');
    assert.ok(route);
    for (const [method, status] of [
      ['GET', 204],
      ['GET', 205],
      ['GET', 304],
      ['HEAD', 200],
    ] as const) {
      const ctx = {
        method,
        tenant: 't1',
        params: {},
        routeState: { fromUpstream: true },
        response: { status, headers: { 'content-type': 'application/json' }, body: Buffer.from(CARD) },
      } as unknown as RequestContext;
      await assert.rejects(
        decryptResponseBody(ctx, route, new StaticKeyProvider(), { roles: [] }, 1 << 20),
        (e: unknown) => e instanceof KcmError && e.code === 'upstream_bad_response',
        `${method} ${status}`,
      );
      assert.ok(!String(ctx.response?.body).includes('****'), 'not transformed either');
    }
  });
});
