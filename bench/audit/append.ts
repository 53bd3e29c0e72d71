/**
 * Audit log append throughput (records/s): synchronous `record()` and group
 * commit `append()` with N concurrent producers, with and without fdatasync,
 * on a temp file, and how long the event loop was held meanwhile (p99 of
 * `monitorEventLoopDelay`: what every other request of the process waits).
 * Run: node --import tsx bench/audit/append.ts [seconds per case]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { AuditLog } from '../../common/src/audit/audit-log.ts';
import { verifyAuditLog } from '../../common/src/audit/audit-verifier.ts';

const seconds = Number(process.argv[2] ?? 2);
const event = {
  action: 'key.decrypt',
  outcome: 'success' as const,
  actor: 'CN=orders-service,O=acme',
  tenant: 'acme',
  resource: 'acme/orders-l3 v7',
  correlationId: '4bf92f3577b34da6a3ce929d0e0e4736',
};

async function run(name: string, fsync: boolean, mode: 'sync' | number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'kcm-audit-bench-'));
  const path = join(dir, 'audit.jsonl');
  const log = new AuditLog({ path, fsync, checkpointEvery: 1000, checkpointIntervalMs: 0 });
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  const end = performance.now() + seconds * 1000;
  let n = 0;
  const t0 = performance.now();
  if (mode === 'sync') {
    while (performance.now() < end) {
      for (let i = 0; i < 50; i++) log.record(event);
      n += 50;
    }
  } else {
    const producer = async () => {
      while (performance.now() < end) {
        await log.append(event);
        n++;
      }
    };
    await Promise.all(Array.from({ length: mode }, producer));
  }
  const secs = (performance.now() - t0) / 1000;
  delay.disable();
  log.close();
  const v = verifyAuditLog(path, { publicKey: log.publicKey });
  const batch = mode === 'sync' ? 1 : n / Math.max(1, log.stats.batches);
  console.log(
    `${name.padEnd(44)} ${String(Math.round(n / secs)).padStart(8)} records/s  (mean batch ${batch.toFixed(1)}, event-loop delay p99 ${(delay.percentile(99) / 1e6).toFixed(2)} ms, verify ${v.ok ? 'ok' : 'FAILED'})`,
  );
  rmSync(dir, { recursive: true, force: true });
}

await run('record() sync, fdatasync each', true, 'sync');
await run('record() sync, no fsync', false, 'sync');
await run('append() group commit, 1 producer, fdatasync', true, 1);
await run('append() group commit, 64 producers, fdatasync', true, 64);
await run('append() group commit, 256 producers, fdatasync', true, 256);
await run('append() group commit, 256 producers, no fsync', false, 256);
