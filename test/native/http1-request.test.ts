/**
 * The native request-head parser (native/src/http1_request.rs) against the
 * front it would sit beside, a running uWS server (the same binary the
 * gateway asserts): for generated requests (valid, odd, malformed, mutated),
 * whenever the native parser reads a head, uWS reads the same method, path,
 * query, headers and body length, and starts the next request on the same
 * connection at the same byte (a pipelined `GET /second` after the body is
 * answered as such). Where the native parser declines, the connection
 * would go to uWS as it came, so nothing is asserted. This is what a native
 * front (docs/decisions/0001-native-data-plane.md) needs to serve some
 * requests itself and hand the rest over without a desync.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { loadUws } from '../../gateway/src/http/uws-load.ts';
import { type Http1RequestHead, loadNative } from '../../native/ts/load.ts';
import { skipFor } from './backends.ts';

type Uws = typeof import('@trufflesuite/uws-js-unofficial');

const MAX_HEAD = 4096;
const MAX_HEADERS = 64;
const SECOND = Buffer.from('GET /second HTTP/1.1\r\nHost: s\r\n\r\n');

/** What uWS read, as its handler saw it. */
interface Echo {
  method: string;
  url: string;
  query: string;
  headers: [string, string][];
  bodyLength: number;
}

function skipReason(): string | false {
  const s = skipFor('native');
  if (s) return s;
  return loadUws().uws ? false : `uWS native binary not loaded: ${loadUws().error}`;
}

let port = 0;
let close: (() => void) | undefined;

/**
 * Sends `bytes` on a new connection (in two writes cut at `cut` when it is
 * over 0); the echoes of the 200 answers read
 * before the server stops answering (at most `n`; uWS frames its answers
 * with Content-Length).
 */
function exchange(bytes: Buffer, n: number, cut = 0): Promise<Echo[]> {
  return new Promise((resolve) => {
    const out: Echo[] = [];
    let buf = Buffer.alloc(0);
    const s = net.connect(port, '127.0.0.1', () => {
      s.setNoDelay(true);
      if (cut <= 0) return s.end(bytes);
      // Two writes a moment apart, so uWS reads the head in two parts.
      s.write(bytes.subarray(0, cut));
      setTimeout(() => s.write(bytes.subarray(cut)), 2);
    });
    const done = () => {
      s.destroy();
      resolve(out);
    };
    s.setTimeout(10_000, done);
    s.on('error', done);
    s.on('close', done);
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.toString('latin1', 0, end);
        const len = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? Number.NaN);
        if (!head.startsWith('HTTP/1.1 200 ') || !Number.isSafeInteger(len)) return done();
        if (buf.length < end + 4 + len) return;
        out.push(JSON.parse(buf.toString('utf8', end + 4, end + 4 + len)) as Echo);
        buf = buf.subarray(end + 4 + len);
        if (out.length === n) return done();
      }
    });
  });
}

