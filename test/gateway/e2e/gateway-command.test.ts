/**
 * `kcm gateway --config FILE`: configuration errors name the field; `dev`
 * keys are refused outside KCM_DEV=1; a real `kcm gateway` process (dev
 * keys, the proxy in front of a real upstream) serves, then drains and exits
 * 0 on SIGTERM.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { request } from 'undici';
import { verifyAuditLog } from '../../../common/src/audit/audit-verifier.ts';
import { gatewayConfig } from '../../../gateway/src/gateway-config.ts';
import { startUpstreams, testPolicy } from '../proxy/proxy-fixture.ts';

const core = { url: 'https://core:8443', certFile: 'c.pem', keyFile: 'k.pem', caFile: 'ca.pem' };
const uws = { uws: { port: 0 } };

describe('kcm gateway configuration', () => {
  it('accepts a full file and resolves paths against its directory', () => {
    const c = gatewayConfig(
      {
        fronts: { ...uws, h2Tls: { port: 8443, certFile: 'g.pem', keyFile: 'g.key', caFile: 'ca.pem' } },
        trust: ['10.0.0.0/8'],
        policies: { dir: 'policies', examples: true },
        core: { ...core, leaseTtlSeconds: 600 },
        upstreams: { urls: { app: 'http://10.0.0.5:9000' }, connectTimeoutMs: 500, maxResponseBytes: 1024 },
        callerHeaders: { identity: 'x-okcm-caller' },
        limits: { maxBodyBytes: 4096, drainMs: 0 },
        audit: { file: 'audit/gateway.log', checkpointEvery: 500, rotateBytes: 1_000_000, keepSegments: 10 },
      },
      '/etc/kcm',
      {},
    );
    assert.deepEqual(c.audit, {
      file: '/etc/kcm/audit/gateway.log',
      fsync: true,
      checkpointEvery: 500,
      rotateBytes: 1_000_000,
      keepSegments: 10,
    });
    assert.deepEqual(gatewayConfig({ core, fronts: uws, audit: 'a.log' }, '/x', {}).audit, {
      file: '/x/a.log',
      fsync: true,
      rotateBytes: 128 * 1024 * 1024,
    });
    assert.equal(c.fronts.uws?.host, '127.0.0.1');
    assert.equal(c.fronts.h2Tls?.certFile, '/etc/kcm/g.pem');
    assert.deepEqual(c.policies, { dir: '/etc/kcm/policies', examples: true, watch: true });
    assert.equal(c.core?.caFile, '/etc/kcm/ca.pem');
    assert.equal(c.upstreams.urls.get('app')?.href, 'http://10.0.0.5:9000/');
    assert.deepEqual(c.limits, { maxBodyBytes: 4096, drainMs: 0 });
  });

  it('names the bad field', () => {
    const bad: [unknown, RegExp][] = [
      [{ fronts: uws }, /^invalid configuration: core: required/],
      [{ core, fronts: {} }, /fronts: name at least one/],
      [{ core, fronts: { uws: { port: 70000 } } }, /fronts\.uws\.port: must be an integer from 0 to 65535/],
      [{ core, fronts: { uws: { port: 1, tls: { certFile: 'c' } } } }, /fronts\.uws\.tls\.keyFile/],
      [{ core, fronts: { h2Tls: { port: 1, certFile: 'c', keyFile: 'k' } } }, /fronts\.h2Tls\.caFile/],
      [{ core: { ...core, url: 'http://core' }, fronts: uws }, /core\.url: must be an https:\/\/ URL/],
      [{ core: { ...core, keyFile: '' }, fronts: uws }, /core\.keyFile/],
      [{ core, fronts: uws, upstreams: { urls: { app: 'ftp://x' } } }, /upstreams\.urls\.app/],
      [{ core, fronts: uws, upstreams: { urls: { app: 'http://u:p@x' } } }, /upstreams\.urls\.app: no credentials/],
      [{ core, fronts: uws, upstreams: { headersTimeoutMs: 0 } }, /upstreams\.headersTimeoutMs/],
      [{ core, fronts: uws, limits: { maxBodyBytes: -1 } }, /limits\.maxBodyBytes/],
      [{ core, fronts: uws, trust: '10.0.0.0/8' }, /^invalid configuration: trust: must be an array/],
      [{ core, fronts: uws, callerHeaders: { identity: 'X Caller' } }, /callerHeaders\.identity/],
      [{ core, fronts: uws, surprise: 1 }, /config\.surprise: unknown field/],
      [{ core, fronts: uws, audit: {} }, /audit\.file: must be a non-empty string/],
      [{ core, fronts: uws, audit: { file: 'a', fsync: 'yes' } }, /audit\.fsync: must be true or false/],
      [{ core, fronts: uws, audit: { file: 'a', checkpointEvery: 0 } }, /audit\.checkpointEvery/],
      [
        { core, fronts: uws, audit: { file: 'a', rotateBytes: 100 } },
        /audit\.rotateBytes: must be an integer from 4096/,
      ],
      [{ core, fronts: uws, audit: { file: 'a', keepSegments: 0 } }, /audit\.keepSegments/],
      [{ core, fronts: uws, audit: { file: 'a', otlpUrl: 'ftp://c' } }, /audit\.otlpUrl: must be an http\(s\) URL/],
      [{ core, fronts: uws, audit: { file: 'a', otlpUrl: 'http://u:p@c' } }, /audit\.otlpUrl: no credentials/],
      [{ core, fronts: uws, audit: { file: 'a', otlpUrl: 'http://c:4318/?k=v' } }, /audit\.otlpUrl: no query/],
      [{ core, fronts: uws, audit: { file: 'a', sink: 'x' } }, /audit\.sink: unknown field/],
      [{ dev: true, fronts: uws }, /dev: in-process development keys are refused outside development mode/],
      [{ dev: true, core, fronts: uws }, /dev: in-process/],
    ];
    for (const [doc, re] of bad) {
      assert.throws(
        () => gatewayConfig(doc, '/', {}),
        (e: Error & { code?: string }) => {
          assert.equal(e.code, 'invalid_config');
          assert.match(e.message, re, JSON.stringify(doc));
          return true;
        },
      );
    }
    assert.throws(() => gatewayConfig({ dev: true, core, fronts: uws }, '/', { KCM_DEV: '1' }), /core: give either/);
    assert.equal(gatewayConfig({ dev: true, fronts: uws }, '/', { KCM_DEV: '1' }).dev, true);
  });

  it('a kcm gateway process proxies, then drains and exits 0 on SIGTERM, at once with an idle keep-alive client', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'okcm-gw-cmd-'));
    const up = await startUpstreams();
    try {
      mkdirSync(join(dir, 'policies'));
      writeFileSync(join(dir, 'policies', 'test.routes.json'), JSON.stringify(testPolicy()));
      writeFileSync(
        join(dir, 'gateway.json'),
        JSON.stringify({
          dev: true,
          fronts: { uws: { port: 0 } },
          policies: { dir: 'policies', watch: false },
          upstreams: { urls: { app: `http://127.0.0.1:${up.appPort}` } },
          limits: { drainMs: 2000 },
          audit: { file: 'audit/gateway.log', fsync: false },
        }),
      );
      const child = spawn(process.execPath, ['bin/kcm.mjs', 'gateway', '--config', join(dir, 'gateway.json')], {
        env: { ...process.env, KCM_DEV: '1' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      child.stdout.on('data', (d) => {
        out += d;
      });
      child.stderr.on('data', (d) => {
        err += d;
      });
      const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
      const end = Date.now() + 20_000;
      while (!/uws :(\d+)/.test(out)) {
        if (Date.now() > end || child.exitCode !== null) throw new Error(`no start line: ${out} ${err}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      const port = Number(/uws :(\d+)/.exec(out)?.[1]);
      const res = await request(`http://127.0.0.1:${port}/orders`, {
        method: 'POST',
        headers: { 'x-tenant-id': 't1', 'content-type': 'application/json' },
        body: JSON.stringify({ card: { number: '4111 1111 1111 1111' } }),
      });
      assert.equal(res.statusCode, 201);
      await res.body.text();
      assert.ok(!up.received.at(-1)?.body.toString().includes('4111'));
      assert.match(err, /WARNING: development keys/);
      // SIGHUP reloads the policies (not watched here): a policy without the POST route leaves it unrouted.
      const policy = testPolicy() as { routes: { method: string; path: string }[] };
      policy.routes = policy.routes.filter((r) => !(r.method === 'POST' && r.path === '/orders'));
      writeFileSync(join(dir, 'policies', 'test.routes.json'), JSON.stringify(policy));
      child.kill('SIGHUP');
      const reloadBy = Date.now() + 10_000;
      while (!/policies reloaded \(SIGHUP\)/.test(err) && Date.now() < reloadBy)
        await new Promise((r) => setTimeout(r, 20));
      assert.match(err, /policies reloaded \(SIGHUP\): \d+ routes/);
      const gone = await request(`http://127.0.0.1:${port}/orders`, {
        method: 'POST',
        headers: { 'x-tenant-id': 't1', 'content-type': 'application/json' },
        body: '{}',
      });
      assert.equal(gone.statusCode, 404, 'POST /orders is no longer routed');
      await gone.body.text();
      // A client that keeps its connection open and idle (uWS's idle timeout is 10 s).
      const idle = connect(port, '127.0.0.1');
      let answered = '';
      idle.on('data', (d) => {
        answered += d;
      });
      const idleClosed = new Promise<void>((r) => idle.on('close', () => r()));
      idle.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
      while (!answered.includes('\r\n\r\n')) await new Promise((r) => setTimeout(r, 20));
      const killedAt = Date.now();
      child.kill('SIGTERM');
      child.kill('SIGHUP'); // during the drain: ignored, never the default action (which would end the process)
      child.kill('SIGTERM'); // a second one too
      assert.equal(await exited, 0);
      await idleClosed;
      const took = Date.now() - killedAt;
      assert.ok(took < 5_000, `exit took ${took} ms with an idle keep-alive connection`);
      assert.match(err, /SIGTERM: draining, closing the Core client, wiping keys/);
      // The proxied request that encrypted a field left its record (resolved against the config's directory), the
      // health check none; the log closed with a signed checkpoint and verifies; no value of the body is in it.
      const auditFile = join(dir, 'audit', 'gateway.log');
      const text = readFileSync(auditFile, 'utf8');
      const events = text
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l))
        .filter((l) => l.type === 'event');
      assert.deepEqual(
        events.map((e) => [e.action, e.outcome, e.tenant]),
        [['gateway.proxy', 'success', 't1']],
      );
      assert.ok(!text.includes('4111'));
      const publicKey = readFileSync(`${auditFile}.pub`, 'utf8').trim();
      const verified = verifyAuditLog(auditFile, { publicKey });
      assert.equal(verified.ok, true, JSON.stringify(verified.firstBad));
    } finally {
      await up.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
