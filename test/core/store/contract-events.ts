/**
 * Store contract, schema v3 event family: key events (store-assigned seq,
 * MAC over it), edges, approvals. Registered by runStoreContract (contract.ts).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ApprovalRecord, EdgeRecord, KeyEventRecord } from '../../../core/src/store/records.ts';
import type { StoreTx } from '../../../core/src/store/store.ts';
import type { ContractEnv } from './contract-tenants.ts';
import { approvalRecord, bytes, edgeRecord, keyEvent } from './fixtures.ts';
import { gate, rejectsWith } from './harness.ts';

const MAX_TIME = Number.MAX_SAFE_INTEGER;
const U32 = 2 ** 32 - 1;

/** A stand-in for the record MAC: depends on every field, the seq included. */
const fakeSign = (r: Omit<KeyEventRecord, 'mac'>): Buffer =>
  Buffer.from(JSON.stringify([r.seq, r.type, r.tenant, r.service, r.version, r.createdAt]));

export function eventContract(env: ContractEnv): void {
  const put = (f: (tx: StoreTx) => Promise<void>): Promise<void> => env.store().transaction(f);
  const append = (tenant: string, over: Parameters<typeof keyEvent>[1] = {}): Promise<KeyEventRecord> =>
    env.store().transaction((tx) => tx.appendEvent(keyEvent(tenant, over), fakeSign));

  describe('key events', () => {
    it('an empty log: latest seq 0, nothing after 0', async () => {
      assert.equal(await env.store().latestEventSeq(), 0);
      assert.deepEqual(await env.store().listEventsAfter(0, 10), []);
    });

    it('appendEvent assigns 1, 2, 3 …, signs the record with its seq, and returns what it stored', async () => {
      const signed: Omit<KeyEventRecord, 'mac'>[] = [];
      const sign = (r: Omit<KeyEventRecord, 'mac'>): Buffer => {
        signed.push(r);
        return fakeSign(r);
      };
      const tenantEvent = keyEvent('tenant-ü-🔑', {
        type: 'tenant.revoked',
        service: null,
        version: null,
        createdAt: MAX_TIME,
      });
      let got: KeyEventRecord[] = [];
      await put(async (tx) => {
        const first = await tx.appendEvent(keyEvent('t1'), sign);
        const second = await tx.appendEvent(tenantEvent, sign);
        assert.equal(await tx.latestEventSeq(), 2, 'seen inside the transaction');
        got = [first, second];
      });
      const third = await env
        .store()
        .transaction((tx) =>
          tx.appendEvent({ ...keyEvent('t2', { type: 'l3.min_decrypt', version: U32, createdAt: 0 }) }, sign),
        );
      got.push(third);
      assert.deepEqual(
        got.map((e) => e.seq),
        [1, 2, 3],
      );
      assert.deepEqual(
        signed.map((r) => r.seq),
        [1, 2, 3],
      );
      assert.deepEqual(got[1], { ...tenantEvent, seq: 2, mac: fakeSign({ ...tenantEvent, seq: 2 }) });
      for (const e of got) assert.deepEqual(e.mac, fakeSign(e), `event ${e.seq} MAC covers its seq`);
      assert.deepEqual(await env.store().listEventsAfter(0, 10), got);
      assert.equal(await env.store().latestEventSeq(), 3);
    });

    it('ignores a seq or mac passed in the record', async () => {
      const sneaky = { ...keyEvent('t1'), seq: 41, mac: bytes(4) } as unknown as Omit<KeyEventRecord, 'seq' | 'mac'>;
      const e = await env.store().transaction((tx) => tx.appendEvent(sneaky, fakeSign));
      assert.equal(e.seq, 1);
      assert.deepEqual(await env.store().listEventsAfter(0, 5), [{ ...keyEvent('t1'), seq: 1, mac: fakeSign(e) }]);
    });

    it('listEventsAfter: seq > after, ascending, at most limit', async () => {
      for (let i = 0; i < 7; i++) await append(`t${i}`);
      const seqs = async (after: number, limit: number): Promise<number[]> =>
        (await env.store().listEventsAfter(after, limit)).map((e) => e.seq);
      assert.deepEqual(await seqs(0, 100), [1, 2, 3, 4, 5, 6, 7]);
      assert.deepEqual(await seqs(3, 2), [4, 5]);
      assert.deepEqual(await seqs(6, 100), [7]);
      assert.deepEqual(await seqs(7, 100), []);
      assert.deepEqual(await seqs(0, 0), []);
      assert.equal((await env.store().listEventsAfter(4, 1))[0]?.tenant, 't4');
      await rejectsWith(env.store().listEventsAfter(0, -1), 'internal_error');
    });

    it('a rolled-back append leaves no gap: the next one takes the same seq', async () => {
      await append('t1');
      const boom = new Error('boom');
      await assert.rejects(
        env.store().transaction(async (tx) => {
          assert.equal((await tx.appendEvent(keyEvent('lost'), fakeSign)).seq, 2);
          throw boom;
        }),
        (e) => e === boom,
      );
      assert.equal(await env.store().latestEventSeq(), 1);
      assert.equal((await append('t2')).seq, 2);
      assert.deepEqual(
        (await env.store().listEventsAfter(0, 10)).map((e) => e.tenant),
        ['t1', 't2'],
      );
    });

    it('refuses a bad event before signing it; a sign result that is not a Buffer (internal_error)', async () => {
      let calls = 0;
      const counting = (r: Omit<KeyEventRecord, 'mac'>): Buffer => {
        calls++;
        return fakeSign(r);
      };
      for (const over of [
        { type: 'l3.exploded' as KeyEventRecord['type'] },
        { tenant: 'nul\0' },
        { version: 1.5 },
        { createdAt: Number.NaN },
      ]) {
        await rejectsWith(
          env.store().transaction((tx) => tx.appendEvent(keyEvent('t1', over), counting)),
          'internal_error',
        );
      }
      assert.equal(calls, 0);
      await rejectsWith(
        env.store().transaction((tx) => tx.appendEvent(keyEvent('t1'), () => 'mac' as unknown as Buffer)),
        'internal_error',
      );
      assert.equal(await env.store().latestEventSeq(), 0);
    });

    it('a transaction that appends while another holds an uncommitted append gets the next seq after it', async () => {
      const s = env.store();
      const appended = gate();
      const go = gate();
      const t1 = s.transaction(async (tx) => {
        const e = await tx.appendEvent(keyEvent('first'), fakeSign);
        appended.open();
        await go.promise;
        return e.seq;
      });
      await appended.promise;
      const t2 = s.transaction(async (tx) => (await tx.appendEvent(keyEvent('second'), fakeSign)).seq);
      await new Promise((r) => setTimeout(r, 50)); // let t2 reach its append
      assert.equal(await s.latestEventSeq(), 0, 'nothing committed yet');
      go.open();
      assert.deepEqual(await Promise.all([t1, t2]), [1, 2]);
      const log = await s.listEventsAfter(0, 10);
      assert.deepEqual(
        log.map((e) => [e.seq, e.tenant]),
        [
          [1, 'first'],
          [2, 'second'],
        ],
      );
      for (const e of log) assert.deepEqual(e.mac, fakeSign(e));
    });

    it('concurrent appends from several transactions get distinct, gap-free seqs', async () => {
      const n = 6;
      const seqs = await Promise.all(
        Array.from({ length: n }, (_, i) =>
          env.store().transaction(async (tx) => {
            await new Promise((r) => setImmediate(r));
            const e = await tx.appendEvent(keyEvent(`t${i}`), fakeSign);
            await new Promise((r) => setImmediate(r));
            return e.seq;
          }),
        ),
      );
      assert.deepEqual(
        [...seqs].sort((a, b) => a - b),
        Array.from({ length: n }, (_, i) => i + 1),
      );
      const log = await env.store().listEventsAfter(0, 100);
      assert.deepEqual(
        log.map((e) => e.seq),
        Array.from({ length: n }, (_, i) => i + 1),
      );
      assert.equal(new Set(log.map((e) => e.tenant)).size, n);
      for (const e of log) assert.deepEqual(e.mac, fakeSign(e), `seq ${e.seq} signed with its own seq`);
    });
  });

  describe('edges', () => {
    it('upsert inserts then replaces; get; list by id; round trip of nulls and extremes', async () => {
      const fresh = edgeRecord('edge-b');
      const acked = edgeRecord('edge-b', { ackedSeq: MAX_TIME, ackedAt: MAX_TIME, lastSeenAt: 0, mac: bytes(32, 3) });
      const other = edgeRecord('CN=edge-A,O=ü', { mac: Buffer.alloc(0) });
      await put(async (tx) => {
        await tx.upsertEdge(fresh);
        await tx.upsertEdge(other);
        assert.deepEqual(await tx.getEdge('edge-b'), fresh);
      });
      const s = env.store();
      assert.deepEqual(await s.getEdge('edge-b'), fresh);
      await put((tx) => tx.upsertEdge(acked));
      assert.deepEqual(await s.getEdge('edge-b'), acked);
      assert.deepEqual(await s.getEdge('CN=edge-A,O=ü'), other);
      assert.equal(await s.getEdge('edge'), undefined);
      assert.deepEqual(await s.listEdges(), [other, acked]);
      const bad: EdgeRecord[] = [
        edgeRecord('x', { ackedSeq: 2 ** 53 }),
        edgeRecord('x', { ackedAt: Number.POSITIVE_INFINITY }),
        edgeRecord('x\0'),
        edgeRecord('x', { mac: 'm' as unknown as Buffer }),
      ];
      for (const r of bad) {
        await rejectsWith(
          put((tx) => tx.upsertEdge(r)),
          'internal_error',
        );
      }
      assert.equal((await s.listEdges()).length, 2);
    });
  });

  describe('approvals', () => {
    const executed = approvalRecord('req-2', {
      operation: 'ivk.rotate_emergency',
      params: '{"reason":"ключ \\"q\\" \\\\ \\n"}',
      approvals: [
        { actor: 'bob', at: 1_760_000_000_100 },
        { actor: 'CN=carol,O="x\\y"', at: MAX_TIME },
        { actor: '🔑', at: 0 },
      ],
      state: 'EXECUTED',
      decidedBy: '',
      decidedAt: 0,
      executedAt: MAX_TIME,
      result: '{"ok":true,"ivkVersion":4}',
      required: U32,
      mac: Buffer.alloc(0),
    });

    it('round-trips every field, the approval list in order (empty included); conflict; update; not found', async () => {
      await put(async (tx) => {
        await tx.insertApproval(approvalRecord('req-1'));
        await tx.insertApproval(executed);
      });
      const s = env.store();
      assert.deepEqual(await s.getApproval('req-1'), approvalRecord('req-1'));
      assert.deepEqual((await s.getApproval('req-1'))?.approvals, []);
      assert.deepEqual(await s.getApproval('req-2'), executed);
      assert.equal(await s.getApproval('req'), undefined);
      await rejectsWith(
        put((tx) => tx.insertApproval(approvalRecord('req-1', { proposer: 'mallory' }))),
        'store_conflict',
      );
      const approved = approvalRecord('req-1', { approvals: [{ actor: 'bob', at: 7 }], mac: bytes(32, 8) });
      await put((tx) => tx.updateApproval(approved));
      assert.deepEqual(await s.getApproval('req-1'), approved);
      assert.deepEqual(await s.getApproval('req-2'), executed, 'other rows untouched');
      await rejectsWith(
        put((tx) => tx.updateApproval(approvalRecord('req-3'))),
        'store_not_found',
      );
    });

    it('listApprovals: by createdAt then id, optionally one state, at most limit', async () => {
      const recs: ApprovalRecord[] = [
        approvalRecord('b', { createdAt: 20 }),
        approvalRecord('a', { createdAt: 20, state: 'REJECTED', decidedBy: 'bob', decidedAt: 21 }),
        approvalRecord('z', { createdAt: 10 }),
        approvalRecord('c', { createdAt: 30, state: 'EXPIRED' }),
        approvalRecord('y', { createdAt: 5, state: 'REJECTED' }),
      ];
      await put(async (tx) => {
        for (const r of recs) await tx.insertApproval(r);
      });
      const s = env.store();
      const ids = async (state: ApprovalRecord['state'] | null, limit: number): Promise<string[]> =>
        (await s.listApprovals(state, limit)).map((r) => r.id);
      assert.deepEqual(await ids(null, 100), ['y', 'z', 'a', 'b', 'c']);
      assert.deepEqual(await ids(null, 2), ['y', 'z']);
      assert.deepEqual(await ids('PENDING', 100), ['z', 'b']);
      assert.deepEqual(await ids('REJECTED', 1), ['y']);
      assert.deepEqual(await ids('EXECUTED', 100), []);
      assert.deepEqual(await ids('PENDING', 0), []);
      assert.deepEqual((await s.listApprovals('REJECTED', 5))[1], recs[1]);
      await rejectsWith(s.listApprovals('BOGUS' as ApprovalRecord['state'], 5), 'internal_error');
      await rejectsWith(s.listApprovals(null, -1), 'internal_error');
    });

    it('refuses approvals it cannot store exactly (internal_error) and writes nothing', async () => {
      const bad: ApprovalRecord[] = [
        approvalRecord('x', { approvals: {} as ApprovalRecord['approvals'] }),
        approvalRecord('x', { approvals: [null] as unknown as ApprovalRecord['approvals'] }),
        approvalRecord('x', { approvals: [{ actor: 'bob', at: 1.5 }] }),
        approvalRecord('x', { approvals: [{ actor: 7, at: 1 }] as unknown as ApprovalRecord['approvals'] }),
        approvalRecord('x', { state: 'DONE' as ApprovalRecord['state'] }),
        approvalRecord('x', { result: 'nul\0' }),
        approvalRecord('x', { expiresAt: 2 ** 53 }),
      ];
      for (const r of bad) {
        await rejectsWith(
          put((tx) => tx.insertApproval(r)),
          'internal_error',
        );
      }
      assert.deepEqual(await env.store().listApprovals(null, 10), []);
    });

    it('a stored approval list that is not a JSON array of {actor, at} reads as internal_error', async () => {
      await put((tx) => tx.insertApproval(approvalRecord('req-1')));
      for (const text of ['not json', '{}', '[{"actor":"bob","at":"5"}]', '[{"at":5}]']) {
        await env.harness().sql(`UPDATE approvals SET approvals = '${text}' WHERE id = 'req-1'`);
        await rejectsWith(env.store().getApproval('req-1'), 'internal_error');
      }
    });
  });
}