// Requests made of pieces: each piece good (what the native parser should read) or odd (the
// spellings each rule is about); a request is all good, or good and odd mixed, then maybe mutated.
const good = {
  method: fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'HEAD'),
  target: fc.oneof(
    fc.constantFrom('/orders', '/orders/1?x=1&y=2', '/a%20b', '/?', '/a?', '/t/acme/p/9', '/x;y', "/~!$&'()*+,=:@"),
    fc.stringMatching(/^\/[!-"$-~]{0,12}$/),
  ),
  version: fc.constant('HTTP/1.1'),
  hosts: fc.constant(1),
  length: fc.option(fc.nat({ max: 40 }).map(String), { freq: 2 }).map((v) => v ?? undefined),
  name: fc.oneof(
    fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,10}$/),
    fc.constantFrom('Content-Type', 'X-Tenant-Id', 'Accept', 'Connection'),
  ),
  value: fc.oneof(
    fc.stringMatching(/^[ -~]{0,16}$/),
    fc.constantFrom('close', 'keep-alive', 'Keep-Alive, close', ' \tv\t ', ''),
  ),
  eol: fc.constant('\r\n'),
};
const odd = {
  method: fc.constantFrom('get', 'G3T', 'FOO', 'CONNECT', '', 'GET '),
  target: fc.constantFrom('/a#b', 'http://x/', '*', '/\xe9', '/a b', '', '//', '/a\tb'),
  version: fc.constantFrom('HTTP/1.0', 'HTTP/1.1 ', 'http/1.1', 'HTTP/2'),
  hosts: fc.constantFrom(0, 2),
  length: fc.constantFrom('01', '+3', '3,3', ' 3 ', '', '1e1', '99999999999999999', '999999999', '1000000000'),
  name: fc.constantFrom(
    'Transfer-Encoding',
    'Expect',
    'Upgrade',
    'Host',
    'Content-Length',
    'X Y',
    ' X',
    'X\xe9',
    '',
    'X!',
    'X_Y',
  ),
  value: fc.constantFrom('a\0b', '\xe9', 'a\x7fb', 'a\rb', 'chunked', 'upgrade'),
  eol: fc.constantFrom('\n', '\r'),
};
/** A piece: always good, or odd one time in `odds`. */
function piece<K extends keyof typeof good>(k: K, odds: number) {
  return odds === 0
    ? good[k]
    : (fc.oneof({ weight: odds - 1, arbitrary: good[k] }, { weight: 1, arbitrary: odd[k] }) as (typeof good)[K]);
}
const requests = fc
  .constantFrom(0, 0, 0, 6)
  .chain((odds) =>
    fc.record({
      method: piece('method', odds),
      target: piece('target', odds),
      version: piece('version', odds),
      hosts: piece('hosts', odds),
      length: fc.oneof(good.length, odds === 0 ? good.length : odd.length),
      headers: fc.array(fc.tuple(piece('name', odds * 2), piece('value', odds * 2), piece('eol', odds * 3)), {
        maxLength: 6,
      }),
      // One byte in six cases replaced (fc.option's freq is the odds of *no* value).
      mutation: fc.oneof(
        { weight: 5, arbitrary: fc.constant(null) },
        { weight: 1, arbitrary: fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })) },
      ),
    }),
  )
  .map((r) => {
    let head = `${r.method} ${r.target} ${r.version}\r\n`;
    for (let i = 0; i < r.hosts; i++) head += `Host: h${i}\r\n`;
    if (r.length !== undefined) head += `Content-Length: ${r.length}\r\n`;
    for (const [k, v, e] of r.headers) head += `${k}: ${v}${e}`;
    head += '\r\n';
    const n = Number(r.length);
    const body = Buffer.alloc(Number.isSafeInteger(n) && n <= 40 ? n : 0, 0x62);
    let bytes = Buffer.concat([Buffer.from(head, 'latin1'), body]);
    if (r.mutation) {
      const [pos, byte] = r.mutation;
      bytes = Buffer.from(bytes);
      bytes[pos % bytes.length] = byte;
    }
    return bytes;
  });

function pathOf(target: string): [string, string] {
  const q = target.indexOf('?');
  return q < 0 ? [target, ''] : [target.slice(0, q), target.slice(q + 1)];
}

