/**
 * Unseal-to-active time with many stored tenants (issue: "< 200 ms with 10,000
 * L2 records; lazy hydration: nothing bulk-loaded").
 *
 *   node --import tsx bench/core/unseal.ts [--tenants 10000] [--rounds 5] [--store sqlite|postgres] [--json FILE]
 *
 * Set-up: a real Core root of trust on a temp SQLite file (or a PostgreSQL
 * given by KCM_BENCH_PG_URL), Shamir 3-of-5, N tenants' L2 keys wrapped under
 * the IVK and stored in one transaction. Each round: seal, then time three
 * share submissions → active (share verification, combine, check value,
 * record verification, IVK unwrap). The baseline measured in the same run is
 * the cost of the same unseal with 0 tenants, so the ratio shows what the
 * stored tenants add (lazy hydration means ≈ 1×).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { MemoryAuditSink } from '../../core/src/audit/audit-sink.ts';
import { ivkPolicy } from '../../core/src/ivk/ivk-policy.ts';
import { RootOfTrust } from '../../core/src/root/root-of-trust.ts';
import { IntegrityStore } from '../../core/src/store/integrity-store.ts';
import { openStore, type StoreConfig } from '../../core/src/store/open-store.ts';
import { defaultCrypto } from '../../native/index.ts';

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? dflt) : dflt;
}

async function measure(tenants: number, rounds: number, config: StoreConfig): Promise<number[]> {
  const crypto = defaultCrypto();
  const raw = await openStore(config);
  const store = new IntegrityStore(raw);
  const root = new RootOfTrust({
    crypto,
    store,
    region: 'bench',
    sealProvider: null,
    ivkPolicy: ivkPolicy(),
    audit: new MemoryAuditSink(),
  });
  try {
    await root.load();
    const { shares } = await root.init({ threshold: 3, shareCount: 5 });
    await store.transaction(async (tx) => {
      for (let i = 0; i < tenants; i++) {
        const l2 = crypto.generateKey();
        const tenant = `tenant-${i}`;
        await root.ivk().insertL2(tx, l2, tenant, 1, Date.now());
        l2.destroy();
      }
    });
    const times: number[] = [];
    for (let r = 0; r < rounds; r++) {
      root.seal('bench');
      const t0 = performance.now();
      for (const s of [shares[4], shares[0], shares[2]]) await root.submitShare((s as { payload: string }).payload);
      times.push(performance.now() - t0);
      if (root.state !== 'active') throw new Error('did not unseal');
    }
    return times;
  } finally {
    root.seal('bench');
    await raw.close();
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

const tenants = Number(arg('tenants', '10000'));
const rounds = Number(arg('rounds', '5'));
const kind = arg('store', 'sqlite');
const dir = mkdtempSync(join(tmpdir(), 'kcm-bench-unseal-'));
const config = (name: string): StoreConfig =>
  kind === 'postgres'
    ? { kind: 'postgres', connectionString: process.env.KCM_BENCH_PG_URL ?? '', schema: `bench_${name}_${process.pid}` }
    : { kind: 'sqlite', path: join(dir, `${name}.db`) };
try {
  const base = await measure(0, rounds, config('empty'));
  const full = await measure(tenants, rounds, config('full'));
  const result = {
    store: kind,
    tenants,
    rounds,
    baselineMs: { median: median(base), all: base },
    unsealMs: { median: median(full), all: full },
    ratio: median(full) / median(base),
    targetMs: 200,
    pass: median(full) < 200,
  };
  console.log(
    `| store | tenants | unseal-to-active median (ms) | rounds (ms) | 0-tenant baseline (ms) | ratio | target < 200 ms |`,
  );
  console.log(`|---|--:|--:|---|--:|--:|---|`);
  console.log(
    `| ${kind} | ${tenants} | ${result.unsealMs.median.toFixed(1)} | ${full.map((t) => t.toFixed(1)).join(', ')} | ${result.baselineMs.median.toFixed(1)} | ${result.ratio.toFixed(2)}× | ${result.pass ? 'PASS' : 'FAIL'} |`,
  );
  const json = arg('json', '');
  if (json) writeFileSync(json, JSON.stringify(result, null, 2));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
