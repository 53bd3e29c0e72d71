/**
 * The head file off the event loop (head-writer.ts), on real files: a
 * background write returns before the disk is touched and lands later; a
 * newer line replaces one still waiting; a synchronous write, or a rename of
 * the head file away (a rotation), is never undone by a background write that
 * was in flight; failures are reported, never thrown; and the audit log's
 * head names its newest durable checkpoint once `headWritten()` resolves.
 * A property drives random interleavings of all of it.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import { AuditLog } from '../../../common/src/audit/audit-log.ts';
import { verifyAuditLog } from '../../../common/src/audit/audit-verifier.ts';
import { HeadWriter } from '../../../common/src/audit/head-writer.ts';
import { parseLine } from '../../../common/src/audit/record-format.ts';
import { tempDir } from './log-fixture.ts';

const dirs: { cleanup(): void }[] = [];
after(() => {
  for (const d of dirs) d.cleanup();
});

function setup(fsync = true) {
  const d = tempDir('kcm-head-');
  dirs.push(d);
  const path = join(d.dir, 'audit.jsonl.head');
  const errors: unknown[] = [];
  const w = new HeadWriter(path, { fsync, onError: (e) => errors.push(e) });
  return { dir: d.dir, path, w, errors };
}

const read = (p: string) => readFileSync(p, 'utf8');

/** The temporary files of head file `path` still on disk. */
const temporaries = (path: string) => readdirSync(dirname(path)).filter((n) => n.startsWith(`${basename(path)}.tmp`));

describe('HeadWriter', () => {
  it('later() returns before the file is written, and the line lands with no temporary file left', async () => {
    const { path, w, errors } = setup();
    w.now('A');
    w.later('B');
    assert.equal(read(path), 'A\n', 'nothing written on the calling turn');
    assert.equal(w.busy, true);
    await w.idle();
    assert.equal(read(path), 'B\n');
    assert.deepEqual(temporaries(path), []);
    assert.deepEqual(errors, []);
  });

  it('a newer line replaces one still waiting; the newest always ends up in the file', async () => {
    const { path, w } = setup();
    for (const l of ['1', '2', '3', '4', '5']) w.later(l);
    await w.idle();
    assert.equal(read(path), '5\n');
    // Interleaved with completions: never goes back.
    const seen: string[] = [];
    for (let i = 6; i <= 40; i++) {
      w.later(String(i));
      if (i % 7 === 0) {
        await new Promise((r) => setTimeout(r, 2));
        if (existsSync(path)) seen.push(read(path).trim());
      }
    }
    await w.idle();
    assert.equal(read(path), '40\n');
    const nums = seen.map(Number);
    assert.deepEqual(
      nums,
      [...nums].sort((a, b) => a - b),
      'the head only moves forward',
    );
  });

  it('now() supersedes a background write in flight: its rename never happens', async () => {
    const { path, w } = setup();
    w.later('old');
    w.now('new');
    await w.idle();
    assert.equal(read(path), 'new\n');
    assert.deepEqual(temporaries(path), [], 'the superseded write is removed');
  });

  it('a head file moved away (a rotation) while a background write is in flight is not written back', async () => {
    const { dir, path, w } = setup();
    w.now('close-of-segment-1');
    w.later('stale');
    // What #rotate does, all on this turn: a synchronous head write, then the rename to the segment's name.
    w.now('close-of-segment-1b');
    renameSync(path, join(dir, 'audit.jsonl.000001.head'));
    await w.idle();
    assert.equal(existsSync(path), false, 'the background write did not recreate the live head');
    assert.equal(read(join(dir, 'audit.jsonl.000001.head')), 'close-of-segment-1b\n');
  });

  it('cancel() drops the waiting line and the rename in flight', async () => {
    const { path, w } = setup();
    w.now('kept');
    w.later('a');
    w.later('b');
    w.cancel();
    await w.idle();
    assert.equal(read(path), 'kept\n');
  });

  it('a failing background write is reported, never thrown, and the writer goes on', async () => {
    const { dir, w, errors } = setup();
    const blocked = join(dir, 'not-a-dir');
    writeFileSync(blocked, 'x');
    const bad = new HeadWriter(join(blocked, 'audit.head'), { fsync: true, onError: (e) => errors.push(e) });
    bad.later('x');
    await bad.idle();
    assert.equal(errors.length, 1);
    assert.equal((errors[0] as NodeJS.ErrnoException).code, 'ENOTDIR');
    bad.now('y');
    assert.equal(errors.length, 2, 'the synchronous path reports the same way');
    w.later('fine');
    await w.idle();
    assert.equal(errors.length, 2);
  });

  it('without fsync there is no disk wait: later() writes at once', () => {
    const { path, w } = setup(false);
    w.later('at once');
    assert.equal(read(path), 'at once\n');
    assert.equal(w.busy, false);
  });

  it('temporary files of a process that no longer runs are removed at start; those of live processes are kept', () => {
    const d = tempDir('kcm-head-');
    dirs.push(d);
    mkdirSync(join(d.dir, 'x'));
    const path = join(d.dir, 'x', 'audit.head');
    const gone = spawnSync(process.execPath, ['-e', '']).pid as number; // exited: its pid runs nothing now
    writeFileSync(`${path}.tmp-bg`, 'half'); // the name before pids were in it
    writeFileSync(`${path}.tmp-bg-${gone}-1`, 'half');
    const live = [`${path}.tmp-bg-${process.pid}-999`, `${path}.tmp-bg-1-1`]; // this process's, and init's
    for (const f of live) writeFileSync(f, 'in use');
    writeFileSync(join(d.dir, 'x', 'other.tmp-bg-1-1'), 'not ours');
    new HeadWriter(path, { fsync: true, onError: () => {} });
    assert.deepEqual(temporaries(path).sort(), live.map((f) => basename(f)).sort());
    assert.ok(existsSync(join(d.dir, 'x', 'other.tmp-bg-1-1')), "only this head file's temporaries");
  });

  it('an onError that throws does not stop the writer', async () => {
    const { dir, path } = setup();
    const blocked = join(dir, 'not-a-dir');
    writeFileSync(blocked, 'x');
    let calls = 0;
    const bad = new HeadWriter(join(blocked, 'audit.head'), {
      fsync: true,
      onError: () => {
        calls++;
        throw new Error('handler bug');
      },
    });
    bad.later('x');
    bad.later('y');
    await bad.idle();
    assert.equal(calls, 2, 'each failed write reported once');
    bad.now('z');
    assert.equal(calls, 3);
    const good = new HeadWriter(path, { fsync: true, onError: () => {} });
    good.later('fine');
    await good.idle();
    assert.equal(read(path), 'fine\n');
  });
});

