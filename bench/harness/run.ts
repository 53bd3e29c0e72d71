/**
 * The benchmark suite (issue 6): every scenario of bench/scenarios/catalog.ts
 * against its same-run bare baseline and peers, the machine's noise floor,
 * ADR-604 verdicts, reports (Markdown, JSON, .hgrm, SVG).
 *
 *   npm run bench                      full run → bench/results/suite/
 *   npm run bench:ci                   gated subset (≤ 3 min) → bench/results/ci/, report copied to bench/results/ci-report.md
 *   node --import tsx bench/harness/run.ts [--ci] [--rate N] [--seconds S] [--trials T]
 *        [--only id,id] [--out DIR] [--no-pin]
 *
 * Exit status: full run 0 unless the run itself failed (a report); --ci 1
 * when the gate is red (bench/harness/gate.ts) or a CI scenario failed to run.
 * Fault injection for the gate's own test: KCM_TEST_HOOKS=1
 * KCM_BENCH_INJECT_DELAY_MS=2 (honoured by gateway/src/api/encrypt.ts).
 */
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http2 from 'node:http2';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { request } from 'undici';
import { makeTestPki } from '../../common/src/pki/index.ts';
import { machineFacts } from '../aead/machine.ts';
import { type Front, SCENARIOS, type Scenario, type ScenarioEnv } from '../scenarios/catalog.ts';
import { startProxy } from '../scenarios/proxy.ts';
import type { RequestSpec, TlsClient } from './clients.ts';
import { ciGate, inconclusive } from './gate.ts';
import { measureNoise, type NoiseWindow, noiseFloor } from './hiccup.ts';
import { type MeasureConfig, measureScenario, type ScenarioResult } from './measure.ts';
import { setUpPinning } from './pinning.ts';
import { type RunData, writeReport } from './report.ts';
import {
  nginxBinary,
  nginxVersion,
  type RunningServer,
  startNativeFloor,
  startNginx,
  startServe,
  stopAll,
} from './servers.ts';

const { values: args } = parseArgs({
  options: {
    ci: { type: 'boolean', default: false },
    rate: { type: 'string' },
    seconds: { type: 'string' },
    trials: { type: 'string' },
    only: { type: 'string' },
    out: { type: 'string' },
    'no-pin': { type: 'boolean', default: false },
  },
});

const CI = args.ci === true;
const RESULTS = fileURLToPath(new URL('../results/', import.meta.url));
const outDir = args.out ?? join(RESULTS, CI ? 'ci' : 'suite');
const cfg: MeasureConfig = {
  rate: Number(args.rate ?? (CI ? 1000 : 2000)),
  openSecondsEach: Number(args.seconds ?? (CI ? 3 : 6)),
  trials: Number(args.trials ?? (CI ? 3 : 1)),
  closedSeconds: CI ? 1.5 : 2,
  closedRounds: 3,
  warmSeconds: CI ? 0.5 : 1,
  connections: 16,
};
const NOISE_SECONDS = CI ? 2 : 3;
const only = args.only ? new Set(args.only.split(',')) : null;
const injectedDelayMs =
  process.env.KCM_TEST_HOOKS === '1' ? Number(process.env.KCM_BENCH_INJECT_DELAY_MS ?? 0) || 0 : 0;

const log = (m: string) => console.error(`[bench] ${m}`);

