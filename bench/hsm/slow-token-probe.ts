/**
 * What a slow token costs the gateway's other requests: the gateway (one
 * process, pinned to CPU 0 as in the harness) serves the key `bench` on the
 * pkcs11 backend through bench/hsm/slow-token.c, a module over a SoftHSM2
 * token that makes every per-request token call wait KCM_SLOW_TOKEN_US (a
 * network HSM's round trip). Closed-loop load encrypts 1 KB on that key
 * (8 connections) while a probe asks the same gateway for `/healthz` every
 * 2 ms. Run for `hsm.inline` (token calls on the event loop) and for the
 * token workers (the default), interleaved, `rounds` times each. Prints
 * each round's token-route req/s and the probe's p50 / p90 / p99.
 *
 *   node --import tsx bench/hsm/slow-token-probe.ts [rounds=2] [seconds=5] [delayUs=1000]
 *
 * Needs gcc and softhsm2 (both in .ci/run's packages).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { probeHealthz } from '../harness/healthz-probe.ts';
import { closedLoopHttp1 } from '../harness/load.ts';
import { startServe, stopAll } from '../harness/servers.ts';
import { encryptBody } from '../scenarios/payloads.ts';

const rounds = Number(process.argv[2] ?? 2);
const seconds = Number(process.argv[3] ?? 5);
const delayUs = Number(process.argv[4] ?? 1000);
const SOFTHSM_MODULE = '/usr/lib/softhsm/libsofthsm2.so';

const dir = mkdtempSync(join(tmpdir(), 'kcm-slow-token-'));
try {
  const shim = join(dir, 'libslowtoken.so');
  const source = fileURLToPath(new URL('./slow-token.c', import.meta.url));
  execFileSync('gcc', ['-shared', '-fPIC', '-O2', '-Wall', '-o', shim, source, '-ldl', '-lpthread'], {
    stdio: 'inherit',
  });
  console.log(`token calls delayed ${delayUs} µs each; ${rounds} rounds × ${seconds} s per mode`);
  for (let round = 1; round <= rounds; round++) {
    for (const mode of ['inline', 'workers'] as const) {
      const hsmDir = join(dir, `${mode}-${round}`);
      mkdirSync(hsmDir);
      const gw = await startServe(`gw-${mode}`, 'gateway', 0, {
        env: {
          KCM_CRYPTO_BACKEND: 'native',
          KCM_SLOW_TOKEN_MODULE: SOFTHSM_MODULE,
          KCM_SLOW_TOKEN_US: String(delayUs),
        },
        args: ['--hsm', hsmDir, '--hsm-module', shim, ...(mode === 'inline' ? ['--hsm-inline'] : [])],
      });
      const port = gw.ports.uws as number;
      const load = closedLoopHttp1(
        port,
        {
          method: 'POST',
          path: '/v1/encrypt/bench',
          headers: { 'content-type': 'application/json', 'x-okcm-tenant': 'bench' },
          body: encryptBody(1024),
          status: 200,
        },
        seconds,
        8,
      );
      await new Promise((r) => setTimeout(r, 500));
      const probe = await probeHealthz(port, seconds - 1);
      const res = await load;
      await stopAll();
      console.log(
        `round ${round} ${mode.padEnd(7)}: encrypt on the token ${Math.round(res.rps)} req/s (errors ${res.errors}); /healthz n=${probe.n} p50 ${probe.p50} p90 ${probe.p90} p99 ${probe.p99} ms`,
      );
    }
  }
} finally {
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
}
