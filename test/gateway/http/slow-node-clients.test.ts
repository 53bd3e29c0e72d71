/**
 * Slow and greedy clients on the node fronts (plaintext port: HTTP/1.1 and
 * h2c by prior knowledge), with the limits shortened: trickled HTTP/1.1
 * headers or body are cut (408, closed), h2 streams that stop making
 * progress are reset, idle h2 sessions closed, and the stream limit is
 * advertised. Plus the body's side: a body refused by its declared length or
 * left unread keeps nothing more and stops the adapter reading.
 */
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { LocalGatewayKeys } from '../../../gateway/src/gateway-keys.ts';
import { type GatewayServer, startGateway } from '../../../gateway/src/gateway-server.ts';
import { RequestBody } from '../../../gateway/src/pipeline/request-body.ts';

const LIMITS = { maxStreams: 7, streamIdleMs: 400, sessionIdleMs: 800, headersMs: 400, requestMs: 900 };

/** Opens a raw socket, writes `bytes`, resolves with what came back and how long until the server closed. */
function trickle(port: number, bytes: string, giveUpMs = 5000): Promise<{ text: string; ms: number; closed: boolean }> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const s = net.connect(port, '127.0.0.1');
    let text = '';
    s.on('data', (d: Buffer) => {
      text += d.toString('latin1');
    });
    s.on('error', () => {});
    const timer = setTimeout(() => {
      s.destroy();
      resolve({ text, ms: Date.now() - t0, closed: false });
    }, giveUpMs);
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ text, ms: Date.now() - t0, closed: true });
    });
    s.write(bytes);
  });
}

describe('node fronts: slow clients', () => {
  let gw: GatewayServer;
  let keys: LocalGatewayKeys;
  let port: number;
  before(async () => {
    keys = new LocalGatewayKeys();
    gw = await startGateway({ keys, h2Plain: { host: '127.0.0.1', port: 0, limits: LIMITS }, log: () => {} });
    port = gw.ports.h2Plain as number;
  });
  after(async () => {
    await gw.close();
    keys.close();
  });

  it('HTTP/1.1: headers trickled past headersMs are cut (408, closed)', async () => {
    const r = await trickle(port, 'GET /healthz HTTP/1.1\r\nhost: x\r\n');
    assert.ok(r.closed, 'the server closed the connection');
    assert.ok(r.ms < 3000, `${r.ms} ms`);
    assert.match(r.text, /^HTTP\/1\.1 408/);
  });

  it('HTTP/1.1: a body stalled past requestMs is cut', async () => {
    const r = await trickle(
      port,
      'POST /v1/encrypt/k HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"plai',
    );
    assert.ok(r.closed);
    assert.ok(r.ms < 4000, `${r.ms} ms`);
  });

  it('h2c: advertises the stream limit, resets a stalled stream, closes an idle session', async () => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', () => {});
    const sessionClosed = new Promise<number>((resolve) => session.on('close', () => resolve(Date.now())));
    await new Promise<void>((resolve) => session.once('remoteSettings', () => resolve()));
    assert.equal(session.remoteSettings.maxConcurrentStreams, LIMITS.maxStreams);
    const stream = session.request({
      ':method': 'POST',
      ':path': '/v1/encrypt/k',
      'content-type': 'application/json',
      'x-okcm-tenant': 't1',
    });
    stream.write('{"plaintext"'); // and nothing more
    stream.on('error', () => {});
    const t0 = Date.now();
    const code = await new Promise<number>((resolve) => stream.on('close', () => resolve(stream.rstCode)));
    const reset = Date.now() - t0;
    assert.equal(code, http2.constants.NGHTTP2_CANCEL, 'reset by the server, not finished');
    assert.ok(
      reset < LIMITS.sessionIdleMs,
      `the stream was reset by its own limit (${reset} ms), before the session's`,
    );
    const closedAt = await sessionClosed;
    assert.ok(closedAt - t0 < 4000, 'the idle session was closed by the server');
  });
});

describe('request body: refused or unread bodies keep nothing', () => {
  it('a body refused by its declared length stops the adapter and keeps no later chunk', async () => {
    let stopped = 0;
    const body = new RequestBody(1_000_000, 2_000_000, () => stopped++);
    body.push(Buffer.alloc(1000));
    await assert.rejects(body.readAll(64 * 1024), { code: 'body_too_large' });
    assert.equal(stopped, 1, 'the adapter was told to stop reading');
    const before = body.received;
    body.push(Buffer.alloc(50_000));
    assert.equal(body.received, before, 'nothing more counted or kept');
  });

  it('discard(): an early answer stops reading an unread body; no effect once read', async () => {
    let stopped = 0;
    const body = new RequestBody(undefined, 2_000_000, () => stopped++);
    body.push(Buffer.alloc(10));
    body.discard();
    assert.equal(stopped, 1);
    body.push(Buffer.alloc(10));
    assert.equal(body.received, 10);
    const read = new RequestBody(3, 100, () => stopped++);
    read.push(Buffer.from('abc'));
    read.end();
    assert.equal((await read.readAll(100)).toString(), 'abc');
    read.discard();
    assert.equal(stopped, 1);
  });
});
