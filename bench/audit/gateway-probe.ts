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
import { Agent, request } from 'undici';
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
    const agent = new Agent({ keepAliveTimeout: 5000, connections: 1 });
    const lat: number[] = [];
    const end = Date.now() + (seconds - 1) * 1000;
    while (Date.now() < end) {
      const t = performance.now();
      const r = await request(`http://127.0.0.1:${port}/healthz`, { dispatcher: agent });
      await r.body.text();
      lat.push(performance.now() - t);
      await new Promise((r) => setTimeout(r, 2));
    }
    const res = await load;
    await agent.close();
    lat.sort((a, b) => a - b);
    const q = (p: number) => (lat[Math.floor(p * (lat.length - 1))] ?? Number.NaN).toFixed(2);
    console.log(
      `round ${round}: POST /orders ${Math.round(res.rps)} req/s (errors ${res.errors}); /healthz n=${lat.length} p50 ${q(0.5)} p90 ${q(0.9)} p99 ${q(0.99)} ms`,
    );
  }
} finally {
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
}