describe('native request-head parser reads as uWS reads', { skip: skipReason() }, () => {
  const parse = loadNative().backend?.http1RequestHead as (
    b: Uint8Array,
    h: number,
    n: number,
  ) => Http1RequestHead | null;

  before(async () => {
    const uws = loadUws().uws as Uws;
    const app = uws.App();
    app.any('/*', (res, req) => {
      const headers: [string, string][] = [];
      req.forEach((k, v) => {
        headers.push([k, v]);
      });
      const echo = {
        method: req.getMethod(),
        url: req.getUrl(),
        query: req.getQuery() ?? '',
        headers,
        bodyLength: 0,
      };
      let aborted = false;
      res.onAborted(() => {
        aborted = true;
      });
      // As the gateway's uWS adapter: no body to read without a length above 0 (uWS never calls
      // onData for `Content-Length: 0` when the head came in more than one read).
      const length = headers.find(([k]) => k === 'content-length')?.[1];
      if (length === undefined || length === '0') {
        res.cork(() => res.end(JSON.stringify(echo)));
        return;
      }
      res.onData((chunk, last) => {
        echo.bodyLength += chunk.byteLength;
        if (last && !aborted) res.cork(() => res.end(JSON.stringify(echo)));
      });
    });
    await new Promise<void>((resolve, reject) => {
      app.listen('127.0.0.1', 0, (s) => {
        if (!s) return reject(new Error('listen failed'));
        port = uws.us_socket_local_port(s as never);
        close = () => uws.us_listen_socket_close(s as never);
        resolve();
      });
    });
  });
  after(() => close?.());

  it('agrees on every head it reads, and frames the next request alike (property)', async () => {
    const seen = { read: 0, declined: 0 };
    await fc.assert(
      fc.asyncProperty(requests, fc.nat(), async (bytes, cut) => {
        const head = parse(bytes, MAX_HEAD, MAX_HEADERS);
        // Incomplete (a mutation hit the final CRLF, or raised the length past the body sent):
        // uWS waits as well.
        if (head === null || 'decline' in head || bytes.length < head.len + head.contentLength) {
          seen.declined++;
          return;
        }
        seen.read++;
        // Sent in two writes cut at a random place: uWS must read a head that arrives in parts alike.
        const whole = Buffer.concat([bytes.subarray(0, head.len + head.contentLength), SECOND]);
        const answers = await exchange(whole, 2, cut % whole.length);
        const label = JSON.stringify(bytes.toString('latin1'));
        // After `Connection: close` the native front closes once it has answered (RFC 9112 §9.6);
        // whether uWS answers a request pipelined after it is its own affair.
        const wanted = head.close ? 1 : 2;
        assert.ok(answers.length >= wanted, `uWS answered ${answers.length} of the ${wanted} requests: ${label}`);
        const [first, second] = answers as [Echo, Echo | undefined];
        const [path, query] = pathOf(head.target);
        const headers: [string, string][] = [];
        for (let i = 0; i < head.headers.length; i += 2)
          headers.push([(head.headers[i] as string).toLowerCase(), head.headers[i + 1] as string]);
        assert.deepEqual(
          first,
          { method: head.method.toLowerCase(), url: path, query, headers, bodyLength: head.contentLength },
          label,
        );
        if (!head.close)
          assert.equal(second?.url, '/second', `the next request starts where the native parser says: ${label}`);
      }),
      { numRuns: 600 },
    );
    // Both sides of the rule are exercised.
    assert.ok(seen.read > 200 && seen.declined > 100, JSON.stringify(seen));
  });

  it('agrees byte by byte: every byte value in a target, a header name and a header value', async () => {
    const templates = [
      (c: string) => `GET /a${c}b HTTP/1.1\r\nHost: h\r\n\r\n`,
      (c: string) => `GET / HTTP/1.1\r\nHost: h\r\nX${c}Y: v\r\n\r\n`,
      (c: string) => `GET / HTTP/1.1\r\nHost: h\r\nX: a${c}b\r\n\r\n`,
      (c: string) => `GET / HTTP/1.1\r\nHost: h\r\nX: ${c}v${c}\r\n\r\n`,
    ];
    let read = 0;
    for (const template of templates) {
      for (let byte = 0; byte < 256; byte++) {
        const bytes = Buffer.from(template(String.fromCharCode(byte)), 'latin1');
        const head = parse(bytes, MAX_HEAD, MAX_HEADERS);
        if (head === null || 'decline' in head) continue;
        read++;
        const answers = await exchange(Buffer.concat([bytes, SECOND]), 2);
        const label = `${JSON.stringify(template('_'))} with byte ${byte}`;
        assert.equal(answers.length, 2, `read natively, refused by uWS: ${label}`);
        const [first] = answers as [Echo];
        const headers = [];
        for (let i = 0; i < head.headers.length; i += 2)
          headers.push([(head.headers[i] as string).toLowerCase(), head.headers[i + 1]]);
        assert.deepEqual([first.url, first.query, first.headers], [...pathOf(head.target), headers], label);
      }
    }
    assert.ok(read > 300, `${read} of 1024 read`);
  });

  it('agrees on the number of headers and the size of the head', async () => {
    let most = 0;
    for (let n = 1; n <= 60; n++) {
      let text = 'GET / HTTP/1.1\r\nHost: h\r\n';
      for (let k = 1; k < n; k++) text += `X-${k}: v\r\n`;
      const bytes = Buffer.from(`${text}\r\n`);
      const head = parse(bytes, MAX_HEAD, 1000);
      if (head === null || 'decline' in head) continue;
      most = n;
      const answers = await exchange(Buffer.concat([bytes, SECOND]), 2);
      assert.equal(answers.length, 2, `${n} headers read natively, refused by uWS`);
    }
    assert.ok(most >= 40, `read up to ${most} headers`);
    // Heads of 4,094 to 4,097 bytes around the 4 KiB uWS keeps of an unfinished head, whole and in
    // two parts (the limit only shows when the head comes in parts).
    const frame = 'GET / HTTP/1.1\r\nHost: h\r\nX: \r\n\r\n'.length;
    for (const total of [100, 4094, 4095, 4096, 4097, 9000]) {
      const bytes = Buffer.from(`GET / HTTP/1.1\r\nHost: h\r\nX: ${'v'.repeat(total - frame)}\r\n\r\n`);
      const head = parse(bytes, MAX_HEAD, MAX_HEADERS);
      if (head === null || 'decline' in head) continue;
      for (const cut of [0, 2000, bytes.length - 2]) {
        const answers = await exchange(Buffer.concat([bytes, SECOND]), 2, cut);
        assert.equal(answers.length, 2, `a ${bytes.length}-byte head, cut at ${cut}`);
      }
    }
  });

  it('says "partial" for every prefix of a head it reads', () => {
    const t = Buffer.from('POST /orders HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nX-A: b\r\n\r\n{}');
    const whole = parse(t, MAX_HEAD, MAX_HEADERS);
    assert.ok(whole && 'len' in whole);
    for (let n = 0; n < whole.len; n++) assert.equal(parse(t.subarray(0, n), MAX_HEAD, MAX_HEADERS), null, `${n}`);
  });
});