async function main(): Promise<number> {
  const started = Date.now();
  const loadAverage = loadavg();
  const machine = machineFacts(); // before pinning: it counts the CPUs this process may use
  const pinning = setUpPinning(args['no-pin'] === true);
  log(`pinning: ${pinning.note}`);
  const tmp = mkdtempSync(join(tmpdir(), 'okcm-bench-'));
  const servers = new Map<string, RunningServer>();
  const missing = new Map<string, string>();
  const noiseWindows: NoiseWindow[] = [];
  const results: ScenarioResult[] = [];
  const skipped: RunData['skipped'] = [];
  const failed: RunData['failed'] = [];
  const nginx = nginxBinary();
  let tls: TlsClient | undefined;
  let retried = false;
  const cpu = pinning.serverCpu;
  const noise = async (label: string) => {
    log(`noise floor window "${label}" (${NOISE_SECONDS} s on CPUs ${pinning.watchCpus.join(',')})`);
    noiseWindows.push(await measureNoise(label, pinning.watchCpus, pinning.serverCpu !== undefined, NOISE_SECONDS));
  };
  const start = async (key: string, f: () => Promise<RunningServer>) => {
    try {
      servers.set(key, await f());
    } catch (err) {
      missing.set(key, `${key} did not start: ${(err as Error).message}`);
    }
  };
  try {
    // Servers: all pinned to the server CPU, idle unless measured.
    if (!CI) {
      const pki = makeTestPki(join(tmp, 'pki'));
      const tlsDir = join(tmp, 'tls');
      mkdirSync(tlsDir);
      copyFileSync(pki.edgeA.certFile, join(tlsDir, 'server.crt'));
      copyFileSync(pki.edgeA.keyFile, join(tlsDir, 'server.key'));
      copyFileSync(pki.ca.certFile, join(tlsDir, 'ca.crt'));
      tls = { ca: pki.ca.certPem, cert: pki.app.certPem, key: pki.app.keyPem };
      await start('gw-native', () =>
        startServe('gw-native', 'gateway', cpu, { env: { KCM_CRYPTO_BACKEND: 'native' }, tlsDir }),
      );
      await start('gw-node', () => startServe('gw-node', 'gateway', cpu, { env: { KCM_CRYPTO_BACKEND: 'node' } }));
      await start('gw-pkcs11', () =>
        startServe('gw-pkcs11', 'gateway', cpu, {
          env: { KCM_CRYPTO_BACKEND: 'native' },
          args: ['--hsm', join(tmp, 'hsm')],
        }),
      );
      await start('gw-pkcs11-inline', () =>
        startServe('gw-pkcs11-inline', 'gateway', cpu, {
          env: { KCM_CRYPTO_BACKEND: 'native' },
          args: ['--hsm', join(tmp, 'hsm-inline'), '--hsm-inline'],
        }),
      );
      await start('bare-uws', () => startServe('bare-uws', 'bare-uws', cpu));
      await start('bare-h2', () => startServe('bare-h2', 'bare-h2', cpu, { tlsDir }));
      await start('node-crypto', () => startServe('node-crypto', 'node-crypto', cpu));
      await start('sample-app', () => startServe('sample-app', 'sample-app', cpu));
      const app = servers.get('sample-app');
      if (nginx && app)
        await start('nginx', () => startNginx(nginx, join(tmp, 'nginx'), app.ports.http as number, cpu));
      else missing.set('nginx', nginx ? 'sample app did not start' : 'nginx not installed (apt-get install nginx)');
      if (app) {
        await start('node-proxy', () =>
          startServe('node-proxy', 'node-proxy', cpu, { args: ['--upstream', String(app.ports.http)] }),
        );
        await start('bare-forward', () =>
          startServe('bare-forward', 'bare-forward', cpu, { args: ['--upstream', String(app.ports.http)] }),
        );
        await start('native-floor', () => startNativeFloor(app.ports.http as number, cpu));
        // The gateway proxy, and the same proxy writing its audit log.
        for (const [name, audit] of [
          ['proxy', false],
          ['proxy-audit', true],
        ] as const) {
          const p = await startProxy(app.ports.http as number, join(tmp, name), cpu, { audit });
          if (p.server) servers.set(name, p.server);
          else missing.set(name, p.skip ?? `${name} did not start`);
        }
      } else missing.set('proxy', 'sample app did not start');
    } else {
      await start('gw-native', () =>
        startServe('gw-native', 'gateway', cpu, { env: { KCM_CRYPTO_BACKEND: 'native' } }),
      );
      await start('bare-uws', () => startServe('bare-uws', 'bare-uws', cpu));
    }
    log(`servers: ${[...servers].map(([k, s]) => `${k} (pid ${s.pid}, ${JSON.stringify(s.ports)})`).join(', ')}`);
    for (const [k, why] of missing) log(`not running: ${k}: ${why}`);

    const env: ScenarioEnv = {
      has: (k) => servers.has(k),
      missing: (k) => missing.get(k) ?? `${k} not started in this mode`,
      call: (k, port, front, spec) => callOnce(servers, k, port, front, spec, tls),
    };
    const pass = async (tag: string) => {
      await noise(`start${tag}`);
      const scenarios: Scenario[] = [];
      for (const f of SCENARIOS) {
        try {
          const s = await f(env);
          if (CI ? !s.ci : only && !only.has(s.id)) continue;
          scenarios.push(s);
        } catch (err) {
          failed.push({ id: 'set-up', error: (err as Error).message });
        }
      }
      let i = 0;
      for (const sc of scenarios) {
        i++;
        if (sc.skip) {
          log(`[${i}/${scenarios.length}] ${sc.id}: SKIPPED: ${sc.skip}`);
          skipped.push({ id: sc.id, title: sc.title, reason: sc.skip });
          continue;
        }
        log(`[${i}/${scenarios.length}] ${sc.id}: ${sc.title}`);
        try {
          results.push(await measureScenario(sc, servers, cfg, tls, log));
        } catch (err) {
          log(`  FAILED: ${(err as Error).message}`);
          failed.push({ id: sc.id, error: (err as Error).message });
        }
        if (i < scenarios.length) await noise(`after ${sc.id}${tag}`);
      }
      await noise(`end${tag}`);
    };
    await pass('');
    // bench:ci on a saturated box: one more pass when the latency shift could not be judged and time allows.
    if (CI && inconclusive(ciGate(results, noiseFloor(noiseWindows))) && Date.now() - started < 80_000) {
      log('latency not judgeable (machine saturated): measuring once more');
      retried = true;
      noiseWindows.length = 0;
      results.length = 0;
      skipped.length = 0;
      failed.length = 0;
      await pass(' (2nd pass)');
    }
  } finally {
    await Promise.all([...servers.values()].map((s) => s.stop()));
    rmSync(tmp, { recursive: true, force: true });
  }

  const floor = noiseFloor(noiseWindows);
  const gate = CI ? ciGate(results, floor) : undefined;
  const data: RunData = {
    mode: CI ? 'ci' : 'full',
    date: new Date().toISOString(),
    machine,
    loadAverage,
    pinning,
    nginx: nginx ? nginxVersion(nginx) : null,
    injectedDelayMs,
    config: cfg,
    noiseWindows,
    noise: floor,
    results,
    skipped,
    failed,
    ...(gate ? { gate } : {}),
    seconds: (Date.now() - started) / 1000,
  };
  const md = writeReport(data, outDir);
  process.stdout.write(md);
  log(`report: ${join(outDir, 'report.md')}`);
  if (!CI) return failed.length > 0 && results.length === 0 ? 1 : 0;
  const report = join(RESULTS, 'ci-report.md');
  writeFileSync(report, md);
  log(`CI artefact: ${report}`);
  const red = (gate ?? []).some((c) => !c.ok) || failed.length > 0 || results.length === 0;
  const unsure = !red && inconclusive(gate ?? []);
  log(
    `CI gate: ${red ? 'RED' : unsure ? 'GREEN but latency INCONCLUSIVE (machine saturated: latency shift not judged)' : 'GREEN'}${retried ? ' (after a second pass)' : ''}`,
  );
  return red ? 1 : 0;
}

