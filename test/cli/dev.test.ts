/**
 * `kcm dev` (what `npm start` runs) as a user runs it: one child process
 * with Core + gateway + the sample app. The shipped example policy is in
 * force: the app stores only ciphertext of the card and customer fields;
 * reading back through the gateway gives plaintext to billing-service and a
 * mask to others; a restart reuses the data (auto-unseal, same tenants) and
 * still decrypts what was stored before.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { verifyAuditLog } from '../../common/src/audit/audit-verifier.ts';

const KCM = fileURLToPath(new URL('../../bin/kcm.mjs', import.meta.url));
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CARD = '5500 0000 0000 0004'; // not the card of the printed examples
const EMAIL = 'dev-test-marker@example.com';

interface Ports {
  admin: number;
  gateway: number;
  gatewayH2c: number;
  app: number;
}

async function startDev(dataDir: string): Promise<{ child: ChildProcess; ports: Ports; output: () => string }> {
  const child = spawn(
    process.execPath,
    [
      KCM,
      'dev',
      '--data-dir',
      dataDir,
      ...['admin', 'edge', 'gateway', 'h2c', 'app'].flatMap((n) => [`--${n}-port`, '0']),
    ],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env } },
  );
  let out = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const m = /kcm dev: ready (\{.*\})/.exec(out);
    if (m) return { child, ports: JSON.parse(m[1] as string) as Ports, output: () => out };
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGKILL');
  throw new Error(`kcm dev did not become ready:\n${out.slice(-2000)}`);
}

async function stop(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return child.exitCode;
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  child.kill('SIGTERM');
  return exited;
}

async function json(url: string, init: RequestInit = {}): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url, init);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe('kcm dev (npm start)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kcm-dev-'));
  const children: ChildProcess[] = [];
  after(async () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs Core + gateway + sample app: ciphertext at rest, plaintext only for allowed readers, survives a restart', async () => {
    const first = await startDev(join(dir, 'data'));
    children.push(first.child);
    const gw = `http://127.0.0.1:${first.ports.gateway}`;
    const app = `http://127.0.0.1:${first.ports.app}`;
    assert.match(first.output(), /curl -s http:\/\/127\.0\.0\.1:\d+\/orders/, 'prints curl examples');
    const created = await json(`${gw}/orders`, {
      method: 'POST',
      headers: { 'x-tenant-id': 'acme', 'content-type': 'application/json' },
      body: JSON.stringify({ card: { number: CARD, cvv: '123' }, customer: { email: EMAIL }, items: [{ sku: 'A1' }] }),
    });
    assert.equal(created.status, 201);
    const id = created.body.id as string;
    // What the app stored: no plaintext of an encrypted field.
    const stored = await fetch(`${app}/orders/${id}`, { headers: { 'x-tenant-id': 'acme' } }).then((r) => r.text());
    assert.ok(!stored.includes(CARD) && !stored.includes(EMAIL) && stored.includes('okcm:1:'), 'app holds ciphertext');
    const reader = await json(`${gw}/orders/${id}`, {
      headers: { 'x-tenant-id': 'acme', 'x-okcm-caller': 'billing-service' },
    });
    assert.equal((reader.body.card as { number: string }).number, CARD);
    assert.equal((reader.body.customer as { email: string }).email, EMAIL);
    const other = await json(`${gw}/orders/${id}`, { headers: { 'x-tenant-id': 'acme' } });
    assert.equal((other.body.card as { number: string }).number, '****');
    // Another tenant cannot read acme's record through its own key.
    const globex = await json(`${gw}/orders/${id}`, { headers: { 'x-tenant-id': 'globex' } });
    assert.equal(globex.status, 404, 'tenants are separate in the app too');
    // The direct API and h2c port answer.
    const enc = await json(`${gw}/v1/encrypt/orders`, {
      method: 'POST',
      headers: { 'x-okcm-tenant': 'acme', 'content-type': 'application/json' },
      body: JSON.stringify({ plaintext: Buffer.from('hello').toString('base64') }),
    });
    assert.match(String((enc.body.data as { ciphertext: string }).ciphertext), /^okcm:1:/);
    assert.equal((await json(`http://127.0.0.1:${first.ports.admin}/v1/sys/status`)).body.state, 'active');
    assert.equal(statSync(join(dir, 'data', 'recovery-shares.txt')).mode & 0o077, 0, 'recovery shares file is 0600');
    assert.ok(!first.output().includes(CARD) && !first.output().includes(EMAIL), 'no plaintext in the logs');
    assert.equal(await stop(first.child), 0);
    // The gateway's audit log: a record per key access (the proxied order routes, the direct encrypt), no value.
    const auditFile = join(dir, 'data', 'audit', 'gateway.log');
    const auditOf = () => {
      const text = readFileSync(auditFile, 'utf8');
      assert.ok(!text.includes(CARD) && !text.includes(EMAIL), 'no plaintext in the audit log');
      const publicKey = readFileSync(`${auditFile}.pub`, 'utf8').trim();
      const verified = verifyAuditLog(auditFile, { publicKey });
      assert.equal(verified.ok, true, JSON.stringify(verified.firstBad));
      return text
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l))
        .filter((l) => l.type === 'event')
        .map((e) => `${e.action} ${e.outcome} ${e.tenant}`);
    };
    assert.deepEqual(auditOf(), [
      'gateway.proxy success acme',
      'gateway.proxy success acme',
      'gateway.proxy success acme',
      'gateway.proxy success globex',
      'gateway.encrypt success acme',
    ]);
    // The reader a trusted peer named is who the record says read the plaintext.
    assert.match(readFileSync(auditFile, 'utf8'), /"actor":"peer 127\.0\.0\.1 for billing-service"/);
    // The order's fields were sealed under a named L3 version.
    assert.match(readFileSync(auditFile, 'utf8'), /"resource":"proxy orders POST \/orders: keys orders v\d+"/);

    // Restart on the same data: auto-unseal, same tenants and keys; the stored ciphertext still decrypts.
    const second = await startDev(join(dir, 'data'));
    children.push(second.child);
    const again = await json(`http://127.0.0.1:${second.ports.gateway}/v1/decrypt/orders`, {
      method: 'POST',
      headers: { 'x-okcm-tenant': 'acme', 'content-type': 'application/json' },
      body: JSON.stringify({ ciphertext: (enc.body.data as { ciphertext: string }).ciphertext }),
    });
    assert.equal(
      Buffer.from(String((again.body.data as { plaintext: string }).plaintext), 'base64').toString(),
      'hello',
    );
    assert.equal(await stop(second.child), 0);
    // The same log, resumed: its chain goes on across the restart.
    assert.equal(auditOf().at(-1), 'gateway.decrypt success acme');
    assert.equal(auditOf().length, 6);
  });
});
