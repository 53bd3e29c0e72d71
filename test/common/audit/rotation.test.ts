/**
 * Rotation: at `rotateBytes` the log is closed with a signed checkpoint,
 * renamed to the next segment and continued by a new log whose genesis names
 * it; the segments verify as one chain, in order, with nothing lost. Removing,
 * replacing, reordering or cutting a segment is named; `keepSegments` drops
 * the oldest (a warning, not a failure); a crash between the renames and a
 * rotation that cannot be done are survived, a removed live log is refused;
 * `kcm audit verify` checks it all.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { AlertInput } from '../../../common/src/alerts/alert-types.ts';
import { AuditLog, type AuditLogOptions } from '../../../common/src/audit/audit-log.ts';
import { exportAuditLog } from '../../../common/src/audit/jsonl-export.ts';
import { listSegments, segmentPath } from '../../../common/src/audit/log-segments.ts';
import { verifyAuditSeries } from '../../../common/src/audit/series-verifier.ts';
import type { KcmError } from '../../../common/src/errors.ts';
import { tempDir } from './log-fixture.ts';

const KCM = fileURLToPath(new URL('../../../bin/kcm.mjs', import.meta.url));
const dirs: { cleanup(): void }[] = [];
after(() => {
  for (const d of dirs) d.cleanup();
});

const event = (i: number) => ({
  action: 'gateway.encrypt',
  outcome: 'success' as const,
  actor: 'CN=orders-service',
  tenant: 'acme',
  resource: `keys orders v1 #${i}`,
});

/** A log rotated several times: `n` events, appended in group commits of 10 with a sync record every 25th. */
async function rotatedLog(n: number, extra: Partial<AuditLogOptions> = {}) {
  const d = tempDir();
  dirs.push(d);
  const path = join(d.dir, 'gateway.log');
  const got: AlertInput[] = [];
  const log = new AuditLog({
    path,
    rotateBytes: 4096,
    checkpointEvery: 7,
    checkpointIntervalMs: 0,
    alerter: { alert: (a) => got.push(a) },
    ...extra,
  });
  for (let i = 0; i < n; i += 10) {
    const batch: Promise<void>[] = [];
    for (let j = i; j < Math.min(n, i + 10); j++) {
      if (j % 25 === 24) log.record(event(j));
      else batch.push(log.append(event(j)));
    }
    await Promise.all(batch);
  }
  return { path, log, got, dir: d.dir };
}

const resources = (files: string[]) =>
  files.flatMap((f) => [...exportAuditLog(f)].map((l) => (JSON.parse(l) as { resource: string }).resource));

