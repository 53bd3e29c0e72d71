/**
 * The ApprovalService scenarios, run on each real store (SQLite, PostgreSQL)
 * by approval-service.sqlite.test.ts and approval-service.postgres.test.ts.
 * `stores` are handles on one database: on PostgreSQL two Store instances
 * (two connection pools, as two Core replicas would have), so concurrent
 * approvals really race in the database.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { KcmError } from '../../../common/src/errors.ts';
import { MemoryAuditSink } from '../../../core/src/audit/audit-sink.ts';
import { DAY_MS } from '../../../core/src/quorum/approval-policy.ts';
import { ApprovalService, type ApprovalServiceOptions } from '../../../core/src/quorum/approval-service.ts';
import type { ApprovalStore } from '../../../core/src/quorum/approval-store.ts';
import type { ApprovalView } from '../../../core/src/quorum/approval-view.ts';
import type { JsonValue } from '../../../core/src/quorum/canonical-params.ts';
import { type ExecutionContext, ExecutorRegistry } from '../../../core/src/quorum/executor-registry.ts';
import { gate, rejectsWith } from '../store/harness.ts';

export interface QuorumEnv {
  /** Handles on one fresh, migrated database, MACs on. */
  stores: ApprovalStore[];
  cleanup(): Promise<void>;
}

const T0 = Date.UTC(2026, 5, 1);

/** A tenant.revoke stand-in that counts its runs; `hold` keeps a run open until released. */
function revokeExecutor(o: { fail?: Error; hold?: Promise<void> } = {}) {
  const calls: { params: JsonValue; ctx: ExecutionContext }[] = [];
  return {
    calls,
    executor: {
      summary: 'revoke a tenant (kill switch)',
      validate(p: unknown): { tenant: string } {
        const t = (p as { tenant?: unknown } | null)?.tenant;
        if (typeof t !== 'string' || !/^[A-Za-z0-9._~-]{1,40}$/.test(t)) throw new KcmError('invalid_tenant_id');
        return { tenant: t };
      },
      async execute(params: { tenant: string }, ctx: ExecutionContext): Promise<JsonValue> {
        calls.push({ params, ctx });
        if (o.hold) await o.hold;
        if (o.fail) throw o.fail;
        return { tenant: params.tenant, state: 'REVOKED' };
      },
    },
  };
}

interface Rig {
  services: ApprovalService[];
  svc: ApprovalService;
  audit: MemoryAuditSink;
  alerts: string[];
  clock: { now: number };
  calls: { params: JsonValue; ctx: ExecutionContext }[];
}

function rig(env: QuorumEnv, o: { required?: number; exec?: Parameters<typeof revokeExecutor>[0] } = {}): Rig {
  const audit = new MemoryAuditSink();
  const alerts: string[] = [];
  const clock = { now: T0 };
  const { executor, calls } = revokeExecutor(o.exec);
  const registry = new ExecutorRegistry().register('tenant.revoke', executor);
  const base: Omit<ApprovalServiceOptions, 'store'> = {
    registry,
    audit,
    alerts: { alert: (a) => alerts.push(`${a.severity} ${a.summary.split(':')[0]}`) },
    now: () => clock.now,
    policy: o.required === undefined ? {} : { required: o.required },
  };
  const services = env.stores.map((store) => new ApprovalService({ ...base, store }));
  return { services, svc: services[0] as ApprovalService, audit, alerts, clock, calls };
}

/** Runs `n` approvals in parallel, spread over the store handles; returns the settled results. */
async function race(r: Rig, id: string, actors: string[]): Promise<PromiseSettledResult<ApprovalView>[]> {
  return Promise.allSettled(
    actors.map((a, i) => (r.services[i % r.services.length] as ApprovalService).approve(id, a)),
  );
}

function codes(results: PromiseSettledResult<unknown>[]): string[] {
  return results
    .filter((x): x is PromiseRejectedResult => x.status === 'rejected')
    .map((x) => (x.reason instanceof KcmError ? x.reason.code : String(x.reason)))
    .sort();
}

