/**
 * The upstream response parser (gateway/src/upstream/h1-parser.ts): framing
 * by Content-Length, chunked and close; interim answers; bodiless statuses
 * and 205 (never any content); Transfer-Encoding with Content-Length not reusable;
 * every malformed input a typed `bad_response`; any split of the bytes
 * into chunks parses to the same response (property).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { type H1Response, ResponseParser } from '../../../gateway/src/upstream/h1-parser.ts';
import { UpstreamFailure } from '../../../gateway/src/upstream/upstream-failure.ts';

const LIMITS = { maxHeadBytes: 8192, maxBodyBytes: 1 << 20 };

/**
 * Feeds `bytes` cut at `splits`. `borrowed`: each piece is fed from one
 * reused buffer that is scribbled over after every feed, as a socket's
 * shared read buffer is (h1-connection.ts).
 */
function parse(
  bytes: Buffer | string,
  o: { head?: boolean; splits?: number[]; close?: boolean; borrowed?: boolean } = {},
): H1Response {
  const buf = typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes;
  const p = new ResponseParser(LIMITS, o.head ?? false, o.borrowed ?? false);
  const cuts = [...new Set(o.splits ?? [])].filter((c) => c > 0 && c < buf.length).sort((a, b) => a - b);
  const shared = Buffer.alloc(buf.length);
  let at = 0;
  let res: H1Response | undefined;
  for (const c of [...cuts, buf.length]) {
    assert.equal(res, undefined, 'bytes after a complete response');
    if (o.borrowed) {
      buf.copy(shared, 0, at, c);
      res = p.feed(shared.subarray(0, c - at));
      shared.fill(0x5a);
    } else res = p.feed(buf.subarray(at, c));
    at = c;
  }
  if (!res && o.close) res = p.end();
  assert.ok(res, 'response incomplete');
  return res;
}

function failure(f: () => unknown, kind: string): void {
  assert.throws(f, (e: unknown) => e instanceof UpstreamFailure && e.kind === kind);
}

function chunked(body: Buffer, sizes: number[]): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  for (const s of sizes) {
    if (at >= body.length) break;
    const piece = body.subarray(at, at + Math.max(1, s));
    at += piece.length;
    parts.push(Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n'));
  }
  if (at < body.length) {
    const rest = body.subarray(at);
    parts.push(Buffer.from(`${rest.length.toString(16)};ext=1\r\n`), rest, Buffer.from('\r\n'));
  }
  parts.push(Buffer.from('0\r\nx-trailer: t\r\n\r\n'));
  return Buffer.concat(parts);
}

