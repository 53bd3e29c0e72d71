/**
 * A probe beside a load: asks `/healthz` of 127.0.0.1:`port` every 2 ms on
 * one keep-alive connection for `seconds`, and answers the latencies' p50,
 * p90 and p99 (ms, two decimals) and count. How bench/audit/gateway-probe.ts
 * and bench/hsm/slow-token-probe.ts see what a load costs the requests
 * beside it.
 */
import { Agent, request } from 'undici';

export interface ProbeResult {
  n: number;
  p50: string;
  p90: string;
  p99: string;
}

export async function probeHealthz(port: number, seconds: number): Promise<ProbeResult> {
  const agent = new Agent({ keepAliveTimeout: 5000, connections: 1 });
  const lat: number[] = [];
  try {
    const end = Date.now() + seconds * 1000;
    while (Date.now() < end) {
      const t = performance.now();
      const r = await request(`http://127.0.0.1:${port}/healthz`, { dispatcher: agent });
      await r.body.text();
      lat.push(performance.now() - t);
      await new Promise((r) => setTimeout(r, 2));
    }
  } finally {
    await agent.close();
  }
  lat.sort((a, b) => a - b);
  const q = (p: number) => (lat[Math.floor(p * (lat.length - 1))] ?? Number.NaN).toFixed(2);
  return { n: lat.length, p50: q(0.5), p90: q(0.9), p99: q(0.99) };
}
