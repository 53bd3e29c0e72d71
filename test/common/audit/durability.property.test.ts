/**
 * The writer's bookkeeping under random interleavings (fast-check): group
 * commits over several event-loop turns, synchronous records, checkpoints,
 * rotations every few kilobytes, a write that fails (ENOSPC: /dev/full put
 * under the write descriptor) and a background fdatasync that fails (EINVAL:
 * /dev/null under the sync descriptor; or EBADF when the number is not
 * reused), then close and a restart. Whatever
 * the order, every record reported durable is in the log series exactly once
 * and in call order, no record reported failed is in it, and the series
 * verifies. Real files; the failures are real system calls failing.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { AuditLog } from '../../../common/src/audit/audit-log.ts';
import { exportAuditLog } from '../../../common/src/audit/jsonl-export.ts';
import { listSegments } from '../../../common/src/audit/log-segments.ts';
import { verifyAuditSeries } from '../../../common/src/audit/series-verifier.ts';
import { replaceDescriptor, tempDir } from './log-fixture.ts';

type Op =
  | { kind: 'append'; n: number }
  | { kind: 'turn' }
  | { kind: 'record' }
  | { kind: 'checkpoint' }
  | { kind: 'failWrite' }
  | { kind: 'failSync' }
  | { kind: 'restart' };

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 1, max: 12 }).map((n) => ({ kind: 'append' as const, n })) },
  { weight: 4, arbitrary: fc.constant({ kind: 'turn' as const }) },
  { weight: 2, arbitrary: fc.constant({ kind: 'record' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'checkpoint' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'failWrite' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'failSync' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'restart' as const }) },
);

const turn = () => new Promise((r) => setImmediate(r));

describe('AuditLog durability bookkeeping (property)', () => {
  it('records reported durable are in the series once and in order, records reported failed are not, and it verifies', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 5, maxLength: 40 }), async (ops) => {
        const d = tempDir();
        const path = join(d.dir, 'audit.log');
        const open = () => new AuditLog({ path, rotateBytes: 4096, checkpointEvery: 5, checkpointIntervalMs: 0 });
        let log = open();
        const publicKey = log.publicKey;
        let next = 0;
        const durable: number[] = [];
        const failed = new Set<number>();
        const pending: Promise<void>[] = [];
        const event = (i: number) => ({ action: 'key.encrypt', outcome: 'success' as const, resource: `r${i}` });
        const track = (i: number, p: Promise<void>) =>
          pending.push(
            p.then(
              () => void durable.push(i),
              () => void failed.add(i),
            ),
          );
        try {
          for (const o of ops) {
            if (o.kind === 'append') for (let k = 0; k < o.n; k++) track(next, log.append(event(next++)));
            else if (o.kind === 'turn') await turn();
            else if (o.kind === 'record') {
              const i = next++;
              try {
                log.record(event(i));
                durable.push(i);
              } catch {
                failed.add(i);
              }
            } else if (o.kind === 'checkpoint') {
              try {
                log.checkpoint();
              } catch {
                // counted by the log; the next write recovers
              }
            } else if (o.kind === 'failWrite' || o.kind === 'failSync') {
              // A device under the descriptor; when the number is not reused, the descriptor is simply closed
              // under the writer (EBADF on its next use), and closing it twice is the test's EBADF, not the writer's.
              const fd = o.kind === 'failWrite' ? log.fd : log.syncFd;
              try {
                if (fd !== null) replaceDescriptor(fd, o.kind === 'failWrite' ? '/dev/full' : '/dev/null', 'w');
              } catch {
                // already closed under the writer by an earlier step
              }
            } else {
              await Promise.allSettled(pending);
              try {
                log.close();
              } catch {
                // a close that cannot write leaves the log unsigned at its end; the restart signs it
              }
              log = open();
            }
          }
          await Promise.allSettled(pending);
          // A last record through a healthy file, then a clean close: the series must verify.
          await log.append(event(next)).then(
            () => durable.push(next),
            () => failed.add(next),
          );
          next++;
          if (failed.has(next - 1)) {
            await log.append(event(next)).then(() => durable.push(next));
            next++;
          }
          log.close();
          const r = verifyAuditSeries(path, { publicKey });
          assert.equal(r.ok, true, JSON.stringify(r.firstBad));
          const files = [...listSegments(path).map((s) => s.path), path];
          const stored = files.flatMap((f) =>
            [...exportAuditLog(f)].map((l) => Number((JSON.parse(l) as { resource: string }).resource.slice(1))),
          );
          for (const i of stored) assert.ok(!failed.has(i), `record ${i} was reported failed but is in the log`);
          assert.deepEqual(
            stored,
            [...durable].sort((a, b) => a - b),
            'every record reported durable, once, in call order',
          );
        } finally {
          try {
            log.close();
          } catch {
            // already closed
          }
          d.cleanup();
        }
      }),
      { numRuns: 60 },
    );
  });
});