function fulfilled(results: PromiseSettledResult<ApprovalView>[]): ApprovalView[] {
  return results.filter((x) => x.status === 'fulfilled').map((x) => x.value);
}

export function runApprovalSuite(name: string, makeEnv: () => Promise<QuorumEnv>): void {
  const test = (title: string, fn: (env: QuorumEnv) => Promise<void>) =>
    it(`${name}: ${title}`, async () => {
      const env = await makeEnv();
      try {
        await fn(env);
      } finally {
        await env.cleanup();
      }
    });

  test('A proposes tenant revoke; A cannot approve; B approves; it executes once', async (env) => {
    const r = rig(env);
    const p = await r.svc.propose('tenant.revoke', { tenant: 'acme' }, 'op-a', { correlationId: 'c-1' });
    assert.equal(p.state, 'PENDING');
    assert.equal(p.required, 2);
    assert.equal(p.missing, 1);
    await rejectsWith(r.svc.approve(p.id, 'op-a'), 'approval_self');
    assert.equal((await r.svc.get(p.id)).state, 'PENDING');
    assert.equal(r.calls.length, 0);

    const done = await r.svc.approve(p.id, 'op-b', { correlationId: 'c-2' });
    assert.equal(done.state, 'EXECUTED');
    assert.equal(done.outcome, 'succeeded');
    assert.deepEqual(done.result, { state: 'REVOKED', tenant: 'acme' });
    assert.deepEqual(
      done.approvals.map((a) => a.actor),
      ['op-b'],
    );
    assert.equal(r.calls.length, 1);
    assert.deepEqual(r.calls[0]?.params, { tenant: 'acme' });
    assert.deepEqual(r.calls[0]?.ctx, {
      approvalId: p.id,
      operation: 'tenant.revoke',
      proposer: 'op-a',
      approvers: ['op-b'],
      correlationId: 'c-2',
    });
    await rejectsWith(r.svc.approve(p.id, 'op-c'), 'approval_closed');
    assert.equal(r.calls.length, 1);
    assert.deepEqual(await r.svc.get(p.id), done);

    const trail = r.audit.events.map((e) => `${e.action} ${e.outcome} ${e.actor} ${e.reason ?? ''}`.trim());
    assert.deepEqual(trail, [
      'approval.propose success op-a tenant.revoke, 2 people',
      'approval.approve failure op-a approval_self',
      'approval.approve success op-b quorum_met',
      'approval.execute success system',
      'approval.approve failure op-c approval_closed',
    ]);
    assert.ok(r.audit.events.every((e) => e.resource === `approval ${p.id}`));
    assert.equal(r.audit.events[0]?.correlationId, 'c-1');
    assert.equal(r.audit.events[3]?.correlationId, 'c-2');
    assert.deepEqual(r.alerts, [
      'warning approval.propose success',
      'warning approval.approve failure',
      'info approval.approve success',
      'critical approval.execute success',
      'warning approval.approve failure',
    ]);
  });

  for (const required of [2, 3]) {
    test(`10 parallel approvals by distinct approvers at M=${required} execute exactly once`, async (env) => {
      const r = rig(env, { required });
      const p = await r.svc.propose('tenant.revoke', { tenant: 'acme' }, 'op-a');
      const actors = Array.from({ length: 10 }, (_, i) => `op-${i}`);
      const results = await race(r, p.id, actors);
      assert.equal(r.calls.length, 1, 'executor ran once');
      const ok = fulfilled(results);
      assert.equal(ok.length, required - 1, 'only the approvals up to the quorum are accepted');
      assert.equal(ok.filter((v) => v.state === 'EXECUTED').length, 1);
      assert.deepEqual(codes(results), Array(10 - (required - 1)).fill('approval_closed'));
      const final = await r.svc.get(p.id);
      assert.equal(final.state, 'EXECUTED');
      assert.equal(final.outcome, 'succeeded');
      assert.equal(final.approvals.length, required - 1);
      assert.deepEqual(
        r.calls[0]?.ctx.approvers,
        final.approvals.map((a) => a.actor),
      );
      assert.equal(r.audit.events.filter((e) => e.action === 'approval.execute').length, 1);
    });
  }

  test('the same approver twice in parallel counts once; the quorum then executes once', async (env) => {
    const r = rig(env, { required: 3 });
    const p = await r.svc.propose('tenant.revoke', { tenant: 'acme' }, 'op-a');
    const results = await race(r, p.id, ['op-b', 'op-b']);
    assert.deepEqual(codes(results), ['approval_duplicate']);
    assert.equal((await r.svc.get(p.id)).missing, 1);
    await rejectsWith(r.svc.approve(p.id, 'op-b'), 'approval_duplicate');
    assert.equal(r.calls.length, 0);
    const again = await race(r, p.id, ['op-c', 'op-c', 'op-b', 'op-d']);
    assert.equal(r.calls.length, 1);
    assert.equal(fulfilled(again).length, 1);
    const approvers = r.calls[0]?.ctx.approvers ?? [];
    assert.equal(approvers.length, 2);
    assert.equal(approvers[0], 'op-b');
  });

  test('while the executor runs the request reads executing and refuses approvals', async (env) => {
    const hold = gate();
    const r = rig(env, { required: 2, exec: { hold: hold.promise } });
    const p = await r.svc.propose('tenant.revoke', { tenant: 'acme' }, 'op-a');
    const running = r.svc.approve(p.id, 'op-b');
    while (r.calls.length === 0) await new Promise((res) => setTimeout(res, 5));
    const mid = await (r.services.at(-1) as ApprovalService).get(p.id);
    assert.equal(mid.state, 'EXECUTED');
    assert.equal(mid.outcome, 'executing');
    assert.equal(mid.result, null);
    await rejectsWith((r.services.at(-1) as ApprovalService).approve(p.id, 'op-c'), 'approval_closed');
    hold.open();
    assert.equal((await running).outcome, 'succeeded');
    assert.equal(r.calls.length, 1);
  });

  test('a request past its expiry refuses approval (approval_closed) and is marked EXPIRED', async (env) => {
    const r = rig(env);
    const p = await r.svc.propose('tenant.revoke', { tenant: 'acme' }, 'op-a');
    assert.equal(p.expiresAt - p.createdAt, 7 * DAY_MS, 'default expiry: 7 days');
    r.clock.now = p.expiresAt - 1;
    assert.equal((await r.svc.get(p.id)).state, 'PENDING');
    r.clock.now = p.expiresAt;
    assert.equal((await r.svc.get(p.id)).state, 'EXPIRED', 'read as expired before any write');
    await rejectsWith(r.svc.approve(p.id, 'op-b'), 'approval_closed');
    const stored = await r.svc.get(p.id);
    assert.equal(stored.state, 'EXPIRED');
    assert.equal(stored.decidedAt, p.expiresAt);
    assert.equal(r.calls.length, 0);
    await rejectsWith(r.svc.cancel(p.id, 'op-a'), 'approval_closed');
    assert.ok(r.audit.events.some((e) => e.action === 'approval.expire' && e.outcome === 'success'));
  });

  test('the sweep expires only PENDING requests past their expiry', async (env) => {
    const r = rig(env);
    const short = await r.svc.propose('tenant.revoke', { tenant: 'a' }, 'op-a', { ttlMs: 60 * 60 * 1000 });
    const long = await r.svc.propose('tenant.revoke', { tenant: 'b' }, 'op-a', { ttlMs: 30 * DAY_MS });
    const done = await r.svc.propose('tenant.revoke', { tenant: 'c' }, 'op-a', { ttlMs: 60 * 60 * 1000 });
    await r.svc.approve(done.id, 'op-b');
    r.clock.now += 2 * 60 * 60 * 1000;
    assert.deepEqual(await r.svc.sweep(), [short.id]);
    assert.deepEqual(await r.svc.sweep(), []);
    assert.equal((await r.svc.get(short.id)).state, 'EXPIRED');
    assert.equal((await r.svc.get(long.id)).state, 'PENDING');
    assert.equal((await r.svc.get(done.id)).state, 'EXECUTED');
    assert.deepEqual(
      (await r.svc.list({ state: 'PENDING' })).map((v) => v.id),
      [long.id],
    );
  });

  test('reject closes the request (a veto); the proposer cannot reject', async (env) => {
    const r = rig(env, { required: 3 });
    const p = await r.svc.propose('tenant.revoke', { tenant: 'acme' }, 'op-a');
    await r.svc.approve(p.id, 'op-b');
    await rejectsWith(r.svc.reject(p.id, 'op-a', 'changed my mind'), 'forbidden');
    await rejectsWith(r.svc.reject(p.id, 'op-c', ''), 'bad_request');
    const v = await r.svc.reject(p.id, 'op-c', 'wrong tenant');
    assert.equal(v.state, 'REJECTED');
    assert.equal(v.decidedBy, 'op-c');
    assert.deepEqual(v.result, { reason: 'wrong tenant' });
    await rejectsWith(r.svc.approve(p.id, 'op-d'), 'approval_closed');
    await rejectsWith(r.svc.reject(p.id, 'op-d', 'again'), 'approval_closed');
    assert.equal(r.calls.length, 0);
    assert.ok(r.audit.events.some((e) => e.action === 'approval.reject' && e.reason === 'wrong tenant'));
  });

  test('cancel: the proposer or a privileged caller; anyone else is forbidden', async (env) => {
    const r = rig(env);
    const p = await r.svc.propose('tenant.revoke', { tenant: 'acme' }, 'op-a');
    await rejectsWith(r.svc.cancel(p.id, 'op-b'), 'forbidden');
    const v = await r.svc.cancel(p.id, 'op-a');
    assert.equal(v.state, 'CANCELLED');
    assert.equal(v.result, null);
    await rejectsWith(r.svc.approve(p.id, 'op-b'), 'approval_closed');
    const q = await r.svc.propose('tenant.revoke', { tenant: 'acme' }, 'op-a');
    const w = await r.svc.cancel(q.id, 'admin', { privileged: true, reason: 'duplicate request' });
    assert.equal(w.decidedBy, 'admin');
    assert.deepEqual(w.result, { reason: 'duplicate request' });
    await rejectsWith(r.svc.cancel('no-such-id', 'op-a'), 'approval_not_found');
    assert.equal(r.calls.length, 0);
  });

  test('an executor failure records FAILED with its code and is not retried', async (env) => {
    const r = rig(env, { exec: { fail: new KcmError('tenant_not_found', 'acme') } });
    const p = await r.svc.propose('tenant.revoke', { tenant: 'acme' }, 'op-a');
    const v = await r.svc.approve(p.id, 'op-b');
    assert.equal(v.state, 'FAILED');
    assert.equal(v.outcome, 'failed');
    assert.deepEqual(v.result, { error: { code: 'tenant_not_found', message: 'no such tenant: acme' } });
    await rejectsWith(r.svc.approve(p.id, 'op-c'), 'approval_closed');
    assert.equal(r.calls.length, 1);
    const exec = r.audit.events.filter((e) => e.action === 'approval.execute');
    assert.deepEqual(
      exec.map((e) => [e.outcome, e.reason]),
      [['failure', 'tenant_not_found']],
    );
  });

  test('an unexpected executor error is recorded as internal_error without its detail', async (env) => {
    const r = rig(env);
    const logs: string[] = [];
    const svc = new ApprovalService({
      store: env.stores[0] as ApprovalStore,
      registry: new ExecutorRegistry().register(
        'tenant.revoke',
        revokeExecutor({ fail: new Error('driver detail') }).executor,
      ),
      audit: r.audit,
      log: (m) => logs.push(m),
    });
    const p = await svc.propose('tenant.revoke', { tenant: 'acme' }, 'op-a');
    const v = await svc.approve(p.id, 'op-b');
    assert.deepEqual(v.result, { error: { code: 'internal_error', message: 'internal error' } });
    assert.ok(!JSON.stringify(v).includes('driver detail'));
    assert.ok(
      logs.some((l) => l.includes('driver detail')),
      'the detail goes to the server log',
    );
  });

  test('if the quorum approval cannot be audited, nothing executes and the request is FAILED', async (env) => {
    const r = rig(env);
    const p = await r.svc.propose('tenant.revoke', { tenant: 'acme' }, 'op-a');
    let down = false;
    const audit = {
      record: (e: { action: string }) => {
        if (down && e.action === 'approval.approve') throw new KcmError('audit_unavailable');
        r.audit.record(e as never);
      },
    };
    const counted = revokeExecutor();
    const svc = new ApprovalService({
      store: env.stores[0] as ApprovalStore,
      registry: new ExecutorRegistry().register('tenant.revoke', counted.executor),
      audit,
      now: () => r.clock.now,
    });
    down = true;
    await rejectsWith(svc.approve(p.id, 'op-b'), 'audit_unavailable');
    assert.equal(counted.calls.length, 0, 'the executor did not run');
    const v = await svc.get(p.id);
    assert.equal(v.state, 'FAILED');
    assert.deepEqual(v.result, {
      error: { code: 'audit_unavailable', message: 'the audit log cannot be written: operation refused' },
    });
  });

  test('propose refuses unknown operations, invalid params and out-of-bounds expiry', async (env) => {
    const r = rig(env);
    await rejectsWith(r.svc.propose('tenant.destroy_everything', { tenant: 'acme' }, 'op-a'), 'bad_request');
    await rejectsWith(r.svc.propose('tenant.revoke', { tenant: 'no/slash' }, 'op-a'), 'invalid_tenant_id');
    await rejectsWith(r.svc.propose('tenant.revoke', {}, 'op-a'), 'invalid_tenant_id');
    await rejectsWith(r.svc.propose('tenant.revoke', { tenant: 'acme' }, ''), 'bad_request');
    await rejectsWith(r.svc.propose('tenant.revoke', { tenant: 'acme' }, 'op\u0000a'), 'bad_request');
    await rejectsWith(
      r.svc.propose('tenant.revoke', { tenant: 'acme' }, 'op-a', { ttlMs: 30 * DAY_MS + 1 }),
      'bad_request',
    );
    await rejectsWith(r.svc.propose('tenant.revoke', { tenant: 'acme' }, 'op-a', { ttlMs: 1000 }), 'bad_request');
    const max = await r.svc.propose('tenant.revoke', { tenant: 'acme' }, 'op-a', { ttlMs: 30 * DAY_MS });
    assert.equal(max.expiresAt - max.createdAt, 30 * DAY_MS);
    assert.equal((await r.svc.list()).length, 1, 'refused proposals store nothing');
    const refused = r.audit.events.filter((e) => e.outcome === 'failure').map((e) => e.reason);
    assert.deepEqual(refused, [
      'bad_request',
      'invalid_tenant_id',
      'invalid_tenant_id',
      'bad_request',
      'bad_request',
      'bad_request',
      'bad_request',
    ]);
    assert.ok(
      r.audit.events.every((e) => e.actor !== 'op\u0000a'),
      'a bad actor is not written to the log',
    );
  });

  test('params are stored canonically and an operation may require more people', async (env) => {
    const audit = new MemoryAuditSink();
    const registry = new ExecutorRegistry().register('authz.policy_change', {
      required: 3,
      validate: (p: unknown) => p as JsonValue,
      execute: async () => ({ applied: true }),
    });
    const svc = new ApprovalService({ store: env.stores[0] as ApprovalStore, registry, audit });
    const p = await svc.propose('authz.policy_change', { z: 1, a: { y: [2, 1], b: 'x' } }, 'op-a');
    assert.equal(p.required, 3);
    assert.equal(JSON.stringify(p.params), '{"a":{"b":"x","y":[2,1]},"z":1}');
    assert.equal((await svc.approve(p.id, 'op-b')).state, 'PENDING');
    assert.equal((await svc.approve(p.id, 'op-c')).outcome, 'succeeded');
  });
}
