/**
 * Cold-tenant hydration (issue 4: "cold tenant via IVK < 5 ms; cold via L1
 * through the KMS-protocol server reported").
 *
 *   node --import tsx bench/core/hydrate.ts [--tenants 200] [--json FILE]
 *
 * Set-up: a real root of trust on a temp SQLite file, N managed tenants and N
 * HYOK tenants (L1 = the KMS-protocol test server over loopback HTTP through
 * @aws-sdk/client-kms), each with one service key. Measured, per lease call
 * (leaseSet: tenant + service + versions read and verified, then unwrap):
 *   - warm: L2 and L3 cached (the same-run baseline);
 *   - cold via IVK: caches wiped → L2 unwrapped under the IVK, L3 under L2;
 *   - cold via L1: caches wiped → L2 through KMS Decrypt (HYOK), L3 under L2.
 * Reported as p50/p99 in ms and as ratios to the warm p50.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { MemoryAuditSink } from '../../core/src/audit/audit-sink.ts';
import { KeyEventBus } from '../../core/src/events/key-event-bus.ts';
import { ivkPolicy } from '../../core/src/ivk/ivk-policy.ts';
import { L1Registry } from '../../core/src/l1/l1-registry.ts';
import { RootOfTrust } from '../../core/src/root/root-of-trust.ts';
import { IntegrityStore } from '../../core/src/store/integrity-store.ts';
import { openStore } from '../../core/src/store/open-store.ts';
import { KeyHierarchy } from '../../core/src/tenants/key-hierarchy.ts';
import { defaultCrypto } from '../../native/index.ts';
import { KmsTestServer } from '../../test/support/kms-server.ts';

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? dflt) : dflt;
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] as number;
}

async function time(keys: KeyHierarchy, tenants: readonly string[], wipe: boolean): Promise<number[]> {
  const out: number[] = [];
  for (const t of tenants) {
    if (wipe) keys.wipe();
    const start = performance.now();
    await keys.leaseSet(t, 'orders', []);
    out.push(performance.now() - start);
  }
  return out;
}

async function main(): Promise<void> {
  const n = Number(arg('tenants', '200'));
  const dir = mkdtempSync(join(tmpdir(), 'kcm-bench-hydrate-'));
  const kms = await KmsTestServer.start();
  const key = kms.createKey();
  const raw = await openStore({ kind: 'sqlite', path: join(dir, 'core.db') });
  try {
    const crypto = defaultCrypto();
    const audit = new MemoryAuditSink();
    const store = new IntegrityStore(raw);
    const root = new RootOfTrust({ crypto, store, region: 'bench', sealProvider: null, ivkPolicy: ivkPolicy(), audit });
    await root.load();
    await root.init({ threshold: 2, shareCount: 3 });
    const l1 = new L1Registry(
      {
        kms: {
          type: 'awskms',
          keyId: key.arn,
          region: kms.region,
          endpoint: kms.endpoint,
          credentials: { accessKeyId: 'AKIDBENCH', secretAccessKey: 'bench' },
        },
      },
      { devMode: false },
    );
    const keys = new KeyHierarchy({ crypto, store, root, l1, bus: new KeyEventBus(), audit });
    const managed = Array.from({ length: n }, (_, i) => `m-${i}`);
    const hyok = Array.from({ length: n }, (_, i) => `h-${i}`);
    for (const id of managed) {
      await keys.tenants.create({ id });
      await keys.services.create(id, 'orders');
    }
    for (const id of hyok) {
      await keys.tenants.create({ id, keyMode: 'hyok', l1: { provider: 'kms', keyId: key.arn, region: kms.region } });
      await keys.services.create(id, 'orders');
    }
    await time(keys, managed.slice(0, 20), true); // JIT and page-cache warm-up
    await time(keys, managed, false);
    const warm = await time(keys, managed, false);
    const coldIvk = await time(keys, managed, true);
    const decrypts = kms.countOf('Decrypt');
    const coldL1 = await time(keys, hyok, true);
    const kmsCalls = kms.countOf('Decrypt') - decrypts;
    const base = pct(warm, 50);
    const row = (name: string, xs: number[]) => ({
      name,
      p50: pct(xs, 50),
      p99: pct(xs, 99),
      ratioP50: pct(xs, 50) / base,
    });
    const rows = [row('warm (baseline)', warm), row('cold via IVK', coldIvk), row('cold via L1 (KMS)', coldL1)];
    console.log(`tenants per case: ${n}; SQLite store; KMS Decrypt calls during cold-L1: ${kmsCalls}`);
    for (const r of rows) {
      console.log(
        `${r.name.padEnd(20)} p50 ${r.p50.toFixed(3)} ms  p99 ${r.p99.toFixed(3)} ms  ${r.ratioP50.toFixed(1)}× warm p50`,
      );
    }
    const json = arg('json', '');
    if (json) writeFileSync(json, `${JSON.stringify({ tenants: n, kmsCalls, rows }, null, 2)}\n`);
    keys.wipe();
    root.seal('bench end');
    await l1.close();
  } finally {
    await raw.close();
    await kms.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
