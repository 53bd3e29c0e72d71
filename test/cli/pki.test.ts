/**
 * `kcm pki` end to end: init makes a CA, certificates and a policy that a
 * Core can run with as-is; `kcm operator status` over mTLS works with an
 * operator certificate and is refused (403) with the gateway's; `issue`
 * adds a certificate and refuses bad names; init does not overwrite a CA.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { MemoryAuditSink } from '../../core/src/audit/audit-sink.ts';
import { coreConfig } from '../../core/src/config.ts';
import { type CoreService, startCore } from '../../core/src/core-service.ts';

const KCM = fileURLToPath(new URL('../../bin/kcm.mjs', import.meta.url));

function kcmSync(args: string[]) {
  const r = spawnSync(process.execPath, [KCM, ...args], { encoding: 'utf8', env: { ...process.env, KCM_DEV: '' } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** Async: the Core runs in this process and must keep answering while the CLI waits. */
function kcm(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [KCM, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('close', (code) => resolve({ code, out, err }));
  });
}

describe('kcm pki', () => {
  let dir: string;
  let pkiDir: string;
  let core: CoreService;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kcm-cli-pki-'));
    pkiDir = join(dir, 'pki');
    const init = kcmSync(['pki', 'init', '--dir', pkiDir, '--tenant', 'acme']);
    assert.equal(init.code, 0, init.err);
    assert.match(init.out, /core +server .*core\.crt.*CN=core, DNS:localhost, IP Address:127\.0\.0\.1/);
    assert.match(init.out, /gateway-1 +both .*URI:spiffe:\/\/openkcm\.local\/edge\/gateway-1/);
    assert.match(init.out, /operator-2 +client/);
    assert.match(init.out, /authz\.json \(operators: all tenants; gateway-1: tenant acme\)/);
    const f = (n: string) => join(pkiDir, n);
    const config = coreConfig(
      {
        dataDir: join(dir, 'data'),
        listen: {
          host: '127.0.0.1',
          port: 0,
          tls: { certFile: f('core.crt'), keyFile: f('core.key'), caFile: f('ca.crt') },
        },
        authzPolicy: f('authz.json'),
      },
      {},
    );
    core = await startCore(config, { audit: new MemoryAuditSink(), log: () => {} });
  });

  after(async () => {
    await core.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes private keys 0600 and refuses to replace an existing CA', () => {
    for (const k of ['ca.key', 'core.key', 'gateway-1.key', 'operator-1.key', 'operator-2.key']) {
      assert.equal(statSync(join(pkiDir, k)).mode & 0o777, 0o600, k);
    }
    const again = kcmSync(['pki', 'init', '--dir', pkiDir]);
    assert.equal(again.code, 1);
    assert.match(again.err, /ca\.crt exists; pass --force/);
  });

  it('lets an operator certificate call the Core and refuses the gateway certificate', async () => {
    const as = (name: string) => [
      '--addr',
      core.admin.url.replace('127.0.0.1', 'localhost'),
      '--cert',
      join(pkiDir, `${name}.crt`),
      '--key',
      join(pkiDir, `${name}.key`),
      '--ca',
      join(pkiDir, 'ca.crt'),
    ];
    const ok = await kcm(['operator', 'status', ...as('operator-1')]);
    assert.equal(ok.code, 0, ok.err);
    assert.match(ok.out, /uninitialized/);
    const denied = await kcm(['operator', 'status', ...as('gateway-1')]);
    assert.equal(denied.code, 1);
    assert.match(denied.err, /403 forbidden/);
  });

  it('issues one more certificate and refuses unsafe names', () => {
    const r = kcmSync([
      'pki',
      'issue',
      '--dir',
      pkiDir,
      '--kind',
      'client',
      '--cn',
      'app-x',
      '--san',
      'URI:spiffe://x/app',
    ]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /app-x +client .*URI:spiffe:\/\/x\/app/);
    assert.match(r.out, /sha256 ([0-9A-F]{2}:){31}[0-9A-F]{2}/);
    assert.ok(existsSync(join(pkiDir, 'app-x.key')));
    const bad = kcmSync(['pki', 'issue', '--dir', pkiDir, '--kind', 'client', '--cn', 'x/CN=admin']);
    assert.equal(bad.code, 1);
    assert.match(bad.err, /common name/);
    const noCa = kcmSync(['pki', 'issue', '--dir', join(dir, 'nothing'), '--kind', 'server', '--cn', 'x']);
    assert.equal(noCa.code, 1);
    assert.match(noCa.err, /ca\.crt is missing: run `kcm pki init` first/);
  });
});