/** One request with the scenario's client (set-up only), returning the parsed JSON body. */
async function callOnce(
  servers: ReadonlyMap<string, RunningServer>,
  key: string,
  port: string,
  front: Front,
  spec: RequestSpec,
  tls: TlsClient | undefined,
): Promise<unknown> {
  const p = servers.get(key)?.ports[port];
  if (p === undefined) throw new Error(`set-up: ${key} has no port ${port}`);
  if (front === 'http1') {
    const r = await request(`http://127.0.0.1:${p}${spec.path}`, {
      method: spec.method,
      headers: spec.headers,
      body: spec.body ?? null,
    });
    return r.body.json();
  }
  if (!tls) throw new Error('set-up: h2 needs client certificates');
  const session = http2.connect(`https://127.0.0.1:${p}`, { ...tls, servername: 'localhost' });
  try {
    return await new Promise((resolve, reject) => {
      const req = session.request({ ':method': spec.method, ':path': spec.path, ...spec.headers });
      let text = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => {
        text += c;
      });
      req.on('error', reject);
      req.on('end', () => {
        try {
          resolve(JSON.parse(text));
        } catch (err) {
          reject(err);
        }
      });
      req.end(spec.body);
    });
  } finally {
    session.close();
  }
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    log(`${sig}: stopping the servers`);
    void stopAll().finally(() => process.exit(130));
  });
}
process.exitCode = await main();