describe('upstream response parser', () => {
  it('Content-Length body, headers lower-cased, repeats as arrays, keep-alive', () => {
    const r = parse(
      'HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nSet-Cookie: a=1\r\nset-cookie: b=2\r\nContent-Length: 2\r\n\r\n{}',
    );
    assert.equal(r.status, 201);
    assert.equal(r.headers['content-type'], 'application/json');
    assert.deepEqual(r.headers['set-cookie'], ['a=1', 'b=2']);
    assert.equal(r.body.toString(), '{}');
    assert.equal(r.keepAlive, true);
  });

  it('headers named like Object.prototype members are headers like any other', () => {
    const r = parse('HTTP/1.1 200 OK\r\nConstructor: c\r\n__proto__: p\r\ntoString: t\r\ncontent-length: 0\r\n\r\n');
    assert.equal(Object.getPrototypeOf(r.headers), null);
    assert.deepEqual(Object.entries(r.headers), [
      ['constructor', 'c'],
      ['__proto__', 'p'],
      ['tostring', 't'],
      ['content-length', '0'],
    ]);
  });

  it('status line without a reason phrase; Connection: close and HTTP/1.0 are not reusable', () => {
    assert.equal(parse('HTTP/1.1 204\r\n\r\n').status, 204);
    assert.equal(parse('HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 0\r\n\r\n').keepAlive, false);
    assert.equal(parse('HTTP/1.0 200 OK\r\ncontent-length: 0\r\n\r\n').keepAlive, false);
    assert.equal(parse('HTTP/1.0 200 OK\r\nconnection: keep-alive\r\ncontent-length: 0\r\n\r\n').keepAlive, true);
  });

  it('a body delimited by the close completes at end() and is not reusable', () => {
    const r = parse('HTTP/1.1 200 OK\r\n\r\nhello', { close: true });
    assert.equal(r.body.toString(), 'hello');
    assert.equal(r.keepAlive, false);
  });

  it('interim 100 and 103 answers are skipped, 101 refused', () => {
    const r = parse(
      'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\nx',
    );
    assert.equal(r.status, 200);
    assert.equal(r.headers.link, undefined);
    failure(() => parse('HTTP/1.1 101 Switching Protocols\r\nupgrade: h2c\r\n\r\n'), 'bad_response');
  });

  it('HEAD, 204 and 304 answers have no body whatever their headers say', () => {
    assert.equal(parse('HTTP/1.1 200 OK\r\ncontent-length: 50\r\n\r\n', { head: true }).body.length, 0);
    assert.equal(parse('HTTP/1.1 304 Not Modified\r\ncontent-length: 50\r\n\r\n').body.length, 0);
  });

  it('205 has no content: empty by length, chunked or close is accepted; any content is bad_response', () => {
    const empty = [
      parse('HTTP/1.1 205 Reset Content\r\ncontent-length: 0\r\n\r\n'),
      parse('HTTP/1.1 205 Reset Content\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n', { splits: [40, 44] }),
      parse('HTTP/1.1 205 Reset Content\r\n\r\n', { close: true }),
    ];
    assert.deepEqual(
      empty.map((r) => [r.status, r.body.length, r.keepAlive]),
      [
        [205, 0, true],
        [205, 0, true],
        [205, 0, false],
      ],
    );
    const card = '{"card":{"number":"4111 1111 1111 111"}}';
    for (const bad of [
      `HTTP/1.1 205 Reset Content\r\ncontent-type: application/json\r\ncontent-length: ${card.length}\r\n\r\n${card}`,
      `HTTP/1.1 205 Reset Content\r\ntransfer-encoding: chunked\r\n\r\n${card.length.toString(16)}\r\n${card}\r\n0\r\n\r\n`,
      `HTTP/1.1 205 Reset Content\r\n\r\n${card}`,
    ]) {
      failure(() => parse(bad, { close: true }), 'bad_response');
    }
    // A declared length is refused at the head, without waiting for the body.
    const p = new ResponseParser(LIMITS, false);
    failure(() => p.feed(Buffer.from('HTTP/1.1 205 Reset Content\r\ncontent-length: 40\r\n\r\n')), 'bad_response');
  });

  it('chunked wins over Content-Length, and such an answer is not reusable; extensions and trailers are accepted', () => {
    const body = chunked(Buffer.from('hello world'), [4]).toString('latin1');
    const r = parse(`HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n${body}`);
    assert.equal(r.body.toString(), 'hello world');
    assert.equal(r.keepAlive, false, 'RFC 9112 §6.1: close the connection after a response with both');
    assert.equal(parse(`HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n${body}`).keepAlive, true);
  });

  it('malformed answers are bad_response, never a crash', () => {
    for (const bad of [
      'garbage\r\n\r\n',
      'HTTP/2 200 OK\r\n\r\n',
      'HTTP/1.1 20 OK\r\n\r\n',
      // RFC 9110 §15: 600–999 are not HTTP statuses (found by the native parser's fuzz target).
      'HTTP/1.1 600 Custom\r\ncontent-length: 0\r\n\r\n',
      'HTTP/1.1 999 Library Error\r\ncontent-length: 0\r\n\r\n',
      'HTTP/1.1 200 OK\r\nno-colon\r\n\r\n',
      // A line without a colon is refused even when a later line has one.
      'HTTP/1.1 200 OK\r\nno-colon\r\nx: y\r\n\r\n',
      'HTTP/1.1 200 OK\r\n: empty name\r\n\r\n',
      'HTTP/1.1 200 OK\r\nx: a\nb: c\r\n\r\n',
      'HTTP/1.1 200 OK\r\nx: a\rb\r\n\r\n',
      'HTTP/1.1 200 OK\r\nx: a\0b\r\n\r\n',
      'HTTP/1.1 200 OK\r\nx: y\r\nno-colon\r\n\r\n',
      'HTTP/1.1 200 OK\r\nbad name: x\r\n\r\n',
      'HTTP/1.1 200 OK\r\n folded: x\r\n\r\n',
      'HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nx',
      'HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n',
      'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n',
      'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1\r\nxy\r\n',
      'HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\nxy',
    ]) {
      failure(() => parse(bad, { close: false }), 'bad_response');
    }
    // Not HTTP at all is refused on the first bytes, before any head is complete.
    failure(() => new ResponseParser(LIMITS, false).feed(Buffer.from('SSH-2.0-OpenSSH')), 'bad_response');
  });

  it('limits: a head over maxHeadBytes, a body over maxBodyBytes (declared or counted)', () => {
    const small = { maxHeadBytes: 64, maxBodyBytes: 4 };
    failure(
      () => new ResponseParser(small, false).feed(Buffer.from(`HTTP/1.1 200 OK\r\nx: ${'a'.repeat(100)}`)),
      'bad_response',
    );
    failure(
      () => new ResponseParser(small, false).feed(Buffer.from('HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n')),
      'too_large',
    );
    const p = new ResponseParser(small, false);
    failure(() => p.feed(Buffer.from('HTTP/1.1 200 OK\r\n\r\n12345')), 'too_large');
  });

  it('borrowed chunks: an interim answer, a head and a close-delimited body split across reads survive the buffer being reused', () => {
    const wire = 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nx-a: 1\r\n\r\nhello, world';
    for (const splits of [[5], [20, 31, 40], [26, 50, 60], Array.from({ length: 70 }, (_, i) => i)]) {
      const r = parse(wire, { splits, borrowed: true, close: true });
      assert.equal(r.status, 200);
      assert.equal(r.headers['x-a'], '1');
      assert.equal(r.body.toString(), 'hello, world');
      assert.equal(r.keepAlive, false);
    }
  });

  it('a response cut short is unavailable at end(), not a truncated success', () => {
    const p = new ResponseParser(LIMITS, false);
    assert.equal(p.feed(Buffer.from('HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n12345')), undefined);
    failure(() => p.end(), 'unavailable');
  });

  it('property: any split of a Content-Length or chunked response parses to the same status, headers and body (also from a reused read buffer)', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 600 }),
        fc.array(fc.integer({ min: 1, max: 80 }), { maxLength: 12 }),
        fc.array(fc.integer({ min: 0, max: 900 }), { maxLength: 10 }),
        fc.boolean(),
        fc.boolean(),
        (bytes, sizes, splits, useChunked, borrowed) => {
          const body = Buffer.from(bytes);
          const head = useChunked
            ? 'HTTP/1.1 200 OK\r\nx-a: 1\r\ntransfer-encoding: chunked\r\n\r\n'
            : `HTTP/1.1 200 OK\r\nx-a: 1\r\ncontent-length: ${body.length}\r\n\r\n`;
          const wire = Buffer.concat([Buffer.from(head), useChunked ? chunked(body, sizes) : body]);
          // Borrowed chunks are overwritten after each feed: what the parser kept must be its own copy.
          const r = parse(wire, { splits, borrowed });
          assert.equal(r.status, 200);
          assert.equal(r.headers['x-a'], '1');
          assert.deepEqual(r.body, body);
          assert.equal(r.keepAlive, true);
        },
      ),
      { numRuns: 300 },
    );
  });
});
