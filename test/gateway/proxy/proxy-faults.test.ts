/**
 * Proxy fault handling against real, misbehaving upstreams: refused
 * connection → 502, reset mid-response → 502, no answer → 504, garbage or
 * invalid JSON / text / gzip on a decrypting route → 502 (never passed
 * through), non-JSON or compressed request body on an encrypting route →
 * 415 and nothing forwarded, client abort mid-body or while the upstream
 * works → nothing leaks, the upstream request is aborted, the gateway goes on.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { call, type ProxyFixture, startProxyFixture } from './proxy-fixture.ts';

const until = async (cond: () => boolean, ms: number, what: string) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
};

describe('proxy faults', () => {
  let f: ProxyFixture;
  // The audit records of every request, as the audit log would store them.
  const audited: string[] = [];
  before(async () => {
    f = await startProxyFixture({
      auditLog: {
        append: (e) => {
          audited.push(JSON.stringify(e));
          return Promise.resolve();
        },
      },
    });
  });
  after(async () => {
    await f.close();
  });

  const code = (r: { json(): { error: { code: string } } }) => r.json().error.code;

  it('upstream refuses the connection → 502 upstream_unavailable', async () => {
    const r = await call(f, `${f.base.uws}/refused/x`, { body: 'hello' });
    assert.deepEqual([r.status, code(r)], [502, 'upstream_unavailable']);
    assert.ok(!r.body.toString().includes(String(f.up.refusedPort)), 'no upstream address in the answer');
  });

  it('upstream resets mid-response → 502, no partial body', async () => {
    const r = await call(f, `${f.base.uws}/sock/reset`);
    assert.deepEqual([r.status, code(r)], [502, 'upstream_unavailable']);
    assert.ok(!r.body.toString().includes('0123456789'));
  });

  it('upstream sends no answer → 504 upstream_timeout (headers timeout 300 ms)', async () => {
    const t0 = performance.now();
    const r = await call(f, `${f.base.uws}/raw/hang`, { body: 'x' });
    const ms = performance.now() - t0;
    assert.deepEqual([r.status, code(r)], [504, 'upstream_timeout']);
    assert.ok(ms >= 250 && ms < 3000, `${ms} ms`);
  });

  it('garbage that is not HTTP → 502 upstream_bad_response', async () => {
    const r = await call(f, `${f.base.uws}/sock/garbage`);
    assert.equal(r.status, 502);
    assert.ok(!r.body.toString().includes('SSH'));
  });

  it('decrypting route: invalid JSON, text, gzip or garbage from the upstream → 502, never passed through', async () => {
    for (const path of ['/dec/badjson', '/dec/text', '/dec/gzip', '/sockdec/garbage']) {
      const r = await call(f, `${f.base.uws}${path}`, { headers: { 'x-okcm-caller': 'billing' } });
      assert.equal(r.status, 502, path);
      assert.ok(['upstream_bad_response', 'upstream_unavailable'].includes(code(r)), `${path}: ${code(r)}`);
      const text = r.body.toString();
      assert.ok(!text.includes('4111') && !text.includes('okcm:1:'), `${path}: nothing of the upstream body`);
    }
    // The same bytes on a passthrough route are forwarded as they are (only decrypting routes parse).
    const pass = await call(f, `${f.base.uws}/raw/echo`, { headers: { 'content-type': 'text/plain' }, body: '{oops' });
    assert.deepEqual([pass.status, pass.body.toString()], [200, '{oops']);
  });

  it('encrypting route: non-JSON, compressed or malformed bodies → 4xx and nothing forwarded', async () => {
    const before = f.up.received.length;
    const plain = JSON.stringify({ card: { number: '4111 1111 1111 1111' } });
    const cases: [Record<string, string>, string | Buffer, number][] = [
      [{ 'content-type': 'text/plain' }, plain, 415],
      [{}, plain, 415],
      [{ 'content-type': 'application/json', 'content-encoding': 'gzip' }, gzipSync(plain), 415],
      [{ 'content-type': 'application/json', 'content-encoding': 'identity, br' }, plain, 415],
      [{ 'content-type': 'application/json; charset=latin1' }, plain, 415],
      [{ 'content-type': 'application/json' }, '{"card": {"number": "4111 1111 1111 1111"', 400],
      [{ 'content-type': 'application/json' }, '{"card": {"number": 4111}}', 422],
      [{ 'content-type': 'application/json' }, '{"other": 1}', 422],
    ];
    for (const [headers, body, status] of cases) {
      const r = await call(f, `${f.base.uws}/orders`, { headers, body });
      assert.equal(r.status, status, JSON.stringify(headers));
      assert.ok(!r.body.toString().includes('4111'), 'no plaintext in the error');
    }
    assert.equal(f.up.received.length, before, 'the upstream received nothing');
  });

  it('client aborts mid-body → nothing forwarded, no crash, no request left in flight', async () => {
    const before = f.up.received.length;
    for (const port of [f.gw.ports.uws as number, f.gw.ports.h2Plain as number]) {
      await new Promise<void>((resolve) => {
        const s = net.connect(port, '127.0.0.1', () => {
          s.write(
            'POST /orders HTTP/1.1\r\nhost: x\r\nx-tenant-id: t1\r\ncontent-type: application/json\r\n' +
              'content-length: 1000\r\n\r\n{"card": {"number": "4111',
          );
          setTimeout(() => {
            s.destroy();
            resolve();
          }, 50);
        });
        s.on('error', () => {});
      });
    }
    await until(() => f.gw.pipeline.inFlight === 0, 2000, 'the aborted requests to end');
    assert.equal(f.up.received.length, before, 'nothing forwarded');
    const ok = await call(f, `${f.base.uws}/raw/echo`, { body: 'still serving' });
    assert.deepEqual([ok.status, ok.body.toString()], [200, 'still serving']);
  });

  it('client aborts while the upstream works → the upstream request is aborted', async () => {
    const abortedBefore = f.up.aborted.length;
    for (const port of [f.gw.ports.uws as number, f.gw.ports.h2Plain as number]) {
      const receivedBefore = f.up.received.length;
      const s = net.connect(port, '127.0.0.1');
      s.on('error', () => {});
      await new Promise<void>((r) => s.once('connect', () => r()));
      s.write('POST /raw/hang HTTP/1.1\r\nhost: x\r\nx-tenant-id: t1\r\ncontent-length: 2\r\n\r\nhi');
      await until(() => f.up.received.length > receivedBefore, 2000, 'the request to reach the upstream');
      const t0 = performance.now();
      const seen = f.up.aborted.length;
      s.destroy();
      await until(() => f.up.aborted.length > seen, 2000, 'the upstream to see the request aborted');
      const ms = performance.now() - t0;
      // The upstream headers timeout is 300 ms: only the client's abort can end it this soon.
      assert.ok(ms < 200, `aborted upstream after ${ms.toFixed(1)} ms`);
    }
    assert.equal(f.up.aborted.length, abortedBefore + 2);
    await until(() => f.gw.pipeline.inFlight === 0, 2000, 'no request in flight');
  });

  it("no log line, answer or upstream request of the hostile-input cases holds an encrypted field's plaintext", async () => {
    const MARKER = 'PLAINTEXT-MARKER-7f3a9c';
    const doc = JSON.stringify({ card: { number: MARKER } });
    const deep = `${'{"a":'.repeat(200)}"${MARKER}"${'}'.repeat(200)}`;
    const json = { 'content-type': 'application/json' };
    const cases: [Record<string, string>, string | Buffer][] = [
      [{ 'content-type': 'text/plain' }, doc],
      [{ ...json, 'content-encoding': 'gzip' }, gzipSync(doc)],
      [json, doc.slice(0, -2)],
      [json, deep],
      [json, `{"card": {"number": "${MARKER}"}, "pad": "${'x'.repeat(300_000)}"}`],
      [json, `{"card": {"number": ["${MARKER}"]}}`],
      [json, `{"card": {"number": "${MARKER}", "x": "\ud800"}}`],
      [json, `{"card": {"number": "${MARKER}", "number": "x"}}`],
      [json, `{"card": {"number": "x", "\\u006eumber": "${MARKER}"}}`],
      [json, doc],
    ];
    const answers: string[] = [];
    for (const base of [f.base.uws, f.base.plain]) {
      for (const [headers, body] of cases) {
        const r = await call(f, `${base}/orders`, { headers, body });
        answers.push(`${r.status} ${JSON.stringify(r.headers)} ${r.body.toString('utf8')}`);
      }
    }
    assert.ok(
      answers.some((a) => a.startsWith('201')),
      'the well-formed order went through',
    );
    const auditedBefore = audited.length;
    const seen = [
      ...answers,
      ...f.logs,
      ...audited,
      ...f.up.received.map((x) => `${JSON.stringify(x.headers)} ${x.body}`),
    ];
    const leaks = seen.filter((t) => t.includes(MARKER));
    assert.deepEqual(leaks, [], 'the plaintext marker appears nowhere (answers, logs, audit records, upstream)');
    assert.ok(auditedBefore >= answers.length, 'every hostile request left an audit record');
    assert.ok(audited.some((a) => a.includes('"outcome":"failure"') && a.includes('unsupported_media_type')));
  });
});
