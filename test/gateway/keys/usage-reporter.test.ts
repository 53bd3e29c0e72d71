/**
 * The edge's batched encryption counts (gateway/src/keys/usage-reporter.ts):
 * sums per version, counts kept across a failed report, dropped on a
 * definite refusal, and no timer retries once stopped (gateway shutdown).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KcmError } from '../../../common/src/errors.ts';
import { type UsageItem, UsageReporter } from '../../../gateway/src/keys/usage-reporter.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('UsageReporter', () => {
  it('sends one sum per version after flushMs', async () => {
    const sent: UsageItem[] = [];
    const u = new UsageReporter(
      async (i) => void sent.push({ ...i }),
      20,
      () => {},
    );
    u.add('t1', 'orders', 1, 2);
    u.add('t1', 'orders', 1, 3);
    u.add('t1', 'orders', 2, 1);
    u.add('t1', 'orders', 2, 0); // ignored
    await sleep(60);
    assert.deepEqual(
      sent.map((i) => [i.version, i.count]),
      [
        [1, 5],
        [2, 1],
      ],
    );
    assert.equal(u.pendingCount, 0);
    u.stop();
  });

  it('keeps the counts of a failed report for the next flush; drops what the Core refused for good', async () => {
    let fail = true;
    const sent: UsageItem[] = [];
    const logs: string[] = [];
    const u = new UsageReporter(
      async (i) => {
        if (i.tenant === 'gone') throw new KcmError('tenant_revoked');
        if (fail) throw new KcmError('core_unavailable', 'down');
        sent.push({ ...i });
      },
      1000,
      (m) => logs.push(m),
    );
    u.add('gone', 'orders', 1, 4);
    u.add('t1', 'orders', 1, 7);
    await u.flush();
    assert.equal(u.pendingCount, 7, 'the revoked tenant dropped, the rest kept');
    fail = false;
    await u.flush();
    assert.deepEqual(
      sent.map((i) => [i.tenant, i.count]),
      [['t1', 7]],
    );
    assert.ok(logs.some((l) => l.includes('refused')));
    u.stop();
  });

  it('once stopped, a failed last flush is not retried on a timer', async () => {
    let sends = 0;
    const u = new UsageReporter(
      async () => {
        sends++;
        throw new KcmError('core_unavailable', 'down');
      },
      20,
      () => {},
    );
    u.add('t1', 'orders', 1, 5);
    u.stop();
    await u.flush();
    assert.equal(sends, 1);
    await sleep(120);
    assert.equal(sends, 1, 'no retries after stop');
    assert.equal(u.pendingCount, 5, 'the counts are still there for an explicit flush');
  });
});