describe('AuditLog rotation', () => {
  it('rotates at rotateBytes into numbered segments that verify as one chain, every record once and in order', async () => {
    const { path, log } = await rotatedLog(120);
    log.close();
    const segments = listSegments(path);
    assert.ok(segments.length >= 3, `segments: ${segments.length}`);
    assert.deepEqual(
      segments.map((s) => s.n),
      segments.map((_, i) => i + 1),
    );
    assert.equal(log.stats.rotations, segments.length);
    for (const s of segments) assert.ok(existsSync(`${s.path}.head`), 'each segment keeps its head file');
    const r = verifyAuditSeries(path, { publicKey: log.publicKey });
    assert.equal(r.ok, true, JSON.stringify(r.firstBad));
    assert.deepEqual(r.warnings, []);
    assert.equal(r.events, 120);
    assert.deepEqual(
      resources([...segments.map((s) => s.path), path]),
      Array.from({ length: 120 }, (_, i) => `keys orders v1 #${i}`),
    );
  });

  it('names a segment removed from the middle, segments swapped, and a segment cut back', async () => {
    const { path, log } = await rotatedLog(150);
    log.close();
    const [s1, s2, s3] = listSegments(path).map((s) => s.path) as [string, string, string];
    const key = { publicKey: log.publicKey };
    const moved = `${s2}.moved`;
    renameSync(s2, moved);
    renameSync(`${s2}.head`, `${moved}.head`);
    let r = verifyAuditSeries(path, key);
    assert.equal(r.ok, false);
    assert.equal(r.firstBad?.path, s3);
    assert.match(
      r.firstBad?.problem ?? '',
      /does not continue gateway\.log\.000001.*a segment is missing, replaced or out of order/,
    );
    renameSync(moved, s2);
    renameSync(`${moved}.head`, `${s2}.head`);
    assert.equal(verifyAuditSeries(path, key).ok, true);

    // Swap segments 1 and 2 (with their head files): each still verifies alone, the links do not.
    const swapSegments = (a: string, b: string) => {
      for (const [from, to] of [
        [a, `${a}.x`],
        [b, a],
        [`${a}.x`, b],
      ] as const) {
        renameSync(from, to);
        renameSync(`${from}.head`, `${to}.head`);
      }
    };
    swapSegments(s1, s2);
    r = verifyAuditSeries(path, key);
    assert.equal(r.ok, false);
    assert.match(r.firstBad?.problem ?? '', /does not continue/);
    swapSegments(s1, s2);
    assert.equal(verifyAuditSeries(path, key).ok, true);

    // Cut segment 1's close checkpoint off.
    const text = readFileSync(s1, 'utf8');
    writeFileSync(s1, `${text.slice(0, text.lastIndexOf('\n', text.length - 2) + 1)}`);
    r = verifyAuditSeries(path, key);
    assert.equal(r.ok, false);
    assert.equal(r.firstBad?.path, s1);
    assert.match(r.firstBad?.problem ?? '', /tail truncated/);
  });

  it('keepSegments removes the oldest segments; the series still verifies and says where it now begins', async () => {
    const { path, log } = await rotatedLog(150, { keepSegments: 2 });
    log.close();
    const left = listSegments(path);
    assert.equal(left.length, 2);
    assert.ok(left[0] && left[0].n > 1);
    assert.ok(log.stats.removed >= 1);
    assert.equal(existsSync(`${segmentPath(path, 1)}.head`), false);
    const r = verifyAuditSeries(path, { publicKey: log.publicKey });
    assert.equal(r.ok, true, JSON.stringify(r.firstBad));
    assert.match(r.warnings.join('\n'), /continues a segment that is no longer here/);
  });

  it('a crash between the renames: the next start puts the new log (.next) in place; a live log removed beside segments is refused', async () => {
    const { path, log, got } = await rotatedLog(60);
    log.close();
    // As the writer leaves it when it dies after moving the live log to its segment and before `.next` takes its place.
    renameSync(path, `${path}.next`);
    rmSync(`${path}.head`);
    const again = new AuditLog({
      path,
      checkpointIntervalMs: 0,
      rotateBytes: 4096,
      alerter: { alert: (a) => got.push(a) },
    });
    assert.match(got.map((a) => a.summary).join('\n'), /finished a rotation a crash had interrupted/);
    await again.append(event(60));
    again.close();
    const r = verifyAuditSeries(path, { publicKey: log.publicKey });
    assert.equal(r.ok, true, JSON.stringify(r.firstBad));
    assert.equal(r.events, 61);

    // Deleting the live log (and its head) must not start a fresh log that quietly continues the newest segment.
    rmSync(path);
    rmSync(`${path}.head`);
    assert.throws(
      () => new AuditLog({ path, checkpointIntervalMs: 0 }),
      (e: KcmError) => e.code === 'audit_tampered' && /missing but rotated segments are beside it/.test(e.message),
    );
    assert.throws(() => verifyAuditSeries(path, { publicKey: log.publicKey }), /ENOENT/, 'nor does the series verify');

    // A `.next` that does not continue the newest segment is never taken for the live log.
    writeFileSync(`${path}.next`, 'not a log\n');
    assert.throws(() => new AuditLog({ path, checkpointIntervalMs: 0 }), /missing but rotated segments/);
    assert.equal(existsSync(`${path}.next`), false, 'moved aside');
  });

  it('a rotation that cannot be done alerts, goes on in the same file after an open checkpoint, and is tried again later', async () => {
    const d = tempDir();
    dirs.push(d);
    // A name so long that moving a leftover `.next` aside (`….next.<ms>.orphan`) exceeds NAME_MAX: ENAMETOOLONG.
    const path = join(d.dir, `${'g'.repeat(228)}.log`);
    const got: AlertInput[] = [];
    const log = new AuditLog({
      path,
      rotateBytes: 4096,
      checkpointIntervalMs: 0,
      alerter: { alert: (a) => got.push(a) },
    });
    writeFileSync(`${path}.next`, 'leftover');
    for (let i = 0; i < 30; i++) await log.append(event(i));
    assert.equal(log.stats.rotations, 0);
    assert.match(
      got.map((a) => a.summary).join('\n'),
      /cannot rotate the audit log \(ENAMETOOLONG\); it goes on in the same file/,
    );
    assert.equal(listSegments(path).length, 0, 'nothing was moved');
    const reasons = readFileSync(path, 'utf8')
      .split('\n')
      .filter((l) => l.includes('"type":"checkpoint"'))
      .map((l) => (JSON.parse(l) as { reason: string }).reason);
    assert.deepEqual(reasons.slice(0, 3), ['open', 'close', 'open'], 'a close checkpoint is followed by an open one');
    rmSync(`${path}.next`);
    for (let i = 30; i < 60; i++) await log.append(event(i));
    assert.ok(log.stats.rotations >= 1);
    log.close();
    const r = verifyAuditSeries(path, { publicKey: log.publicKey });
    assert.equal(r.ok, true, JSON.stringify(r.firstBad));
    assert.equal(r.events, 60);
  });

  it('a rotated segment must end with its close checkpoint, even with a head file naming an earlier one', async () => {
    const { path, log } = await rotatedLog(100);
    log.close();
    const s1 = segmentPath(path, 1);
    const lines = readFileSync(s1, 'utf8').split('\n').filter(Boolean);
    // Cut back to the last periodic checkpoint, and make the head name it (a validly signed line of the segment).
    const last = lines.findLastIndex((l) => l.includes('"reason":"periodic"'));
    assert.ok(last > 0);
    writeFileSync(s1, `${lines.slice(0, last + 1).join('\n')}\n`);
    writeFileSync(`${s1}.head`, `${lines[last]}\n`);
    const r = verifyAuditSeries(path, { publicKey: log.publicKey });
    assert.equal(r.ok, false);
    assert.equal(r.firstBad?.path, s1);
    assert.match(r.firstBad?.problem ?? '', /must end with its close checkpoint/);
  });

  it('kcm audit verify checks every segment and the links, and names a missing one', async () => {
    const { path, log } = await rotatedLog(100);
    log.close();
    const kcm = () =>
      spawnSync(process.execPath, [KCM, 'audit', 'verify', '--log', path, '--public-key', log.publicKey], {
        encoding: 'utf8',
      });
    let r = kcm();
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const n = listSegments(path).length;
    assert.match(r.stdout, new RegExp(`OK: ${n + 1} files \\(${n} rotated segments\\), 100 events, one chain`));
    const s2 = segmentPath(path, 2);
    rmSync(s2);
    rmSync(`${s2}.head`);
    r = kcm();
    assert.equal(r.status, 1);
    assert.match(r.stdout, /FAILED in .*gateway\.log\.000003: does not continue gateway\.log\.000001/);
    // Every segment gone: the live log still verifies alone, with a warning that it continues one no longer here.
    for (const seg of listSegments(path, true)) {
      rmSync(seg.path, { force: true });
      rmSync(`${seg.path}.head`, { force: true });
    }
    r = kcm();
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stderr, /warning: the log continues a rotated segment that is no longer beside it/);
  });
});
