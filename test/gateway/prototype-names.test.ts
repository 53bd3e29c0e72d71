/**
 * Names from the network that are members of Object.prototype (`__proto__`,
 * `constructor`, `toString`) are data like any other name on the gateway's
 * paths: an upstream's headers through the upstream client, the hop-by-hop
 * filter and the uWS writer; a Core error code. (The request fronts are
 * covered end to end in proxy/proxy-routes.test.ts.)
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { writeResponse } from '../../gateway/src/http/uws-adapter.ts';
import { coreError } from '../../gateway/src/keys/core-session.ts';
import { endToEnd } from '../../gateway/src/upstream/forward.ts';
import { ResponseParser } from '../../gateway/src/upstream/h1-parser.ts';

/** A uWS response that records the head it is given. */
function recorder() {
  const lines: string[] = [];
  const res = {
    writeStatus: (s: string) => lines.push(`status ${s}`),
    writeHeader: (k: string, v: string) => lines.push(`${k}: ${v}`),
    getWriteOffset: () => 0,
    tryEnd: () => [true, true],
    end: () => undefined,
  };
  return { lines, res: res as unknown as Parameters<typeof writeResponse>[0] };
}

describe('names that are members of Object.prototype', () => {
  it('an upstream `__proto__` header, once or repeated, stays a header from the parser to the client', () => {
    const p = new ResponseParser({ maxHeadBytes: 4096, maxBodyBytes: 1024 }, false);
    const r = p.feed(
      Buffer.from(
        'HTTP/1.1 200 OK\r\n__proto__: a\r\n__proto__: b\r\nConstructor: c\r\nX-Up: 1\r\ncontent-length: 0\r\n\r\n',
      ),
    );
    assert.ok(r);
    const out = endToEnd(r.headers);
    assert.equal(Object.getPrototypeOf(out), null, 'the filtered map has no prototype to be replaced');
    assert.deepEqual(Object.getOwnPropertyDescriptor(out, '__proto__')?.value, ['a', 'b']);
    const { lines, res } = recorder();
    writeResponse(res, { status: 200, headers: out, body: '' }, false);
    assert.deepEqual(lines, ['status 200 OK', '__proto__: a', '__proto__: b', 'constructor: c', 'x-up: 1']);
  });

  it('a Core error code that is an Object member is an unknown code: core_unavailable', () => {
    for (const code of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) {
      const e = coreError(500, { error: { code, message: 'x' } });
      assert.equal(e.code, 'core_unavailable', code);
      assert.equal(e.status, 503, code);
    }
    assert.equal(coreError(404, { error: { code: 'not_found', message: 'no key' } }).code, 'not_found');
  });
});
