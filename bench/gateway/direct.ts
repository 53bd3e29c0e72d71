/**
 * Direct API benchmark: POST /v1/encrypt with a 1 KB plaintext through the
 * gateway's uWS fast path, against two baselines measured in the same run:
 *
 *   hello   bare uWS answering "hello" (no body read): the transport floor
 *   echo    bare uWS reading the JSON body, parsing it and answering a fixed
 *           JSON (the floor for any JSON endpoint)
 *   gateway the gateway pipeline with LocalGatewayKeys (one native call)
 *
 * Each server runs in its own child process pinned to CPU 0 when taskset is
 * available (run this script under `taskset -c 1` to pin the load side).
 * Closed loop: autocannon throughput. Open loop: constant arrival rate,
 * latency measured from the intended send time (no coordinated omission),
 * into an HDR histogram. Prints ratios to the baselines.
 *
 *   node --import tsx bench/gateway/direct.ts [--seconds 5] [--rate 2000] [--connections 16]
 */
import { spawn, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';
import * as hdr from 'hdr-histogram-js';
import { Pool } from 'undici';

const { values: args } = parseArgs({
  options: {
    serve: { type: 'string' },
    seconds: { type: 'string', default: '5' },
    rate: { type: 'string', default: '2000' },
    connections: { type: 'string', default: '16' },
  },
});

/** The part of autocannon's API this script uses (the package ships no types). */
interface AutocannonResult {
  requests: { average: number };
  non2xx: number;
  errors: number;
}
const autocannon = createRequire(import.meta.url)('autocannon') as (o: {
  url: string;
  method: string;
  headers: Record<string, string>;
  body: string;
  connections: number;
  duration: number;
}) => Promise<AutocannonResult>;

const PLAINTEXT = Buffer.alloc(1024, 7).toString('base64');
const BODY = JSON.stringify({ plaintext: PLAINTEXT, context: Buffer.from('bench').toString('base64') });
const HEADERS = { 'content-type': 'application/json', 'x-okcm-tenant': 'bench' };

async function serve(kind: string): Promise<void> {
  if (kind === 'gateway') {
    const { startGateway } = await import('../../gateway/src/gateway-server.ts');
    const { LocalGatewayKeys } = await import('../../gateway/src/gateway-keys.ts');
    const gw = await startGateway({ keys: new LocalGatewayKeys(), uws: { host: '127.0.0.1', port: 0 } });
    process.stdout.write(`${gw.ports.uws}\n`);
    return;
  }
  const { loadUws } = await import('../../gateway/src/http/uws-load.ts');
  const uws = loadUws().uws as typeof import('@trufflesuite/uws-js-unofficial');
  if (!uws) throw new Error('uWS native binary not loaded');
  const app = uws.App();
  if (kind === 'hello') {
    app.any('/*', (res) => {
      res.end('hello');
    });
  } else {
    app.any('/*', (res) => {
      let aborted = false;
      res.onAborted(() => {
        aborted = true;
      });
      const chunks: Buffer[] = [];
      res.onData((chunk, last) => {
        chunks.push(Buffer.from(new Uint8Array(chunk)));
        if (!last || aborted) return;
        const doc = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { plaintext: string };
        res.cork(() => {
          res.writeHeader('content-type', 'application/json');
          res.end(JSON.stringify({ data: { length: doc.plaintext.length } }));
        });
      });
    });
  }
  app.listen('127.0.0.1', 0, (s) => {
    if (!s) throw new Error('listen failed');
    process.stdout.write(`${uws.us_socket_local_port(s as never)}\n`);
  });
}

interface Server {
  port: number;
  stop(): void;
}

function startChild(kind: string): Promise<Server> {
  const pin = spawnSync('taskset', ['--version']).error === undefined;
  const cmd = pin ? 'taskset' : process.execPath;
  const base = [...process.execArgv, new URL(import.meta.url).pathname, '--serve', kind];
  const child = spawn(cmd, pin ? ['-c', '0', process.execPath, ...base] : base, {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.stdout.once('data', (d: Buffer) => resolve({ port: Number(d.toString().trim()), stop: () => child.kill() }));
  });
}

async function closedLoop(port: number, path: string, seconds: number, connections: number): Promise<number> {
  const r = await autocannon({
    url: `http://127.0.0.1:${port}${path}`,
    method: 'POST',
    headers: HEADERS,
    body: BODY,
    connections,
    duration: seconds,
  });
  if (r.non2xx > 0 || r.errors > 0) throw new Error(`${path}: ${r.non2xx} non-2xx, ${r.errors} errors`);
  return r.requests.average;
}

interface Latency {
  p50: number;
  p99: number;
  p999: number;
  sent: number;
}

/** Constant arrival rate; latency from the intended start (µs). */
async function openLoop(port: number, path: string, seconds: number, rate: number): Promise<Latency> {
  const pool = new Pool(`http://127.0.0.1:${port}`, { connections: 64, pipelining: 1 });
  const h = hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 60_000_000,
    numberOfSignificantValueDigits: 3,
  });
  const total = Math.floor(seconds * rate);
  const interval = 1e9 / rate;
  const t0 = process.hrtime.bigint();
  const inflight: Promise<void>[] = [];
  let failures = 0;
  for (let i = 0; i < total; i++) {
    const intended = t0 + BigInt(Math.round(i * interval));
    const now = process.hrtime.bigint();
    if (intended > now) {
      const waitMs = Number(intended - now) / 1e6;
      if (waitMs >= 1) await new Promise((r) => setTimeout(r, waitMs));
      else await new Promise((r) => setImmediate(r));
    }
    inflight.push(
      pool
        .request({ path, method: 'POST', headers: HEADERS, body: BODY })
        .then(async (res) => {
          await res.body.dump();
          if (res.statusCode !== 200) failures++;
          h.recordValue(Math.max(1, Number(process.hrtime.bigint() - intended) / 1000));
        })
        .catch(() => {
          failures++;
        }),
    );
  }
  await Promise.all(inflight);
  await pool.close();
  if (failures > 0) throw new Error(`${path}: ${failures} failed requests`);
  return {
    p50: h.getValueAtPercentile(50),
    p99: h.getValueAtPercentile(99),
    p999: h.getValueAtPercentile(99.9),
    sent: total,
  };
}

