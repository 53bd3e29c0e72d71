/**
 * A hung HSM under a real `kcm gateway` process: the token module
 * (bench/hsm/slow-token.c over SoftHSM2) lets the transport key's set-up
 * through, then makes each call of a request take 60 s. The request is
 * answered 503 `hsm_unavailable` after `hsm.timeoutMs`; the health check
 * answers meanwhile; SIGTERM ends the process within seconds (the thread
 * blocked in the module cannot be joined, so the command ends itself with
 * SIGKILL once everything is closed, and says so), and the audit log closed
 * first; so does SIGTERM while a request hangs before its deadline. Needs
 * gcc and SoftHSM; skipped with the reason without them, except under
 * CI=true.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { verifyAuditLog } from '../../../common/src/audit/audit-verifier.ts';
import { buildSlowToken, slowTokenSkip } from '../../support/slow-token.ts';
import { createSoftHsmToken, SOFTHSM_MODULE, type SoftHsmToken } from '../../support/softhsm.ts';

describe('kcm gateway over a hung HSM', { skip: slowTokenSkip() }, () => {
  let dir: string;
  let token: SoftHsmToken;
  let shim: string;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'kcm-hung-token-'));
    shim = buildSlowToken(dir);
    token = createSoftHsmToken();
  });
  after(() => {
    token?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A `kcm gateway` over the hung token, with `hsm` extras and limits; resolves once it serves. */
  async function startGatewayProcess(hsmExtra: object, limits: object) {
    writeFileSync(
      join(dir, 'gateway.json'),
      JSON.stringify({
        dev: true,
        fronts: { uws: { port: 0 } },
        limits,
        audit: { file: 'audit/gateway.log', fsync: false },
        hsm: { module: shim, tokenLabel: token.tokenLabel, pinEnv: 'KCM_TEST_HSM_PIN', keys: ['k'], ...hsmExtra },
      }),
    );
    const child = spawn(process.execPath, ['bin/kcm.mjs', 'gateway', '--config', join(dir, 'gateway.json')], {
      env: {
        ...process.env,
        KCM_DEV: '1',
        KCM_TEST_HSM_PIN: token.pin,
        KCM_SLOW_TOKEN_MODULE: SOFTHSM_MODULE,
        KCM_SLOW_TOKEN_US: '60000000',
        // The set-up's unwrap of KT and its two destroys go through; the first request's unwrap hangs.
        KCM_SLOW_TOKEN_SKIP: '3',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const io = { out: '', err: '' };
    child.stdout.on('data', (d) => {
      io.out += d;
    });
    child.stderr.on('data', (d) => {
      io.err += d;
    });
    const exited = new Promise<NodeJS.Signals | number | null>((r) =>
      child.on('exit', (code, signal) => r(signal ?? code)),
    );
    const end = Date.now() + 20_000;
    while (!/uws :(\d+)/.test(io.out)) {
      if (Date.now() > end || child.exitCode !== null) throw new Error(`no start line: ${io.out} ${io.err}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    return { child, io, exited, port: Number(/uws :(\d+)/.exec(io.out)?.[1]) };
  }

  const encrypt = (port: number) =>
    request(`http://127.0.0.1:${port}/v1/encrypt/k`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-okcm-tenant': 't1' },
      body: JSON.stringify({ plaintext: 'NDExMSAxMTExIDExMTEgMTExMQ==' }),
    });

  /** SIGTERM ends it within 10 s by its own SIGKILL, saying why, with the audit log closed first. */
  async function stopsDespiteTheHungCall(g: Awaited<ReturnType<typeof startGatewayProcess>>): Promise<void> {
    const killedAt = Date.now();
    g.child.kill('SIGTERM');
    assert.equal(await g.exited, 'SIGKILL');
    const took = Date.now() - killedAt;
    assert.ok(took < 10_000, `exit took ${took} ms`);
    assert.match(g.io.err, /PKCS#11 call\(s\) have not returned: ending the process without waiting/);
    const auditFile = join(dir, 'audit', 'gateway.log');
    const publicKey = readFileSync(`${auditFile}.pub`, 'utf8').trim();
    const verified = verifyAuditLog(auditFile, { publicKey });
    assert.equal(verified.ok, true, JSON.stringify(verified.firstBad));
    assert.match(readFileSync(auditFile, 'utf8').trim().split('\n').at(-1) ?? '', /"reason":"close"/);
  }

  it('answers 503 in hsm.timeoutMs, keeps serving, and SIGTERM still ends the process', {
    timeout: 40_000,
  }, async () => {
    const g = await startGatewayProcess({ timeoutMs: 300 }, { drainMs: 1000 });
    try {
      const started = Date.now();
      const res = await encrypt(g.port);
      const body = await res.body.text();
      assert.equal(res.statusCode, 503, body);
      assert.match(body, /hsm_unavailable/);
      assert.ok(Date.now() - started < 3000, `answered after ${Date.now() - started} ms`);
      const health = await request(`http://127.0.0.1:${g.port}/healthz`);
      assert.equal(health.statusCode, 200);
      await health.body.text();
      const metrics = await request(`http://127.0.0.1:${g.port}/metrics`);
      const text = await metrics.body.text();
      assert.match(text, /okcm_gateway_hsm_timeouts_total 1\b/);
      assert.match(text, /okcm_gateway_hsm_stuck_threads 1\b/);
      await stopsDespiteTheHungCall(g);
    } finally {
      if (g.child.exitCode === null && g.child.signalCode === null) g.child.kill('SIGKILL');
    }
  });

  it('SIGTERM while a request hangs before its deadline: the process still ends', { timeout: 40_000 }, async () => {
    const g = await startGatewayProcess({ timeoutMs: 20_000 }, { drainMs: 0 });
    try {
      const hanging = encrypt(g.port).then(
        (r) => r.body.text().then(() => r.statusCode),
        () => 'reset',
      );
      await new Promise((r) => setTimeout(r, 500));
      await stopsDespiteTheHungCall(g);
      // Answered 503 by the close, or cut: never a success.
      assert.notEqual(await hanging, 200);
    } finally {
      if (g.child.exitCode === null && g.child.signalCode === null) g.child.kill('SIGKILL');
    }
  });
});
