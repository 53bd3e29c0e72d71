/** RequestBody: Content-Length first, counting while reading, hard cap, aborts. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KcmError } from '../../../common/src/errors.ts';
import { ClientAbortedError, RequestBody } from '../../../gateway/src/pipeline/request-body.ts';

const code = (c: string) => (e: unknown) => e instanceof KcmError && e.code === c;

describe('RequestBody', () => {
  it('rejects by Content-Length before any byte arrives', async () => {
    const b = new RequestBody(101, 1000);
    await assert.rejects(b.readAll(100), code('body_too_large'));
  });

  it('counts bytes while reading and stops buffering past the limit', async () => {
    let overflowed = 0;
    const b = new RequestBody(undefined, 1000, () => overflowed++);
    const p = b.readAll(10);
    b.push(Buffer.from('123456'));
    b.push(Buffer.from('789012'));
    b.push(Buffer.from('more'));
    await assert.rejects(p, code('body_too_large'));
    assert.equal(overflowed, 1);
  });

  it('applies the hard cap to bytes that arrive before the reader', async () => {
    const b = new RequestBody(undefined, 8);
    b.push(Buffer.alloc(9));
    await assert.rejects(b.readAll(100), code('body_too_large'));
  });

  it('resolves with the whole body, whether it ended before or after readAll', async () => {
    const early = new RequestBody(5, 100);
    early.push(Buffer.from('ab'));
    early.push(Buffer.from('cde'));
    early.end();
    assert.equal((await early.readAll(5)).toString(), 'abcde');
    const late = new RequestBody(undefined, 100);
    const p = late.readAll(50);
    late.push(Buffer.from('x'));
    late.end();
    assert.equal((await p).toString(), 'x');
    await assert.rejects(late.readAll(50), /read twice/);
  });

  it('rejects with ClientAbortedError when the client goes away mid-body', async () => {
    const b = new RequestBody(100, 1000);
    const p = b.readAll(1000);
    b.push(Buffer.from('partial'));
    b.abort();
    await assert.rejects(p, ClientAbortedError);
  });
});
