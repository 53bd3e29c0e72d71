/**
 * How the uWS front writes a response (gateway/src/http/uws-adapter.ts
 * writeResponse), read as raw bytes from a real uWS server: answers without
 * content (HEAD, 204, 304) carry the right Content-Length or none, never a
 * body, and leave the connection usable; header values keep their bytes
 * (Latin-1 strings, RFC 9110 §5.5); a closing answer closes.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { HttpResponse, us_listen_socket } from '@trufflesuite/uws-js-unofficial';
import { requireNativeUws, writeResponse } from '../../../gateway/src/http/uws-adapter.ts';
import type { PipelineResponse } from '../../../gateway/src/pipeline/context.ts';

const ERROR_BODY = '{"error":{"code":"not_found","message":"no such endpoint"}}';

/** What the server answers per path (the method only decides `head`). */
const ANSWERS: Record<string, PipelineResponse> = {
  '/ok': { status: 200, headers: { 'content-type': 'text/plain' }, body: 'hello' },
  '/upstream-head': {
    status: 200,
    headers: { 'content-type': 'application/json', 'content-length': '1234' },
    body: '',
  },
  '/no-length': { status: 200, headers: { 'content-type': 'application/json' }, body: Buffer.alloc(0) },
  '/error': { status: 404, headers: { 'content-type': 'application/json' }, body: ERROR_BODY },
  '/204': { status: 204, headers: { 'x-a': '1' }, body: '' },
  '/304': { status: 304, headers: { etag: '"v1"', 'content-length': '50' }, body: '' },
  '/bad-length': { status: 200, headers: { 'content-length': '1, 2' }, body: '' },
  '/stray-length': { status: 200, headers: { 'content-length': '999' }, body: 'hello' },
  '/latin1': { status: 200, headers: { 'x-name': 'caf\u00e9', 'x-list': ['\u00e0', 'b'] }, body: 'ok' },
  '/wide': { status: 200, headers: { 'x-wide': 'a\u010d\u010ax-injected: yes' }, body: 'ok' },
  '/close-head': { status: 413, headers: {}, body: ERROR_BODY, close: true },
  '/close-204': { status: 204, headers: {}, body: '', close: true },
  '/text': { status: 200, headers: {}, body: 'caf\u00e9 \u{1f511} \u20ac' },
  '/lone': { status: 200, headers: {}, body: 'a\ud800b\udc00c' },
};

interface Exchange {
  /** Each answer's bytes (Latin-1), up to the next request. */
  answers: string[];
  /** The server closed the connection. */
  closed: boolean;
}

/**
 * Sends `requests` one after the other on ONE connection, each when the
 * previous answer's head arrived and 60 ms passed with no more bytes (so a
 * body sent where none may be is caught in that answer).
 */
function exchange(port: number, requests: string[]): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    const answers: string[] = [];
    let current: Buffer[] = [];
    let done = false;
    let quiet: NodeJS.Timeout | undefined;
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(quiet);
      clearTimeout(failsafe);
      if (current.length > 0) answers.push(Buffer.concat(current).toString('latin1'));
      s.destroy();
      resolve({ answers, closed });
    };
    const next = () => {
      answers.push(Buffer.concat(current).toString('latin1'));
      current = [];
      const request = requests[answers.length];
      if (request === undefined) finish(false);
      else s.write(request);
    };
    const failsafe = setTimeout(() => {
      done = true;
      s.destroy();
      reject(new Error(`no complete answer after ${answers.length} of ${requests.length}`));
    }, 3000);
    s.on('data', (d: Buffer) => {
      current.push(d);
      if (!Buffer.concat(current).includes('\r\n\r\n')) return;
      clearTimeout(quiet);
      quiet = setTimeout(next, 60);
    });
    s.on('error', () => {});
    s.on('close', () => finish(true));
    s.once('connect', () => s.write(requests[0] as string));
  });
}

const req = (method: string, path: string) => `${method} ${path} HTTP/1.1\r\nhost: x\r\n\r\n`;

/** Header lines of an answer, lower-cased names, in order. */
function headerLines(answer: string): [string, string][] {
  const head = answer.slice(0, answer.indexOf('\r\n\r\n'));
  return head
    .split('\r\n')
    .slice(1)
    .map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]);
}
const lengths = (answer: string) =>
  headerLines(answer)
    .filter(([n]) => n === 'content-length')
    .map(([, v]) => v);
const bodyOf = (answer: string) => answer.slice(answer.indexOf('\r\n\r\n') + 4);

