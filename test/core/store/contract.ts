/**
 * The one contract suite every Store implementation passes (store.ts):
 * sqlite.test.ts and postgres.test.ts run it against real databases.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { MIGRATIONS } from '../../../core/src/store/migrations.ts';
import type { IvkRecord, L2Record } from '../../../core/src/store/records.ts';
import type { Store, StoreTx } from '../../../core/src/store/store.ts';
import { eventContract } from './contract-events.ts';
import { type ContractEnv, tenantContract } from './contract-tenants.ts';
import { autoUnsealCluster, bytes, clusterRecord, ivkRecord, l2Record, tenantRecord } from './fixtures.ts';
import { FUTURE_MIGRATIONS, gate, rejectsWith, type StoreHarness } from './harness.ts';

export type { StoreHarness } from './harness.ts';

const MAX_TIME = Number.MAX_SAFE_INTEGER; // 2^53 − 1
const U32 = 2 ** 32 - 1;

export function runStoreContract(name: string, makeStore: () => Promise<StoreHarness>): void {
  describe(`Store contract: ${name}`, () => {
    let h: StoreHarness;
    let s: Store;
    beforeEach(async () => {
      h = await makeStore();
      s = h.store;
    });
    afterEach(() => h.cleanup());

    const put = (f: (tx: StoreTx) => Promise<void>): Promise<void> => s.transaction(f);
    const env: ContractEnv = { store: () => s, harness: () => h };
    tenantContract(env);
    eventContract(env);

    describe('migrations', () => {
      it('migrate is idempotent and reports the schema version', async () => {
        assert.equal(await s.migrate(), MIGRATIONS.length);
        await put((tx) => tx.insertIvk(ivkRecord(1)));
        assert.equal(await s.migrate(), MIGRATIONS.length);
        const again = await h.reopen();
        assert.equal(await again.migrate(), MIGRATIONS.length);
        assert.deepEqual(await again.getIvk(1), ivkRecord(1));
      });

      it('upgrades a schema v2 database with data to v3', async () => {
        await put(async (tx) => {
          await tx.insertIvk(ivkRecord(1));
          await tx.insertL2(l2Record('t1', 1, 1));
        });
        // Back to what a v2 build left: no v3 tables, version 2 recorded.
        const v3Tables = ['tenants', 'l3_services', 'l3_keys', 'key_events', 'edges', 'approvals'];
        await h.sql(
          `${v3Tables.map((t) => `DROP TABLE ${t}`).join('; ')}; DELETE FROM schema_migrations WHERE version = 3`,
        );
        const upgraded = await h.reopen();
        assert.equal(await upgraded.migrate(), 3);
        assert.deepEqual(await upgraded.getL2('t1', 1), l2Record('t1', 1, 1));
        await upgraded.transaction((tx) => tx.insertTenant(tenantRecord('t1')));
        assert.deepEqual(await upgraded.getTenant('t1'), tenantRecord('t1'));
      });

      it('refuses a database newer than this build with store_schema', async () => {
        const newer = await h.reopen({ migrations: FUTURE_MIGRATIONS });
        assert.equal(await newer.migrate(), MIGRATIONS.length + 1);
        await rejectsWith((await h.reopen()).migrate(), 'store_schema');
        await rejectsWith(s.migrate(), 'store_schema');
      });

      it('rejects a migration list with a gap (invalid_config)', async () => {
        await rejectsWith(
          h.reopen({ migrations: MIGRATIONS.map((m) => ({ ...m, version: m.version + 1 })) }),
          'invalid_config',
        );
      });
    });

    describe('cluster', () => {
      it('insert then get returns the record; update replaces it, seal included', async () => {
        assert.equal(await s.getCluster(), undefined);
        await put((tx) => tx.insertCluster(clusterRecord()));
        assert.deepEqual(await s.getCluster(), clusterRecord());
        await put((tx) => tx.updateCluster(autoUnsealCluster({ mac: bytes(32, 50) })));
        assert.deepEqual(await s.getCluster(), autoUnsealCluster({ mac: bytes(32, 50) }));
        await put((tx) => tx.updateCluster(clusterRecord({ manifest: '{}' })));
        assert.deepEqual(await s.getCluster(), clusterRecord({ manifest: '{}' }));
      });

      it('a second insert throws store_conflict and keeps the first', async () => {
        await put((tx) => tx.insertCluster(autoUnsealCluster()));
        await rejectsWith(
          put((tx) => tx.insertCluster(clusterRecord({ clusterId: 'other' }))),
          'store_conflict',
        );
        assert.deepEqual(await s.getCluster(), autoUnsealCluster());
      });

      it('update without a record throws store_not_found', async () => {
        await rejectsWith(
          put((tx) => tx.updateCluster(clusterRecord())),
          'store_not_found',
        );
      });

      it('round-trips the init state and the IVK digest (empty included); delete removes the record', async () => {
        await put((tx) => tx.insertCluster(clusterRecord({ initState: 'pending', ivkDigest: Buffer.alloc(0) })));
        assert.deepEqual(await s.getCluster(), clusterRecord({ initState: 'pending', ivkDigest: Buffer.alloc(0) }));
        await put((tx) => tx.deleteCluster());
        assert.equal(await s.getCluster(), undefined);
        await rejectsWith(
          put((tx) => tx.deleteCluster()),
          'store_not_found',
        );
      });
    });

    describe('IVK versions', () => {
      it('lists sorted by version and gets by version', async () => {
        await put(async (tx) => {
          for (const v of [3, U32, 1, 2]) await tx.insertIvk(ivkRecord(v));
        });
        assert.deepEqual(
          await s.listIvks(),
          [1, 2, 3, U32].map((v) => ivkRecord(v)),
        );
        assert.deepEqual(await s.getIvk(2), ivkRecord(2));
        assert.equal(await s.getIvk(99), undefined);
      });

      it('update replaces the row; update, delete of a missing version throw store_not_found', async () => {
        await put((tx) => tx.insertIvk(ivkRecord(1)));
        const retired = ivkRecord(1, { state: 'GRACE', retiredAt: 1_770_000_000_000, wraps: 42, mac: bytes(32, 77) });
        await put((tx) => tx.updateIvk(retired));
        assert.deepEqual(await s.getIvk(1), retired);
        await rejectsWith(
          put((tx) => tx.updateIvk(ivkRecord(2))),
          'store_not_found',
        );
        await rejectsWith(
          put((tx) => tx.deleteIvk(2)),
          'store_not_found',
        );
        await put((tx) => tx.deleteIvk(1));
        assert.equal(await s.getIvk(1), undefined);
        assert.deepEqual(await s.listIvks(), []);
      });

      it('a duplicate insert throws store_conflict', async () => {
        await put((tx) => tx.insertIvk(ivkRecord(1)));
        await rejectsWith(
          put((tx) => tx.insertIvk(ivkRecord(1, { wraps: 9 }))),
          'store_conflict',
        );
        assert.deepEqual(await s.getIvk(1), ivkRecord(1));
      });
    });

    describe('L2 keys', () => {
      it('get, getLatest (numeric order, exact tenant match)', async () => {
        await put(async (tx) => {
          for (const [t, v] of [
            ['t1', 2],
            ['t1', 10],
            ['t1', 1],
            ['t10', 99],
            ['t2', 1],
          ] as const) {
            await tx.insertL2(l2Record(t, v, 1));
          }
        });
        assert.deepEqual(await s.getL2('t1', 2), l2Record('t1', 2, 1));
        assert.equal(await s.getL2('t1', 3), undefined);
        assert.deepEqual(await s.getLatestL2('t1'), l2Record('t1', 10, 1));
        assert.deepEqual(await s.getLatestL2('t2'), l2Record('t2', 1, 1));
        assert.equal(await s.getLatestL2('t'), undefined);
      });

      it('countL2ByIvk follows the active binding; updateL2 rebinds; missing → store_not_found', async () => {
        await put(async (tx) => {
          for (const t of ['a', 'b', 'c']) await tx.insertL2(l2Record(t, 1, 1));
          await tx.insertL2(l2Record('a', 2, 2));
        });
        assert.equal(await s.countL2ByIvk(1), 3);
        assert.equal(await s.countL2ByIvk(2), 1);
        assert.equal(await s.countL2ByIvk(3), 0);
        const rewrapped = l2Record('b', 1, 2, { wrappedActive: bytes(60, 200), wrappedSovereign: bytes(300, 1) });
        await put((tx) => tx.updateL2(rewrapped));
        assert.deepEqual(await s.getL2('b', 1), rewrapped);
        assert.equal(await s.countL2ByIvk(1), 2);
        assert.equal(await s.countL2ByIvk(2), 2);
        await rejectsWith(
          put((tx) => tx.updateL2(l2Record('z', 1, 1))),
          'store_not_found',
        );
        await rejectsWith(
          put((tx) => tx.insertL2(l2Record('a', 1, 5))),
          'store_conflict',
        );
      });

      it('listL2BelowIvk: below only, by IVK version, createdAt, tenant, version; limit', async () => {
        const recs: L2Record[] = [
          l2Record('m', 1, 2, { createdAt: 5 }),
          l2Record('a', 2, 2, { createdAt: 5 }),
          l2Record('a', 1, 2, { createdAt: 5 }),
          l2Record('z', 1, 1, { createdAt: 9 }),
          l2Record('b', 1, 2, { createdAt: 1 }),
          l2Record('y', 1, 3, { createdAt: 0 }),
          l2Record('x', 1, U32, { createdAt: 0 }),
        ];
        await put(async (tx) => {
          for (const r of recs) await tx.insertL2(r);
        });
        const key = (r: L2Record): string => `${r.tenant}/${r.version}`;
        const below3 = (await s.listL2BelowIvk(3, 100)).map(key);
        assert.deepEqual(below3, ['z/1', 'b/1', 'a/1', 'a/2', 'm/1']);
        assert.deepEqual((await s.listL2BelowIvk(3, 2)).map(key), ['z/1', 'b/1']);
        assert.deepEqual((await s.listL2BelowIvk(U32 + 1, 100)).length, recs.length);
        assert.deepEqual(await s.listL2BelowIvk(1, 100), []);
        assert.deepEqual(await s.listL2BelowIvk(3, 0), []);
        assert.deepEqual((await s.listL2BelowIvk(2, 1))[0], l2Record('z', 1, 1, { createdAt: 9 }));
        await rejectsWith(s.listL2BelowIvk(3, -1), 'internal_error');
      });
    });

    describe('exact round trip', () => {
      const ivkEdge = ivkRecord(U32, {
        state: 'DEPRECATED',
        createdAt: MAX_TIME - 2,
        retiredAt: MAX_TIME - 1,
        hardExpiry: MAX_TIME,
        wraps: MAX_TIME,
        wrapped: bytes(256, 0),
        mac: Buffer.alloc(0),
      });
      const ivkZero = ivkRecord(0, {
        state: 'REVOKED',
        createdAt: 0,
        retiredAt: 0,
        hardExpiry: 0,
        wrapped: Buffer.alloc(8),
      });
      const l2Empty = l2Record('tenant-ü-🔑', U32, U32, {
        state: 'SUSPENDED',
        wrappedSovereign: Buffer.alloc(0),
        wrappedActive: Buffer.alloc(3),
        createdAt: MAX_TIME,
      });
      const l2Null = l2Record('tenant-ü-🔑', 7, 0, { state: 'REVOKED', wrappedSovereign: null, createdAt: 0 });
      const cluster = autoUnsealCluster({
        splitId: Buffer.alloc(16),
        kcv: Buffer.alloc(0),
        manifest: 'ключ 🔑 "quoted" \\ \n\t{}',
        threshold: 1,
        shareCount: 255,
        createdAt: MAX_TIME,
      });
      const edgeSeal = cluster.seal && { ...cluster.seal, encryptedDataKey: Buffer.alloc(0), createdAt: MAX_TIME };
      const edgeCluster = { ...cluster, seal: edgeSeal };

      it('keeps every field: zero and empty buffers, null vs empty, 2^32−1 versions, times near 2^53', async () => {
        await put(async (tx) => {
          await tx.insertCluster(edgeCluster);
          for (const r of [ivkEdge, ivkZero]) await tx.insertIvk(r);
          for (const r of [l2Empty, l2Null]) await tx.insertL2(r);
          assert.deepEqual(await tx.getIvk(U32), ivkEdge, 'read inside the transaction');
        });
        assert.deepEqual(await s.getCluster(), edgeCluster);
        assert.deepEqual(await s.listIvks(), [ivkZero, ivkEdge]);
        const got = await s.getL2(l2Empty.tenant, U32);
        assert.deepEqual(got, l2Empty);
        assert.ok(Buffer.isBuffer(got?.wrappedSovereign) && got.wrappedSovereign.length === 0, 'empty, not null');
        assert.equal((await s.getL2(l2Null.tenant, 7))?.wrappedSovereign, null, 'null, not empty');
        assert.deepEqual(await s.getLatestL2(l2Empty.tenant), l2Empty);
        assert.equal(await s.countL2ByIvk(U32), 1);
      });

      it('refuses records it cannot store exactly (internal_error) and writes nothing', async () => {
        const bad: IvkRecord[] = [
          ivkRecord(2 ** 53),
          ivkRecord(1, { createdAt: 1.5 }),
          ivkRecord(1, { retiredAt: Number.NaN }),
          ivkRecord(1, { wrapped: new Uint8Array(4) as Buffer }),
          ivkRecord(1, { state: 'BOGUS' as IvkRecord['state'] }),
        ];
        for (const r of bad)
          await rejectsWith(
            put((tx) => tx.insertIvk(r)),
            'internal_error',
          );
        await rejectsWith(
          put((tx) => tx.insertL2(l2Record('nul\0byte', 1, 1))),
          'internal_error',
        );
        assert.deepEqual(await s.listIvks(), []);
        assert.equal(await s.countL2ByIvk(1), 0);
      });
    });

    describe('transactions', () => {
      it('returns the value of fn and commits its writes together', async () => {
        const v = await s.transaction(async (tx) => {
          await tx.insertIvk(ivkRecord(1));
          await tx.insertL2(l2Record('t', 1, 1));
          return 'done';
        });
        assert.equal(v, 'done');
        assert.equal(await s.countL2ByIvk(1), 1);
      });

      it('a throw inside rolls back every write and rethrows the same error', async () => {
        await put(async (tx) => {
          await tx.insertIvk(ivkRecord(1));
          await tx.insertIvk(ivkRecord(2));
        });
        const boom = new Error('boom');
        await assert.rejects(
          s.transaction(async (tx) => {
            await tx.insertCluster(clusterRecord());
            await tx.updateIvk(ivkRecord(1, { wraps: 5 }));
            await tx.deleteIvk(2);
            await tx.insertIvk(ivkRecord(3));
            await tx.insertL2(l2Record('t', 1, 3));
            throw boom;
          }),
          (e) => e === boom,
        );
        assert.equal(await s.getCluster(), undefined);
        assert.deepEqual(await s.listIvks(), [ivkRecord(1), ivkRecord(2)]);
        assert.equal(await s.getL2('t', 1), undefined);
      });

      it('a caught store_conflict or store_not_found does not abort the transaction', async () => {
        await put((tx) => tx.insertIvk(ivkRecord(1)));
        await put(async (tx) => {
          await rejectsWith(tx.insertIvk(ivkRecord(1, { wraps: 3 })), 'store_conflict');
          await rejectsWith(tx.deleteIvk(9), 'store_not_found');
          await tx.updateIvk(ivkRecord(1, { wraps: 3 }));
        });
        assert.equal((await s.getIvk(1))?.wraps, 3);
      });

      it('reads outside a running transaction see only committed data', async () => {
        const inserted = gate();
        const checked = gate();
        const running = put(async (tx) => {
          await tx.insertIvk(ivkRecord(1));
          inserted.open();
          await checked.promise;
        });
        await inserted.promise;
        assert.equal(await s.getIvk(1), undefined);
        assert.deepEqual(await s.listIvks(), []);
        checked.open();
        await running;
        assert.deepEqual(await s.getIvk(1), ivkRecord(1));
      });

      it('concurrent read-modify-write transactions serialise: 20 increments end at 20', async () => {
        await put((tx) => tx.insertIvk(ivkRecord(1)));
        const bump = (): Promise<void> =>
          put(async (tx) => {
            const cur = await tx.getIvk(1);
            assert.ok(cur);
            await new Promise((r) => setImmediate(r)); // let the others run in between
            await tx.updateIvk({ ...cur, wraps: cur.wraps + 1 });
          });
        await Promise.all(Array.from({ length: 20 }, bump));
        assert.equal((await s.getIvk(1))?.wraps, 20);
      });

      it('a StoreTx is dead once its transaction settles', async () => {
        let leaked: StoreTx | undefined;
        await put(async (tx) => {
          leaked = tx;
        });
        assert.ok(leaked);
        await rejectsWith(leaked.insertIvk(ivkRecord(1)), 'internal_error');
        await rejectsWith(leaked.getIvk(1), 'internal_error');
        assert.deepEqual(await s.listIvks(), []);
      });

      it('a nested transaction on the same store throws internal_error instead of deadlocking', async () => {
        await put(async (tx) => {
          await tx.insertIvk(ivkRecord(1));
          await rejectsWith(
            s.transaction(async () => {}),
            'internal_error',
          );
          assert.equal(await s.getIvk(1), undefined, 'the outer store still reads committed data');
        });
        assert.deepEqual(await s.getIvk(1), ivkRecord(1));
      });
    });

    describe('lifecycle', () => {
      it('data survives close and reopen', async () => {
        await put(async (tx) => {
          await tx.insertCluster(autoUnsealCluster());
          await tx.insertIvk(ivkRecord(U32));
          await tx.insertL2(l2Record('t', 1, U32, { wrappedSovereign: bytes(5) }));
        });
        await s.close();
        const again = await h.reopen();
        assert.equal(await again.migrate(), MIGRATIONS.length);
        assert.deepEqual(await again.getCluster(), autoUnsealCluster());
        assert.deepEqual(await again.listIvks(), [ivkRecord(U32)]);
        assert.deepEqual(await again.getL2('t', 1), l2Record('t', 1, U32, { wrappedSovereign: bytes(5) }));
      });

      it('a closed store refuses work with store_unavailable; close is idempotent', async () => {
        await s.close();
        await s.close();
        await rejectsWith(s.getIvk(1), 'store_unavailable');
        await rejectsWith(
          put((tx) => tx.insertIvk(ivkRecord(1))),
          'store_unavailable',
        );
        await rejectsWith(s.migrate(), 'store_unavailable');
      });
    });
  });
}
