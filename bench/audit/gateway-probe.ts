/**
 * What the gateway's audit log costs the requests around it: the sample app,
 * and the gateway proxy in front of it writing its audit log (fsync on, the
 * default) — both pinned to CPU 0 as in the harness — take closed-loop
 * encrypting load (`POST /orders`, 16 connections), while a probe asks the
 * same gateway for `/healthz` (not audited) every 2 ms. Prints the audited
 * route's req/s and the probe's latency (p50 / p90 / p99). Compare two
 * commits by running it in each, interleaved (the disk is shared and noisy):
 *
 *   node --import tsx bench/audit/gateway-probe.ts [rounds=3] [seconds=5]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { probeHealthz } from '../harness/healthz-probe.ts';
import { closedLoopHttp1 } from '../harness/load.ts';
import { startServe, stopAll } from '../harness/servers.ts';
import { sampleOrder } from '../scenarios/payloads.ts';
import { startProxy } from '../scenarios/proxy.ts';

const rounds = Number(process.argv[2] ?? 3);
const seconds = Number(process.argv[3] ?? 5);
const dir = mkdtempSync(join(tmpdir(), 'kcm-audit-probe-'));
try {
  const app = await startServe('sample-app', 'sample-app', 0);
  const proxy = await startProxy(app.ports.http as number, dir, 0, { audit: true });
  if (!proxy.server) throw new Error(proxy.skip);
  const port = proxy.server.ports.http as number;
  for (let round = 1; round <= rounds; round++) {
    const load = closedLoopHttp1(
      port,
      {
        method: 'POST',
        path: '/orders',
        headers: { 'content-type': 'application/json', 'x-tenant-id': 'bench' },
        body: JSON.stringify(sampleOrder('probe')),
        status: 201,
      },
      seconds,
      16,
    );
    await new Promise((r) => setTimeout(r, 500));
    const probe = await probeHealthz(port, seconds - 1);
    const res = await load;
    console.log(
      `round ${round}: POST /orders ${Math.round(res.rps)} req/s (errors ${res.errors}); /healthz n=${probe.n} p50 ${probe.p50} p90 ${probe.p90} p99 ${probe.p99} ms`,
    );
  }
} finally {
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
}
