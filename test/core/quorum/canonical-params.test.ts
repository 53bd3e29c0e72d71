/** Canonical approval params, the quorum policy bounds and the executor registry: pure units, no store. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { approvalPolicy, DAY_MS, proposalTtl } from '../../../core/src/quorum/approval-policy.ts';
import { canonicalParams, MAX_PARAMS_BYTES, MAX_PARAMS_DEPTH } from '../../../core/src/quorum/canonical-params.ts';
import { ExecutorRegistry } from '../../../core/src/quorum/executor-registry.ts';
import { rejectsWith } from '../store/harness.ts';

const throwsCode = (fn: () => unknown, code: string) => rejectsWith(Promise.resolve().then(fn), code);

describe('canonicalParams', () => {
  it('sorts keys by code unit at every level, integer-like keys included, with no whitespace', () => {
    assert.equal(
      canonicalParams({ b: 1, 10: 'x', 2: 'y', a: [{ d: null, c: true }] }),
      '{"10":"x","2":"y","a":[{"c":true,"d":null}],"b":1}',
    );
    assert.equal(canonicalParams({ b: 1, a: 2 }), canonicalParams({ a: 2, b: 1 }));
    assert.equal(canonicalParams('é\u2028'), JSON.stringify('é\u2028'));
  });

  it('refuses what is not plain JSON, naming the path', async () => {
    for (const bad of [
      { a: undefined },
      { a: Number.NaN },
      { a: Number.POSITIVE_INFINITY },
      { a: 2 ** 53 },
      { a: () => 1 },
      { a: new Date(0) },
      { a: new Map() },
      { a: 1n },
      [Symbol('x')],
    ]) {
      await throwsCode(() => canonicalParams(bad), 'bad_request');
    }
    assert.throws(() => canonicalParams({ tenant: { x: Number.NaN } }), /params\.tenant\.x/);
  });

  it('bounds depth and size', async () => {
    let deep: unknown = 1;
    for (let i = 0; i < MAX_PARAMS_DEPTH; i++) deep = [deep];
    canonicalParams(deep);
    await throwsCode(() => canonicalParams([deep]), 'bad_request');
    canonicalParams({ s: 'x'.repeat(MAX_PARAMS_BYTES - 8) });
    await throwsCode(() => canonicalParams({ s: 'x'.repeat(MAX_PARAMS_BYTES - 7) }), 'bad_request');
    await throwsCode(() => canonicalParams({ s: 'é'.repeat(MAX_PARAMS_BYTES / 2) }), 'bad_request');
  });
});

describe('approvalPolicy', () => {
  it('defaults to M = 2, 7 days, at most 30 days', () => {
    assert.deepEqual(approvalPolicy(), { required: 2, defaultTtlMs: 7 * DAY_MS, maxTtlMs: 30 * DAY_MS });
    assert.equal(proposalTtl(approvalPolicy(), undefined), 7 * DAY_MS);
    assert.equal(proposalTtl(approvalPolicy({ maxTtlMs: 3 * DAY_MS }), undefined), 3 * DAY_MS);
  });

  it('refuses M below 2 and expiries beyond 30 days', async () => {
    for (const bad of [{ required: 1 }, { required: 2.5 }, { maxTtlMs: 31 * DAY_MS }, { defaultTtlMs: 31 * DAY_MS }]) {
      await throwsCode(() => approvalPolicy(bad), 'invalid_config');
    }
    await throwsCode(() => approvalPolicy({ maxTtlMs: DAY_MS, defaultTtlMs: 2 * DAY_MS }), 'invalid_config');
    await throwsCode(() => proposalTtl(approvalPolicy(), 30 * DAY_MS + 1), 'bad_request');
    await throwsCode(() => proposalTtl(approvalPolicy({ maxTtlMs: DAY_MS }), 2 * DAY_MS), 'bad_request');
  });
});

describe('ExecutorRegistry', () => {
  const executor = { validate: (p: unknown) => p as null, execute: async () => null };

  it('knows registered operations only', async () => {
    const r = new ExecutorRegistry().register('tenant.revoke', { ...executor, summary: 'revoke' });
    assert.equal(r.get('tenant.revoke').summary, 'revoke');
    await throwsCode(() => r.get('tenant.delete'), 'bad_request');
    assert.deepEqual(r.list(), [{ operation: 'tenant.revoke', summary: 'revoke', required: null }]);
  });

  it('refuses bad names, duplicates and required below 2', async () => {
    const r = new ExecutorRegistry().register('l1.unlink', executor);
    await throwsCode(() => r.register('l1.unlink', executor), 'internal_error');
    for (const name of ['revoke', 'Tenant.revoke', 'tenant..revoke', 'tenant.revoke ', `a.${'b'.repeat(64)}`]) {
      await throwsCode(() => r.register(name, executor), 'internal_error');
    }
    await throwsCode(() => r.register('shares.rekey', { ...executor, required: 1 }), 'internal_error');
  });
});
