/**
 * Hostile input on both plaintext fronts (uWS and the node:http HTTP/1.1
 * side of the sniffed port): 413 by Content-Length before reading, 413 by
 * counting a chunked body, 400 malformed JSON / invalid UTF-8, 415 wrong
 * content type, bounded batches, and a client abort mid-body that leaves
 * the server healthy.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { b64, type Fixture, getText, postJson, rawExchange, startFixture } from '../api/gateway-fixture.ts';

const LIMIT = 64 * 1024;

function head(path: string, extra: string): string {
  return `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Okcm-Tenant: t1\r\n${extra}\r\n`;
}

describe('hostile input', () => {
  let f: Fixture;
  before(async () => {
    f = await startFixture({ maxBodyBytes: LIMIT, maxBatchItems: 10 });
  });
  after(() => f.close());

  for (const front of ['uws', 'plain'] as const) {
    const port = () => (front === 'uws' ? f.gw.ports.uws : f.gw.ports.h2Plain) as number;

    it(`413 from Content-Length before the body is sent, then closes (${front})`, async () => {
      const r = await rawExchange(port(), [head('/v1/encrypt/k', `Content-Length: ${LIMIT * 100}\r\n`), '{"plain'], {
        timeoutMs: 3000,
      });
      assert.match(r.text, /^HTTP\/1\.1 413 /);
      assert.match(r.text, /"code":"body_too_large"/);
      assert.ok(r.closed, 'the connection is closed: the unread body cannot be skipped');
    });

    it(`413 by counting a chunked body past the limit (${front})`, async () => {
      const chunk = 'a'.repeat(16 * 1024);
      const piece = `${chunk.length.toString(16)}\r\n${chunk}\r\n`;
      const chunks = [head('/v1/encrypt/k', 'Transfer-Encoding: chunked\r\n'), '6\r\n{"a":"\r\n'];
      for (let i = 0; i < 8; i++) chunks.push(piece);
      const r = await rawExchange(port(), chunks, { gapMs: 5, timeoutMs: 3000 });
      assert.match(r.text, /^HTTP\/1\.1 413 /);
      assert.match(r.text, /"code":"body_too_large"/);
    });

    it(`400 for malformed JSON and for invalid UTF-8 (${front})`, async () => {
      const base = f.base[front];
      const bad = await postJson(f, `${base}/v1/encrypt/k`, '{"plaintext": "aGk=",');
      assert.equal(bad.status, 400);
      assert.equal(bad.json.error.code, 'bad_request');
      assert.ok(!JSON.stringify(bad.json).includes('aGk='), 'the parser message (which quotes input) is not echoed');
      const bytes = Buffer.concat([Buffer.from('{"plaintext":"'), Buffer.from([0xc3, 0x28]), Buffer.from('"}')]);
      const r = await rawExchange(port(), [
        head('/v1/encrypt/k', `Content-Length: ${bytes.length}\r\nConnection: close\r\n`),
        bytes,
      ]);
      assert.match(r.text, /^HTTP\/1\.1 400 /);
      const arr = await postJson(f, `${base}/v1/encrypt/k`, '[1,2]');
      assert.equal(arr.status, 400);
      const deep = await postJson(f, `${base}/v1/encrypt/k`, `${'['.repeat(20000)}${']'.repeat(20000)}`);
      assert.equal(deep.status, 400);
    });

    it(`415 for a body that is not JSON (${front})`, async () => {
      const r = await postJson(
        f,
        `${f.base[front]}/v1/encrypt/k`,
        { plaintext: b64('x') },
        {
          'x-okcm-tenant': 't1',
          'content-type': 'text/plain',
        },
      );
      assert.equal(r.status, 415);
      assert.equal(r.json.error.code, 'unsupported_media_type');
    });

    it(`bounds batches (${front})`, async () => {
      const batch = Array.from({ length: 11 }, () => ({ plaintext: b64('x') }));
      const r = await postJson(f, `${f.base[front]}/v1/encrypt/k`, { batch });
      assert.equal(r.status, 413);
      assert.equal(r.json.error.code, 'batch_too_large');
      const empty = await postJson(f, `${f.base[front]}/v1/encrypt/k`, { batch: [] });
      assert.equal(empty.status, 400);
    });

    it(`survives a client abort mid-body and counts it (${front})`, async () => {
      const before = f.gw.metrics.aborts.get({ route: 'encrypt' });
      await rawExchange(port(), [head('/v1/encrypt/k', 'Content-Length: 5000\r\n'), '{"plaintext":"aGVsbG8'], {
        gapMs: 30,
        destroyAfterWrite: true,
      });
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(f.gw.metrics.aborts.get({ route: 'encrypt' }), before + 1);
      assert.equal((await getText(f, `${f.base[front]}/healthz`)).status, 200);
      const ok = await postJson(f, `${f.base[front]}/v1/encrypt/k`, { plaintext: b64('after abort') });
      assert.equal(ok.status, 200);
    });
  }

  it('leaks no pending request after many aborts', async () => {
    const before = f.gw.metrics.aborts.get({ route: 'decrypt' });
    const runs = Array.from({ length: 20 }, () =>
      rawExchange(f.gw.ports.uws as number, [head('/v1/decrypt/k', 'Content-Length: 50000\r\n'), '{"ciphertext":"'], {
        gapMs: 20,
        destroyAfterWrite: true,
      }),
    );
    await Promise.all(runs);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(f.gw.metrics.aborts.get({ route: 'decrypt' }), before + 20, 'every abort ended its request');
    assert.equal((await getText(f, `${f.base.uws}/healthz`)).status, 200);
    assert.deepEqual(f.logs, [], 'no internal errors were logged');
  });
});
