/** The `kcm` command as a user runs it: a child process of bin/kcm.mjs. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { DoctorCheck } from '../../cli/commands/doctor.ts';

const KCM = fileURLToPath(new URL('../../bin/kcm.mjs', import.meta.url));
const IN_CI = process.env.CI === 'true';

function kcm(args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(process.execPath, [KCM, ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('kcm', () => {
  it('--help lists the commands and exits 0', () => {
    const r = kcm(['--help']);
    assert.equal(r.code, 0);
    assert.match(r.out, /Usage: kcm <command>/);
    assert.match(r.out, /doctor/);
    assert.match(r.out, /version/);
  });

  it('no command prints help and exits 2; an unknown one exits 2 naming it', () => {
    assert.equal(kcm([]).code, 2);
    const r = kcm(['frobnicate']);
    assert.equal(r.code, 2);
    assert.match(r.err, /unknown command "frobnicate"/);
  });

  it('version prints the package version', () => {
    const r = kcm(['version']);
    assert.equal(r.code, 0);
    assert.match(r.out, /^openkcm \d+\.\d+\.\d+ \(node /);
  });

  it('doctor --json reports node, native module, backend, key memory and uWS', () => {
    const r = kcm(['doctor', '--json']);
    assert.equal(r.code, 0, r.err);
    const { checks } = JSON.parse(r.out) as { checks: DoctorCheck[] };
    assert.deepEqual(
      checks.map((c) => c.name),
      ['node', 'native module', 'crypto backend', 'key memory', 'uWebSockets.js'],
    );
    const byName = Object.fromEntries(checks.map((c) => [c.name, c]));
    assert.equal(byName.node?.state, 'ok');
    assert.equal(byName['uWebSockets.js']?.state, 'ok', byName['uWebSockets.js']?.detail);
    if (IN_CI) {
      assert.equal(byName['native module']?.state, 'ok', byName['native module']?.detail);
      assert.equal(byName['crypto backend']?.detail, 'native');
      if (process.getuid?.() === 0) assert.equal(byName['key memory']?.state, 'ok', byName['key memory']?.detail);
    }
  });

  it('doctor reports the forced fallback and a refused uWS emulation, and --strict fails on them', () => {
    const r = kcm(['doctor', '--strict'], { KCM_CRYPTO_BACKEND: 'node', UWS_USE_FALLBACK: '1' });
    assert.equal(r.code, 1);
    assert.match(r.out, /\[WARN\] crypto backend\s+node \(KCM_CRYPTO_BACKEND=node\)/);
    assert.match(r.out, /\[WARN\] key memory\s+NOT locked/);
    assert.match(r.out, /\[FAIL\] uWebSockets\.js\s+fast path unavailable: UWS_USE_FALLBACK/);
  });

  it('doctor refuses a bogus backend name with the reason', () => {
    const r = kcm(['doctor'], { KCM_CRYPTO_BACKEND: 'openssl' });
    assert.equal(r.code, 0);
    assert.match(r.out, /\[FAIL\] crypto backend\s+KCM_CRYPTO_BACKEND must be "native" or "node"/);
  });

  it('doctor rejects unknown options', () => {
    const r = kcm(['doctor', '--jsn']);
    assert.equal(r.code, 1);
    assert.match(r.err, /unknown option --jsn/);
  });
});
