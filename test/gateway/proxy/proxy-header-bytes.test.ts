/**
 * Header values and targets that are not plain ASCII, sent as raw bytes to
 * both fronts: what the upstream receives is the bytes the client sent, and
 * no char can turn into a CR, LF or SP on the way (request smuggling: uWS
 * decodes values as UTF-8, and a Latin-1 encoding of U+010D U+010A used to
 * write CR LF).
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { COPY_BODY_MAX, requestHead, requestWrites } from '../../../gateway/src/upstream/h1-request-head.ts';
import { UpstreamFailure } from '../../../gateway/src/upstream/upstream-failure.ts';
import { call, type ProxyFixture, startProxyFixture } from './proxy-fixture.ts';

/** Writes `bytes` to the port and returns what came back before the server closed or `ms` passed. */
function rawSend(port: number, bytes: Buffer, ms = 1500): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    const out: Buffer[] = [];
    s.on('data', (d: Buffer) => {
      out.push(d);
      if (Buffer.concat(out).includes('\r\n\r\n')) s.end();
    });
    s.on('error', () => {});
    const t = setTimeout(() => s.destroy(), ms);
    s.on('close', () => {
      clearTimeout(t);
      resolve(Buffer.concat(out).toString('latin1'));
    });
    s.write(bytes);
  });
}

const head = (line: string, extra: Buffer = Buffer.alloc(0)) =>
  Buffer.concat([
    Buffer.from(`${line}\r\nhost: x\r\nx-tenant-id: t1\r\nconnection: close\r\n`, 'latin1'),
    extra,
    Buffer.from('\r\n', 'latin1'),
  ]);

describe('proxy: non-ASCII header bytes and targets', () => {
  let f: ProxyFixture;
  before(async () => {
    f = await startProxyFixture();
  });
  after(() => f.close());

  for (const front of ['uws', 'plain'] as const) {
    it(`${front}: a header value whose chars have CR/LF low bytes arrives as its own bytes, nothing injected`, async () => {
      const port = Number(new URL(f.base[front]).port);
      const value = Buffer.concat([
        Buffer.from('a'),
        Buffer.from('\u010d\u010a', 'utf8'),
        Buffer.from('x-injected: yes'),
      ]);
      const before = f.up.received.length;
      const reply = await rawSend(
        port,
        head('GET /raw/echo HTTP/1.1', Buffer.concat([Buffer.from('x-evil: '), value, Buffer.from('\r\n')])),
      );
      assert.match(reply, /^HTTP\/1\.1 200/);
      const got = f.up.received.slice(before);
      assert.equal(got.length, 1, 'one request upstream');
      const r = got[0];
      assert.equal(r?.headers['x-injected'], undefined, 'no injected header line');
      // node:http decodes header bytes as Latin-1: the same bytes as the client's.
      assert.deepEqual(Buffer.from(r?.headers['x-evil'] as string, 'latin1'), value);
    });

    it(`${front}: a target with raw non-ASCII bytes is refused, never forwarded`, async () => {
      const port = Number(new URL(f.base[front]).port);
      const before = f.up.received.length;
      const target = Buffer.concat([
        Buffer.from('GET /raw/b'),
        Buffer.from('\u0120x', 'utf8'),
        Buffer.from(' HTTP/1.1'),
      ]);
      const reply = await rawSend(port, head(target.toString('latin1')));
      assert.doesNotMatch(reply, /^HTTP\/1\.1 2/);
      assert.equal(f.up.received.length, before);
    });
  }

  it('a method override header is refused (400), never forwarded: a GET to a pass-through route cannot act as a POST', async () => {
    for (const name of ['x-http-method-override', 'X-HTTP-Method', 'x-method-override']) {
      const before = f.up.received.length;
      const r = await call(f, `${f.base.uws}/raw/echo`, {
        method: 'GET',
        headers: { [name]: 'POST', 'content-type': 'application/json' },
      });
      assert.equal(r.status, 400, name);
      assert.equal(f.up.received.length, before);
    }
  });

  it('requestHead refuses chars above 0xFF and controls in values, and anything but visible ASCII in the target', () => {
    const ok = requestHead({ method: 'GET', path: '/a?b=c', headers: { 'x-a': 'caf\u00e9\tx' } }, 'h');
    assert.ok(ok.includes(Buffer.from('x-a: caf\u00e9\tx\r\n', 'latin1')));
    for (const v of ['a\u010ab', 'a\rb', 'a\nb', 'a\u0000b', 'a\u007fb', 'a\u0001b', '\u2028']) {
      assert.throws(
        () => requestHead({ method: 'GET', path: '/', headers: { 'x-a': v } }, 'h'),
        (e) => e instanceof UpstreamFailure && e.kind === 'bad_request',
        JSON.stringify(v),
      );
    }
    for (const p of ['/a b', '/caf\u00e9', '/a\u0120', '/a\tb', '/\u007f']) {
      assert.throws(
        () => requestHead({ method: 'GET', path: p, headers: {} }, 'h'),
        (e) => e instanceof UpstreamFailure && e.kind === 'bad_request',
        JSON.stringify(p),
      );
    }
  });

  it('requestWrites: the head with a body up to COPY_BODY_MAX behind it in one buffer, byte for byte; a larger body in a second write', () => {
    const req = (body?: Buffer) => ({ method: 'POST', path: '/o', headers: { 'x-a': 'caf\u00e9' }, body });
    for (const n of [0, 1, 2048, COPY_BODY_MAX]) {
      const body = Buffer.alloc(n, 0xe9);
      assert.deepEqual(requestWrites(req(body), 'h'), [Buffer.concat([requestHead(req(body), 'h'), body])], String(n));
    }
    const big = Buffer.alloc(COPY_BODY_MAX + 1, 1);
    assert.deepEqual(requestWrites(req(big), 'h'), [requestHead(req(big), 'h'), big]);
    assert.deepEqual(requestWrites(req(), 'h'), [requestHead(req(), 'h')]);
    assert.throws(
      () => requestWrites({ method: 'GET', path: '/', headers: { 'x-a': 'a\rb' } }, 'h'),
      (e) => e instanceof UpstreamFailure && e.kind === 'bad_request',
    );
  });
});
