/**
 * The admin API in-process (startCore on a temp SQLite): refusal of
 * browser-borne requests (foreign Host, non-JSON writes), malformed paths,
 * config validation, and a confirm after an IVK rotation keeping the Core
 * unsealable (the IVK head is re-read, not rewritten from a stale copy).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { KcmError } from '../../../common/src/errors.ts';
import { MemoryAuditSink } from '../../../core/src/audit/audit-sink.ts';
import { coreConfig } from '../../../core/src/config.ts';
import { type CoreService, startCore } from '../../../core/src/core-service.ts';

interface Reply {
  status: number;
  body: { error?: { code: string }; [k: string]: unknown };
}

function send(
  url: string,
  method: string,
  o: { body?: string; headers?: Record<string, string> } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, agent: false, headers: o.headers ?? {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString() || 'null') }),
      );
    });
    req.on('error', reject);
    req.end(o.body);
  });
}

const json = (url: string, method: string, body: unknown = {}) =>
  send(url, method, { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });

describe('admin API', () => {
  let dir: string;
  let core: CoreService;
  let url: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kcm-api-'));
    const config = coreConfig({ devMode: true, dataDir: dir, listen: { host: '127.0.0.1', port: 0 } }, {});
    core = await startCore(config, { audit: new MemoryAuditSink(), log: () => {} });
    url = core.admin.url;
  });

  after(async () => {
    await core.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a foreign Host header (DNS rebinding) and non-JSON writes (cross-site forms)', async () => {
    const rebound = await send(`${url}/v1/sys/status`, 'GET', { headers: { host: 'evil.example:8200' } });
    assert.deepEqual([rebound.status, rebound.body.error?.code], [400, 'bad_request']);
    const form = await send(`${url}/v1/sys/seal`, 'POST', { body: '{}', headers: { 'content-type': 'text/plain' } });
    assert.deepEqual([form.status, form.body.error?.code], [400, 'bad_request']);
    const bare = await send(`${url}/v1/sys/init`, 'POST');
    assert.deepEqual([bare.status, bare.body.error?.code], [400, 'bad_request']);
    assert.equal(core.root.state, 'uninitialized', 'nothing happened');
  });

  it('answers malformed paths, unknown routes and wrong methods with 4xx, not 500', async () => {
    assert.equal((await json(`${url}/v1/ivk/%E0`, 'DELETE')).status, 400);
    assert.equal((await json(`${url}/v1/nope`, 'POST')).status, 404);
    assert.equal((await json(`${url}/v1/sys/status`, 'POST')).status, 405);
    const bad = await send(`${url}/v1/sys/init`, 'POST', {
      body: '{"threshold":',
      headers: { 'content-type': 'application/json' },
    });
    assert.deepEqual([bad.status, bad.body.error?.code], [400, 'bad_request']);
  });

  it('a confirm after an IVK rotation keeps the Core unsealable', async () => {
    const init = await json(`${url}/v1/sys/init`, 'POST', { threshold: 2, shares: 3 });
    assert.equal(init.status, 200);
    const shares = (init.body.shares as { payload: string }[]).map((s) => s.payload);
    assert.equal((await json(`${url}/v1/ivk/rotate`, 'POST')).status, 200);
    assert.equal((await json(`${url}/v1/sys/init/confirm`, 'POST')).body.initState, 'confirmed');
    assert.equal((await json(`${url}/v1/sys/seal`, 'POST')).body.state, 'sealed');
    await json(`${url}/v1/sys/unseal`, 'POST', { share: shares[2] });
    const done = await json(`${url}/v1/sys/unseal`, 'POST', { share: shares[0] });
    assert.equal(done.body.state, 'active', JSON.stringify(done.body));
    assert.equal(done.body.ivkVersion, 2);
  });
});

describe('core config', () => {
  it('refuses autoUnseal.maxMs below baseMs or below 50 ms, naming the field', () => {
    for (const autoUnseal of [
      { baseMs: 500, maxMs: 200 },
      { baseMs: 0, maxMs: 0 },
    ]) {
      assert.throws(
        () => coreConfig({ autoUnseal }, {}),
        (e) => e instanceof KcmError && e.code === 'invalid_config' && /autoUnseal\.maxMs/.test(e.message),
      );
    }
  });

  it('refuses the dev seal outside development mode', () => {
    assert.throws(() => coreConfig({ seal: { type: 'dev', keyFile: 'x' } }, {}), /development mode/);
    assert.equal(coreConfig({ seal: { type: 'dev', keyFile: 'x' } }, { KCM_DEV: '1' }).seal.type, 'dev');
  });
});
