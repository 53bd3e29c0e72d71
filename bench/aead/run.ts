/**
 * AEAD seal micro-benchmark: native AES-256-GCM (through the crypto face)
 * against hand-written node:crypto, the face's node backend, libsodium
 * XChaCha20-Poly1305 and `openssl speed` as the hardware reference.
 *
 *   node --import tsx bench/aead/run.ts [--quick] [--json FILE] [--no-pin] [--cpu N]
 *
 * Contract:
 *  - stdout: the Markdown report only (machine facts, results table, ratios,
 *    PASS/FAIL/N/A target lines); progress goes to stderr.
 *  - `--json FILE` also writes every number (per-round rates included).
 *  - Exit 0 when the run completed, whatever the target verdicts. Exit 1 on
 *    an error: a correctness guard failed, a contestant threw, bad arguments,
 *    or the native backend could not be loaded (the report is still printed
 *    for the rows that ran).
 *  - By default the main thread pins itself to the highest allowed CPU and
 *    runs openssl on the same CPU (taskset); `--no-pin` runs both unpinned.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import sodium from 'libsodium-wrappers';
import { cryptoFor, type KeyHandle } from '../../native/index.ts';
import { loadNative } from '../../native/ts/load.ts';
import { buildCase, CASES, type CaseContext, type Entry } from './cases.ts';
import { machineFacts, pinMainThread } from './machine.ts';
import { interleave, type RoundRates, sinkValue } from './measure.ts';
import { OpensslError, probeOpenssl } from './openssl-speed.ts';
import { type CaseResult, markdown, type RunInfo, ratios, rowResult, targets } from './report.ts';

interface Args {
  quick: boolean;
  json?: string;
  pin: boolean;
  cpu?: number;
}

function parseArgs(argv: readonly string[]): Args {
  const a: Args = { quick: false, pin: true };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--quick') a.quick = true;
    else if (arg === '--no-pin') a.pin = false;
    else if (arg === '--json' || arg === '--cpu') {
      const v = argv[++i];
      if (v === undefined || v.startsWith('--')) throw new Error(`${arg} needs a value`);
      if (arg === '--json') a.json = v;
      else if (/^\d+$/.test(v)) a.cpu = Number(v);
      else throw new Error(`--cpu needs a CPU number, got ${v}`);
    } else throw new Error(`unknown argument ${arg}; usage: run.ts [--quick] [--json FILE] [--no-pin] [--cpu N]`);
  }
  return a;
}

function log(msg: string): void {
  process.stderr.write(`${msg}\n`);
}

/** Times the entries of one case interleaved; drops openssl (recorded as missing) if it fails mid-run. */
function timeCase(
  entries: Entry[],
  missing: CaseResult['missing'],
  opts: Parameters<typeof interleave>[1],
): RoundRates {
  try {
    return interleave(
      entries.map((e) => e.timed),
      opts,
    );
  } catch (err) {
    const os = entries.findIndex((e) => e.role === 'openssl');
    if (!(err instanceof OpensslError) || os < 0) throw err;
    const [gone] = entries.splice(os, 1);
    missing.push({ name: gone?.name ?? 'openssl', reason: err.message });
    log(`  openssl failed (${err.message}); re-timing without it`);
    return timeCase(entries, missing, opts);
  }
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const rounds = args.quick ? 3 : 5;
  const roundMs = args.quick ? 100 : 300;
  const warmupMs = args.quick ? 200 : 500;
  const settleMs = 300;
  const opensslSeconds = 1;

  const machine = machineFacts(); // before pinning: availableParallelism() follows the affinity mask
  const pin = args.pin
    ? pinMainThread(args.cpu)
    : { pinned: false, note: 'not pinned (--no-pin): node and openssl float' };
  const probe = probeOpenssl();
  await sodium.ready;

  const keyBytes = randomBytes(32);
  let native: KeyHandle | null = null;
  let backend: string;
  try {
    native = cryptoFor('native').importKey(Buffer.from(keyBytes));
    backend = `native (${loadNative().path}; key in locked memory: ${native.info().locked})`;
  } catch (err) {
    backend = `native UNAVAILABLE: ${err instanceof Error ? err.message : String(err)}`;
  }
  log(`backend: ${backend}\npinning: ${pin.note}`);

  const openssl: CaseContext['openssl'] = probe.available
    ? pin.pinned && pin.cpu !== undefined
      ? { seconds: opensslSeconds, cpu: pin.cpu }
      : { seconds: opensslSeconds }
    : null;
  const ctx: CaseContext = {
    keyBytes,
    native,
    nodeFace: cryptoFor('node').importKey(Buffer.from(keyBytes)),
    sodium,
    sodiumKey: sodium.crypto_aead_xchacha20poly1305_ietf_keygen(),
    openssl,
  };

  const results: CaseResult[] = [];
  for (const def of CASES) {
    const entries = buildCase(def, ctx);
    const missing: CaseResult['missing'] = [];
    if (!native) missing.push({ name: 'native', reason: 'native backend unavailable' });
    if (!probe.available && def.fields === 1) missing.push({ name: 'openssl speed', reason: probe.reason ?? '' });
    for (const e of entries) e.verify();
    log(`${def.label}: ${entries.length} contestants verified; timing ${rounds} rounds`);
    const rates = timeCase(entries, missing, {
      rounds,
      roundMs,
      warmupMs,
      settleMs,
      onRound: (r) => log(`  round ${r}/${rounds}`),
    });
    const rows = entries.map((e) =>
      rowResult(e.role, e.name, e.calls, e.messagesPerOp, def.bytes, rates.get(e.name) ?? []),
    );
    results.push({ def, rows, missing });
  }

  const info: RunInfo = {
    date: new Date().toISOString(),
    mode: args.quick ? 'quick' : 'full',
    rounds,
    roundMs,
    warmupMs,
    settleMs,
    opensslSeconds,
    machine,
    opensslCli: probe.available ? `${probe.version}` : `n/a (${probe.reason})`,
    backend,
    pinning: pin.note,
  };
  const rs = ratios(results);
  const ts = targets(results);
  process.stdout.write(markdown(info, results, rs, ts));
  if (args.json) {
    writeFileSync(args.json, `${JSON.stringify({ info, cases: results, ratios: rs, targets: ts }, null, 2)}\n`);
    log(`wrote ${args.json}`);
  }
  log(`(sink ${sinkValue() % 997})`);
  if (!native) {
    log(`error: ${backend}`);
    return 1;
  }
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    log(`error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exitCode = 1;
  },
);