async function main(): Promise<void> {
  const seconds = Number(args.seconds);
  const rate = Number(args.rate);
  const connections = Number(args.connections);
  const targets = [
    { name: 'uWS hello (baseline)', kind: 'hello', path: '/' },
    { name: 'uWS JSON echo (baseline)', kind: 'echo', path: '/' },
    { name: 'gateway /v1/encrypt 1 KB', kind: 'gateway', path: '/v1/encrypt/bench' },
  ];
  const rows: { name: string; rps: number; lat: Latency }[] = [];
  for (const t of targets) {
    const s = await startChild(t.kind);
    try {
      await closedLoop(s.port, t.path, 1, connections); // warm-up
      const rps = await closedLoop(s.port, t.path, seconds, connections);
      const lat = await openLoop(s.port, t.path, seconds, rate);
      rows.push({ name: t.name, rps, lat });
    } finally {
      s.stop();
    }
  }
  const hello = rows[0] as (typeof rows)[number];
  const echo = rows[1] as (typeof rows)[number];
  console.log(`closed loop: ${connections} connections, ${seconds} s; open loop: ${rate} req/s for ${seconds} s`);
  console.log('target                        req/s   vs hello  vs echo   p50 µs   p99 µs  p99.9 µs');
  for (const r of rows) {
    console.log(
      `${r.name.padEnd(28)} ${r.rps.toFixed(0).padStart(7)}  ${(r.rps / hello.rps).toFixed(2).padStart(7)}  ${(r.rps / echo.rps).toFixed(2).padStart(7)}  ${String(r.lat.p50).padStart(7)}  ${String(r.lat.p99).padStart(7)}  ${String(r.lat.p999).padStart(8)}`,
    );
  }
}

if (args.serve) await serve(args.serve);
else await main();