describe('uWS front: writeResponse framing and header bytes', () => {
  let port = 0;
  let listen: us_listen_socket | undefined;
  let close: () => void = () => {};
  before(async () => {
    const { uws } = requireNativeUws();
    const app = uws.App();
    // Answered after a turn of the event loop and corked, as the pipeline does.
    app.any('/*', (res: HttpResponse, r) => {
      let gone = false;
      res.onAborted(() => {
        gone = true;
      });
      const head = r.getMethod().toUpperCase() === 'HEAD';
      const answer = ANSWERS[r.getUrl()] as PipelineResponse;
      setImmediate(() => {
        if (!gone) res.cork(() => writeResponse(res, { ...answer, headers: { ...answer.headers } }, head));
      });
    });
    port = await new Promise<number>((resolve, reject) =>
      app.listen('127.0.0.1', 0, (s) => {
        if (!s) reject(new Error('no listen'));
        listen = s as us_listen_socket;
        resolve(uws.us_socket_local_port(s as never));
      }),
    );
    close = () => listen && uws.us_listen_socket_close(listen);
  });
  after(() => close());

  it('HEAD reports the answer’s own Content-Length, sends no body, and the connection serves the next request', async () => {
    const x = await exchange(port, [req('HEAD', '/upstream-head'), req('GET', '/ok')]);
    assert.equal(x.answers.length, 2, 'both answered on one connection');
    assert.deepEqual(lengths(x.answers[0] as string), ['1234']);
    assert.equal(bodyOf(x.answers[0] as string), '');
    assert.match(x.answers[1] as string, /^HTTP\/1\.1 200 OK\r\n/);
    assert.equal(bodyOf(x.answers[1] as string), 'hello');
  });

  it('HEAD without a length: none (never a false 0); our own error answer: its length, no body', async () => {
    const x = await exchange(port, [req('HEAD', '/no-length'), req('HEAD', '/error'), req('HEAD', '/bad-length')]);
    assert.equal(x.answers.length, 3);
    assert.deepEqual(lengths(x.answers[0] as string), []);
    assert.deepEqual(lengths(x.answers[1] as string), [String(ERROR_BODY.length)]);
    assert.equal(bodyOf(x.answers[1] as string), '', 'the error body is not sent to HEAD');
    assert.deepEqual(lengths(x.answers[2] as string), [], 'an invalid length is not reported');
  });

  it('204 has no Content-Length (RFC 9110 §8.6); 304 keeps the length it declares; both without body', async () => {
    const x = await exchange(port, [req('GET', '/204'), req('GET', '/304'), req('GET', '/ok')]);
    assert.equal(x.answers.length, 3, 'the connection stays usable');
    assert.match(x.answers[0] as string, /^HTTP\/1\.1 204 No Content\r\n/);
    assert.deepEqual(lengths(x.answers[0] as string), []);
    assert.ok(headerLines(x.answers[0] as string).some(([n, v]) => n === 'x-a' && v === '1'));
    assert.deepEqual(lengths(x.answers[1] as string), ['50']);
    assert.equal(bodyOf(x.answers[1] as string), '');
    assert.equal(bodyOf(x.answers[2] as string), 'hello');
  });

  it('a content-length header of an answer with a body is not copied: uWS writes the real one, once', async () => {
    const x = await exchange(port, [req('GET', '/stray-length')]);
    assert.deepEqual(lengths(x.answers[0] as string), ['5']);
    assert.equal(bodyOf(x.answers[0] as string), 'hello');
  });

  it('header values go as their bytes: Latin-1 chars as one byte each, not UTF-8 twice', async () => {
    const x = await exchange(port, [req('GET', '/latin1')]);
    const raw = Buffer.from(x.answers[0] as string, 'latin1');
    assert.ok(raw.includes(Buffer.from('x-name: caf\xe9\r\n', 'latin1')), 'é is byte E9');
    assert.ok(raw.includes(Buffer.from('x-list: \xe0\r\nx-list: b\r\n', 'latin1')), 'each value of a list');
    assert.ok(!raw.includes(Buffer.from([0xc3])), 'no UTF-8 encoding of the value');
  });

  it('a char past 0xFF is written as UTF-8, never truncated into CR LF', async () => {
    const x = await exchange(port, [req('GET', '/wide')]);
    const lines = headerLines(x.answers[0] as string);
    assert.ok(!lines.some(([n]) => n === 'x-injected'), 'no injected header line');
    const raw = Buffer.from(x.answers[0] as string, 'latin1');
    assert.ok(raw.includes(Buffer.from('x-wide: a\u010d\u010ax-injected: yes\r\n', 'utf8')));
  });

  it('a string body goes out as Buffer.from would write it: UTF-8, lone surrogates as U+FFFD, the right length', async () => {
    for (const path of ['/text', '/lone']) {
      const { answers } = await exchange(port, [req('GET', path)]);
      const answer = answers[0] as string;
      const expected = Buffer.from((ANSWERS[path] as PipelineResponse).body as string);
      assert.deepEqual(lengths(answer), [String(expected.length)], path);
      assert.equal(Buffer.from(bodyOf(answer), 'latin1').toString('hex'), expected.toString('hex'), path);
    }
  });

  it('a closing answer to HEAD or a closing 204 closes the connection without a body (Content-Length: 0, uWS limit)', async () => {
    for (const [method, path] of [
      ['HEAD', '/close-head'],
      ['GET', '/close-204'],
    ] as const) {
      const x = await exchange(port, [req(method, path), req('GET', '/ok')]);
      assert.equal(x.closed, true, `${path}: closed`);
      assert.equal(x.answers.length, 1, `${path}: nothing after the close`);
      assert.ok(headerLines(x.answers[0] as string).some(([n, v]) => n === 'connection' && v === 'close'));
      assert.equal(bodyOf(x.answers[0] as string), '');
    }
  });
});
