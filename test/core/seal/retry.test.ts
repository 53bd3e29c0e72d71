/** withRetry: full-jitter backoff, which errors it retries, abort, option checks. Deterministic (injected sleep/random). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { backoffDelay, withRetry } from '../../../core/src/seal/retry.ts';
import { type SealErrorKind, SealProviderError } from '../../../core/src/seal/seal-provider.ts';
import { recordingSleep } from './seal-assert.ts';

const fail = (kind: SealErrorKind) => new SealProviderError(kind, 'awskms', kind);

/** fn failing with `errors` in order, then resolving 'ok'. */
function script(errors: unknown[]) {
  const calls: number[] = [];
  return {
    calls,
    fn: async (attempt: number) => {
      calls.push(attempt);
      const e = errors.shift();
      if (e !== undefined) throw e;
      return 'ok';
    },
  };
}

describe('withRetry', () => {
  it('returns the first success without sleeping', async () => {
    const { sleep, delays } = recordingSleep();
    const s = script([]);
    assert.equal(await withRetry(s.fn, { attempts: 3, baseMs: 100, maxMs: 1000, sleep }), 'ok');
    assert.deepEqual(s.calls, [1]);
    assert.deepEqual(delays, []);
  });

  it('retries rate_limited and unavailable with full-jitter exponential delays capped at maxMs', async () => {
    const { sleep, delays } = recordingSleep();
    const s = script([
      fail('rate_limited'),
      fail('unavailable'),
      fail('unavailable'),
      fail('rate_limited'),
      fail('unavailable'),
    ]);
    const retries: [SealErrorKind, number, number][] = [];
    const out = await withRetry(s.fn, {
      attempts: 6,
      baseMs: 100,
      maxMs: 500,
      sleep,
      random: () => 0.999,
      onRetry: (e, attempt, ms) => retries.push([e.kind, attempt, ms]),
    });
    assert.equal(out, 'ok');
    assert.deepEqual(s.calls, [1, 2, 3, 4, 5, 6]);
    assert.deepEqual(delays, [99, 199, 399, 499, 499]);
    assert.deepEqual(
      retries.map(([k, a]) => [k, a]),
      [
        ['rate_limited', 1],
        ['unavailable', 2],
        ['unavailable', 3],
        ['rate_limited', 4],
        ['unavailable', 5],
      ],
    );
  });

  it('draws each delay uniformly below the ceiling', () => {
    assert.equal(
      backoffDelay(1, 100, 1000, () => 0),
      0,
    );
    assert.equal(
      backoffDelay(3, 100, 1000, () => 0.5),
      200,
    );
    assert.equal(
      backoffDelay(10, 100, 1000, () => 0.5),
      500,
    );
    for (let i = 0; i < 1000; i++) {
      const d = backoffDelay(4, 50, 10_000);
      assert.ok(d >= 0 && d < 400);
    }
  });

  it('rethrows the last error once attempts are used up', async () => {
    const { sleep, delays } = recordingSleep();
    const last = fail('unavailable');
    const s = script([fail('rate_limited'), fail('unavailable'), last]);
    await assert.rejects(withRetry(s.fn, { attempts: 3, baseMs: 10, maxMs: 10, sleep }), (e) => e === last);
    assert.deepEqual(s.calls, [1, 2, 3]);
    assert.equal(delays.length, 2);
  });

  it('never retries the non-retryable kinds', async () => {
    for (const kind of ['access_denied', 'key_disabled', 'key_not_found', 'invalid_ciphertext', 'config'] as const) {
      const { sleep, delays } = recordingSleep();
      const s = script([fail(kind)]);
      await assert.rejects(withRetry(s.fn, { attempts: 5, baseMs: 1, maxMs: 1, sleep }), { kind });
      assert.deepEqual(s.calls, [1]);
      assert.deepEqual(delays, []);
    }
  });

  it('rethrows an error that is not a SealProviderError at once, unchanged', async () => {
    const bug = new TypeError('boom');
    const s = script([bug]);
    await assert.rejects(
      withRetry(s.fn, { attempts: 5, baseMs: 1, maxMs: 1, sleep: async () => {} }),
      (e) => e === bug,
    );
    assert.deepEqual(s.calls, [1]);
  });

  it('stops on abort: before the first attempt, and during the wait with signal.reason', async () => {
    const pre = new AbortController();
    pre.abort(new Error('shutting down'));
    const s0 = script([]);
    await assert.rejects(withRetry(s0.fn, { attempts: 3, baseMs: 1, maxMs: 1, signal: pre.signal }), /shutting down/);
    assert.deepEqual(s0.calls, []);

    const ac = new AbortController();
    const s = script([fail('unavailable'), fail('unavailable')]);
    const p = withRetry(s.fn, {
      attempts: 5,
      baseMs: 60_000,
      maxMs: 60_000,
      random: () => 1 - 1e-9,
      signal: ac.signal,
    });
    setImmediate(() => ac.abort(new Error('deadline')));
    await assert.rejects(p, /deadline/);
    assert.deepEqual(s.calls, [1]);
  });

  it('validates options before calling fn, naming the option', async () => {
    const s = script([]);
    const cases: [Record<string, number>, RegExp][] = [
      [{ attempts: 0, baseMs: 1, maxMs: 1 }, /attempts/],
      [{ attempts: 1.5, baseMs: 1, maxMs: 1 }, /attempts/],
      [{ attempts: 2, baseMs: -1, maxMs: 1 }, /baseMs/],
      [{ attempts: 2, baseMs: 10, maxMs: 5 }, /maxMs/],
      [{ attempts: 2, baseMs: 1, maxMs: Number.POSITIVE_INFINITY }, /maxMs/],
    ];
    for (const [opts, re] of cases) {
      await assert.rejects(withRetry(s.fn, opts as never), (e: Error) => e instanceof RangeError && re.test(e.message));
    }
    assert.deepEqual(s.calls, []);
  });
});