describe('HeadWriter under random interleavings (property)', () => {
  type Op = { k: 'later' | 'now' | 'cancel' | 'rotate' | 'turn' | 'settle' };
  const op = fc.constantFrom<Op['k']>('later', 'later', 'later', 'now', 'cancel', 'rotate', 'turn', 'turn', 'settle');

  it('the live head only moves forward, never outlives a rotation, and ends as the newest line not cancelled', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 30 }), async (ops) => {
        const { dir, path, w, errors } = setup();
        let n = 0;
        /** Lowest value the live head may hold from now on (a rotation moved everything older away). */
        let floor = 0;
        /** What the head must end as: the newest line given and not cancelled, or the newest written at once. */
        let expected: number | undefined;
        let lastNow: number | undefined;
        let seen = 0;
        const observe = () => {
          if (!existsSync(path)) return;
          const v = Number(read(path).trim());
          assert.ok(v >= floor, `head ${v} is older than a rotation at ${floor}`);
          assert.ok(v >= seen || seen < floor, `head went back from ${seen} to ${v}`);
          seen = v;
        };
        let segments = 0;
        for (const k of ops) {
          if (k === 'later') {
            w.later(String(++n));
            expected = n;
          } else if (k === 'now') {
            w.now(String(++n));
            expected = lastNow = n;
          } else if (k === 'cancel') {
            w.cancel();
            expected = undefined; // a line waiting or in flight may or may not have landed before
          } else if (k === 'rotate') {
            w.now(String(++n));
            renameSync(path, join(dir, `seg${++segments}.head`));
            floor = n + 1;
            expected = lastNow = undefined;
          } else if (k === 'turn') await new Promise((r) => setImmediate(r));
          else await w.idle();
          observe();
        }
        await w.idle();
        observe();
        if (expected !== undefined) assert.equal(read(path), `${expected}\n`);
        else if (existsSync(path)) {
          const v = Number(read(path).trim());
          assert.ok(v >= (lastNow ?? floor) && v <= n, `head ${v} after a cancel`);
        }
        assert.deepEqual(temporaries(path), [], 'no temporary file left');
        assert.deepEqual(errors, []);
      }),
      { numRuns: 40 },
    );
  });
});

