/**
 * Fail closed without freezing, with real file-system failures: a log that
 * cannot be opened, a descriptor closed under the writer (EBADF), a full
 * device (ENOSPC from /dev/full), a background fdatasync that fails (EINVAL
 * from /dev/null under its descriptor), a write failing while an earlier
 * batch waits for its sync, a directory that vanished. Each failed
 * append throws `audit_unavailable` (503) and alerts; later appends recover
 * once the cause is gone, and the log still verifies.
 */
import assert from 'node:assert/strict';
import { closeSync, existsSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { AlertInput } from '../../../common/src/alerts/alert-types.ts';
import { AuditLog } from '../../../common/src/audit/audit-log.ts';
import { verifyAuditLog } from '../../../common/src/audit/audit-verifier.ts';
import { KcmError } from '../../../common/src/errors.ts';
import { replaceDescriptor, tempDir } from './log-fixture.ts';

const dirs: { cleanup(): void }[] = [];
after(() => {
  for (const d of dirs) d.cleanup();
});

function setup() {
  const d = tempDir();
  dirs.push(d);
  const got: AlertInput[] = [];
  const path = join(d.dir, 'logs', 'audit.jsonl');
  const log = new AuditLog({ path, checkpointIntervalMs: 0, alerter: { alert: (a) => got.push(a) } });
  return { dir: d.dir, path, log, got };
}

const unavailable = (detail: RegExp) => (err: unknown) =>
  err instanceof KcmError && err.code === 'audit_unavailable' && err.status === 503 && detail.test(err.message);

describe('AuditLog fails closed and recovers', () => {
  it('a log whose parent is a file cannot be opened: audit_unavailable and an alert', () => {
    const d = tempDir();
    dirs.push(d);
    writeFileSync(join(d.dir, 'file'), 'x');
    const got: AlertInput[] = [];
    assert.throws(
      () => new AuditLog({ path: join(d.dir, 'file', 'audit.jsonl'), alerter: { alert: (a) => got.push(a) } }),
      unavailable(/ENOTDIR|EEXIST/),
    );
    assert.equal(got[0]?.kind, 'audit.failure');
    assert.equal(got[0]?.severity, 'critical');
  });

  it('a descriptor closed under the writer (EBADF): that append fails, the next one reopens and succeeds', async () => {
    const { path, log, got } = setup();
    log.record({ action: 'key.decrypt', outcome: 'success' });
    closeSync(log.fd as number);
    assert.throws(
      () => log.record({ action: 'key.decrypt', outcome: 'success', resource: 'lost' }),
      unavailable(/EBADF/),
    );
    assert.match(got.at(-1)?.summary ?? '', /cannot write the audit log \(EBADF\); key operations are refused/);
    log.record({ action: 'key.decrypt', outcome: 'success', resource: 'after' });
    await log.append({ action: 'key.encrypt', outcome: 'success' });
    log.close();
    const r = verifyAuditLog(path, { publicKey: log.publicKey });
    assert.equal(r.ok, true, r.firstBad?.problem);
    assert.equal(r.events, 3);
    assert.equal(log.stats.writeFailures, 1);
  });

  it('a full device (ENOSPC from /dev/full): the whole group-commit batch is refused, later ones succeed', async (t) => {
    if (!existsSync('/dev/full')) return t.skip('no /dev/full');
    const { path, log, got } = setup();
    const fd = log.fd as number;
    if (!replaceDescriptor(fd, '/dev/full', 'w')) return t.skip('the kernel gave /dev/full another descriptor number');
    const batch = [1, 2, 3].map((i) => log.append({ action: 'key.encrypt', outcome: 'success', resource: `r${i}` }));
    const results = await Promise.allSettled(batch);
    for (const r of results) {
      assert.equal(r.status, 'rejected');
      assert.ok(unavailable(/ENOSPC/)((r as PromiseRejectedResult).reason));
    }
    assert.match(got.at(-1)?.summary ?? '', /ENOSPC/);
    await log.append({ action: 'key.encrypt', outcome: 'success', resource: 'r4' });
    log.close();
    const r = verifyAuditLog(path, { publicKey: log.publicKey });
    assert.equal(r.ok, true, r.firstBad?.problem);
    assert.equal(r.events, 1);
  });

  it('a background fdatasync that fails (EINVAL from /dev/null): its records are refused and cut out of the file, the head keeps the last durable checkpoint, the chain resumes', async (t) => {
    const d = tempDir();
    dirs.push(d);
    const got: AlertInput[] = [];
    const path = join(d.dir, 'audit.jsonl');
    const log = new AuditLog({
      path,
      checkpointEvery: 2,
      checkpointIntervalMs: 0,
      alerter: { alert: (a) => got.push(a) },
    });
    await log.append({ action: 'core.unseal', outcome: 'success', resource: 'kept' }); // opens the sync descriptor
    const head = readFileSync(`${path}.head`, 'utf8');
    const sizeBefore = statSync(path).size;
    // The background syncs' own descriptor now points at /dev/null: writes still reach the file, its fdatasync fails.
    const fd = log.syncFd as number;
    if (!replaceDescriptor(fd, '/dev/null', 'r')) return t.skip('the kernel gave /dev/null another descriptor number');
    const batch = [1, 2, 3].map((i) => log.append({ action: 'key.encrypt', outcome: 'success', resource: `lost${i}` }));
    await new Promise((r) => setImmediate(r));
    assert.match(readFileSync(path, 'utf8'), /lost3/, 'written to the file, not yet durable');
    const results = await Promise.allSettled(batch);
    for (const r of results) {
      assert.equal(r.status, 'rejected');
      assert.ok(unavailable(/EINVAL/)((r as PromiseRejectedResult).reason));
    }
    assert.match(got.at(-1)?.summary ?? '', /cannot sync the audit log \(EINVAL\); key operations are refused/);
    assert.equal(statSync(path).size, sizeBefore, 'the refused records (and their checkpoint) are cut out of the file');
    assert.doesNotMatch(readFileSync(path, 'utf8'), /lost/);
    await log.headWritten();
    assert.equal(readFileSync(`${path}.head`, 'utf8'), head, 'a checkpoint that never became durable is not named');
    assert.equal(log.pendingSync, 0);
    await log.append({ action: 'key.encrypt', outcome: 'success', resource: 'after' });
    log.close();
    const r = verifyAuditLog(path, { publicKey: log.publicKey });
    assert.equal(r.ok, true, r.firstBad?.problem);
    assert.equal(r.events, 2);
  });

  it('a write that fails (ENOSPC) while an earlier group commit waits for its fdatasync: both are refused, and the earlier lines, already in the file, are cut out', async (t) => {
    const { path, log } = setup();
    log.record({ action: 'core.unseal', outcome: 'success', resource: 'kept' });
    const sizeBefore = statSync(path).size;
    const first = log.append({ action: 'key.encrypt', outcome: 'success', resource: 'waiting' });
    await new Promise((r) => setImmediate(r)); // written; its fdatasync runs on the thread pool
    assert.equal(log.pendingSync, 1);
    assert.match(readFileSync(path, 'utf8'), /waiting/);
    const fd = log.fd as number;
    if (!replaceDescriptor(fd, '/dev/full', 'w')) return t.skip('the kernel gave /dev/full another descriptor number');
    assert.throws(
      () => log.record({ action: 'key.decrypt', outcome: 'success', resource: 'no-room' }),
      unavailable(/ENOSPC/),
    );
    await assert.rejects(first, unavailable(/ENOSPC/));
    await log.append({ action: 'key.encrypt', outcome: 'success', resource: 'after' }); // reopens the file and cuts
    log.close();
    const text = readFileSync(path, 'utf8');
    assert.doesNotMatch(text, /waiting|no-room/);
    assert.ok(statSync(path).size > sizeBefore);
    const r = verifyAuditLog(path, { publicKey: log.publicKey });
    assert.equal(r.ok, true, r.firstBad?.problem);
    assert.equal(r.events, 2);
  });

  it('the same descriptor swap without fsync: the writes to /dev/null succeed (no failure without a failing call)', async (t) => {
    const d = tempDir();
    dirs.push(d);
    const log = new AuditLog({ path: join(d.dir, 'audit.jsonl'), checkpointIntervalMs: 0, fsync: false });
    const fd = log.fd as number;
    if (!replaceDescriptor(fd, '/dev/null', 'w')) return t.skip('the kernel gave /dev/null another descriptor number');
    await log.append({ action: 'key.encrypt', outcome: 'success' });
    assert.equal(log.stats.writeFailures, 0);
    log.close();
  });

  it('while the directory is gone every append answers 503; when it is back, appends resume', () => {
    const { dir, path, log } = setup();
    log.record({ action: 'core.unseal', outcome: 'success' });
    closeSync(log.fd as number);
    renameSync(join(dir, 'logs'), join(dir, 'moved'));
    writeFileSync(join(dir, 'logs'), 'not a directory');
    // The first write finds the closed descriptor, the next ones cannot reopen the path.
    assert.throws(() => log.record({ action: 'key.decrypt', outcome: 'success' }), unavailable(/EBADF/));
    for (let i = 0; i < 3; i++)
      assert.throws(() => log.record({ action: 'key.decrypt', outcome: 'success' }), unavailable(/ENOTDIR/));
    rmSync(join(dir, 'logs'));
    renameSync(join(dir, 'moved'), join(dir, 'logs'));
    log.record({ action: 'key.decrypt', outcome: 'success', resource: 'back' });
    log.close();
    const r = verifyAuditLog(path, { publicKey: log.publicKey });
    assert.equal(r.ok, true, r.firstBad?.problem);
    assert.equal(r.events, 2);
  });

  it('a log replaced while the writer could not write is not appended to', () => {
    const { path, log } = setup();
    log.record({ action: 'core.unseal', outcome: 'success' });
    closeSync(log.fd as number);
    assert.throws(() => log.record({ action: 'a', outcome: 'success' }), unavailable(/EBADF/));
    rmSync(path);
    writeFileSync(path, '');
    assert.throws(
      () => log.record({ action: 'a', outcome: 'success' }),
      unavailable(/changed while it could not be written/),
    );
  });
});