describe('AuditLog head file after background syncs', () => {
  it('a log closed and opened again while its last background head write runs: no failure, the head is the newest', async () => {
    const d = tempDir();
    dirs.push(d);
    const path = join(d.dir, 'audit.jsonl');
    const alerts: string[] = [];
    const alerter = { alert: (a: { summary: string }) => alerts.push(a.summary) };
    let publicKey = '';
    for (let round = 0; round < 20; round++) {
      const log = new AuditLog({ path, checkpointEvery: 1, checkpointIntervalMs: 0, alerter });
      publicKey = log.publicKey;
      await log.append({ action: 'key.encrypt', outcome: 'success', resource: `r${round}` });
      log.close(); // its background head write may still run
      const again = new AuditLog({ path, checkpointEvery: 1, checkpointIntervalMs: 0, alerter });
      await again.append({ action: 'key.encrypt', outcome: 'success', resource: `s${round}` });
      await again.headWritten();
      assert.equal(again.stats.headFailures, 0, alerts.join('; '));
      again.close();
    }
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(temporaries(`${path}.head`), []);
    assert.equal(verifyAuditLog(path, { publicKey }).ok, true);
  });

  it('a head file that cannot be replaced is counted and alerted, and the records still succeed', async () => {
    const d = tempDir();
    dirs.push(d);
    const path = join(d.dir, 'audit.jsonl');
    const alerts: string[] = [];
    const log = new AuditLog({
      path,
      checkpointEvery: 2,
      checkpointIntervalMs: 0,
      alerter: { alert: (a) => alerts.push(a.summary) },
    });
    // A directory where the head file goes: the rename over it fails (EISDIR).
    rmSync(`${path}.head`);
    mkdirSync(`${path}.head`);
    await Promise.all(
      [1, 2, 3].map((i) => log.append({ action: 'key.encrypt', outcome: 'success', resource: `r${i}` })),
    );
    await log.headWritten();
    assert.equal(log.stats.headFailures, 1);
    assert.match(alerts.at(-1) ?? '', /cannot update the audit head file \(EISDIR\)/);
    assert.equal(log.stats.writeFailures, 0);
    rmSync(`${path}.head`, { recursive: true });
    log.close();
    assert.equal(verifyAuditLog(path, { publicKey: log.publicKey }).ok, true, 'the close checkpoint rewrote the head');
  });
  it('names the newest durable checkpoint once headWritten() resolves, and the log verifies', async () => {
    const d = tempDir();
    dirs.push(d);
    const path = join(d.dir, 'audit.jsonl');
    const log = new AuditLog({ path, checkpointEvery: 3, checkpointIntervalMs: 0 });
    for (let round = 0; round < 4; round++) {
      await Promise.all(
        [0, 1, 2, 3].map((i) => log.append({ action: 'key.encrypt', outcome: 'success', resource: `r${round}-${i}` })),
      );
    }
    await log.headWritten();
    const head = parseLine(Buffer.from(read(`${path}.head`).trim(), 'utf8')).parsed;
    const lines = read(path).trim().split('\n');
    const checkpoints = lines
      .map((l) => parseLine(Buffer.from(l, 'utf8')).parsed)
      .filter((l) => l.type === 'checkpoint');
    assert.equal(head.type, 'checkpoint');
    assert.equal(head.seq, checkpoints.at(-1)?.seq, 'the newest checkpoint in the file');
    assert.equal(head.type === 'checkpoint' && head.reason, 'periodic');
    assert.deepEqual(verifyAuditLog(path, { publicKey: log.publicKey }).ok, true);
    log.close();
    const closed = parseLine(Buffer.from(read(`${path}.head`).trim(), 'utf8')).parsed;
    assert.equal(closed.type === 'checkpoint' && closed.reason, 'close');
    assert.equal(verifyAuditLog(path, { publicKey: log.publicKey }).ok, true);
  });
});
