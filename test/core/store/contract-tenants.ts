/**
 * Store contract, schema v3 tenant family: listL2, tenants, L3 services, L3
 * key versions. Registered by runStoreContract (contract.ts) for each backend.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { L3Record, TenantRecord } from '../../../core/src/store/records.ts';
import type { Store, StoreTx } from '../../../core/src/store/store.ts';
import { bytes, l2Record, l3Record, l3ServiceRecord, tenantRecord } from './fixtures.ts';
import { rejectsWith, type StoreHarness } from './harness.ts';

/** What a v3 suite needs from the running contract: the current test's store and harness. */
export interface ContractEnv {
  store(): Store;
  harness(): StoreHarness;
}

const MAX_TIME = Number.MAX_SAFE_INTEGER;
const U32 = 2 ** 32 - 1;

export function tenantContract(env: ContractEnv): void {
  const put = (f: (tx: StoreTx) => Promise<void>): Promise<void> => env.store().transaction(f);

  describe('listL2', () => {
    it('every version of one tenant, ascending, exact tenant match', async () => {
      await put(async (tx) => {
        for (const [t, v] of [
          ['t1', 10],
          ['t1', 2],
          ['t10', 1],
          ['t1', 1],
        ] as const) {
          await tx.insertL2(l2Record(t, v, 1));
        }
      });
      const s = env.store();
      assert.deepEqual(
        await s.listL2('t1'),
        [1, 2, 10].map((v) => l2Record('t1', v, 1)),
      );
      assert.deepEqual(await s.listL2('t'), []);
    });
  });

  describe('tenants', () => {
    const suspended = tenantRecord('t-susp', {
      state: 'SUSPENDED',
      suspendedAt: 1_770_000_000_000,
      graceDays: 60,
      reason: 'l1_unreachable',
    });
    const managed = tenantRecord('t-managed', { keyMode: 'managed', l1: null });
    const edge = tenantRecord('tenant-ü-🔑', {
      state: 'REVOKED',
      keyMode: 'hyok',
      l1: { provider: '', keyId: '', region: '' },
      suspendedAt: 0,
      graceDays: 90,
      reason: '',
      revokedAt: MAX_TIME,
      createdAt: 0,
      updatedAt: MAX_TIME,
      mac: Buffer.alloc(0),
    });

    it('insert then get round-trips every field: L1 null and empty strings, nulls, times near 2^53', async () => {
      await put(async (tx) => {
        for (const r of [suspended, managed, edge]) await tx.insertTenant(r);
        assert.deepEqual(await tx.getTenant(edge.id), edge, 'read inside the transaction');
      });
      const s = env.store();
      for (const r of [suspended, managed, edge]) assert.deepEqual(await s.getTenant(r.id), r);
      assert.equal((await s.getTenant(managed.id))?.l1, null);
      assert.equal(await s.getTenant('t'), undefined);
    });

    it('a duplicate id throws store_conflict and keeps the first; update replaces the row; missing → store_not_found', async () => {
      await put((tx) => tx.insertTenant(tenantRecord('t1')));
      await rejectsWith(
        put((tx) => tx.insertTenant(tenantRecord('t1', { state: 'REVOKED' }))),
        'store_conflict',
      );
      assert.deepEqual(await env.store().getTenant('t1'), tenantRecord('t1'));
      const revoked = tenantRecord('t1', {
        state: 'REVOKED',
        revokedAt: 5,
        reason: 'op',
        l1: null,
        keyMode: 'managed',
      });
      await put((tx) => tx.updateTenant(revoked));
      assert.deepEqual(await env.store().getTenant('t1'), revoked);
      await rejectsWith(
        put((tx) => tx.updateTenant(tenantRecord('t2'))),
        'store_not_found',
      );
      assert.equal(await env.store().getTenant('t2'), undefined);
    });

    it('listTenants pages by id in byte order, after the given id (exclusive)', async () => {
      const ids = ['b', 'a', 'B', 'a-1', 'é', 'aa', 'Z9'];
      await put(async (tx) => {
        for (const id of ids) await tx.insertTenant(tenantRecord(id));
      });
      const s = env.store();
      const sorted = ['B', 'Z9', 'a', 'a-1', 'aa', 'b', 'é'];
      assert.deepEqual(
        (await s.listTenants('', 100)).map((r) => r.id),
        sorted,
      );
      assert.deepEqual(
        (await s.listTenants('', 3)).map((r) => r.id),
        sorted.slice(0, 3),
      );
      assert.deepEqual(
        (await s.listTenants('a', 3)).map((r) => r.id),
        ['a-1', 'aa', 'b'],
      );
      assert.deepEqual(
        (await s.listTenants('a-0', 1)).map((r) => r.id),
        ['a-1'],
      );
      assert.deepEqual(await s.listTenants('é', 10), []);
      assert.deepEqual(await s.listTenants('', 0), []);
      assert.deepEqual((await s.listTenants('Z9', 1))[0], tenantRecord('a'));
      await rejectsWith(s.listTenants('', -1), 'internal_error');
    });

    it('refuses tenants it cannot store exactly or that break the L1 rules (internal_error), writes nothing', async () => {
      const bad: TenantRecord[] = [
        tenantRecord(''),
        tenantRecord('x', { l1: null }), // byok without an L1
        tenantRecord('x', { keyMode: 'hyok', l1: null }),
        tenantRecord('x', { graceDays: 45 }),
        tenantRecord('x', { state: 'GONE' as TenantRecord['state'] }),
        tenantRecord('x', { keyMode: 'cloud' as TenantRecord['keyMode'] }),
        tenantRecord('x', { l1: { provider: 'p', keyId: 'k\0', region: '' } }),
        tenantRecord('x', { l1: { provider: 'p', keyId: 'k' } as TenantRecord['l1'] }),
        tenantRecord('x', { suspendedAt: 1.5 }),
        tenantRecord('x', { reason: 5 as unknown as string }),
      ];
      for (const r of bad) {
        await rejectsWith(
          put((tx) => tx.insertTenant(r)),
          'internal_error',
        );
      }
      assert.deepEqual(await env.store().listTenants('', 100), []);
    });
  });

  describe('L3 services', () => {
    it('round trip, ordered list per tenant, conflict, update, not found', async () => {
      const edge = l3ServiceRecord('t1', 'svc-ü', {
        rotatePeriodMs: MAX_TIME,
        encryptionBudget: 0,
        minDecryptVersion: U32,
        expiredRetentionMs: 0,
        createdAt: 0,
        updatedAt: MAX_TIME,
        mac: Buffer.alloc(0),
      });
      await put(async (tx) => {
        await tx.insertL3Service(l3ServiceRecord('t1', 'orders'));
        await tx.insertL3Service(edge);
        await tx.insertL3Service(l3ServiceRecord('t1', 'Billing'));
        await tx.insertL3Service(l3ServiceRecord('t2', 'billing'));
      });
      const s = env.store();
      assert.deepEqual(await s.getL3Service('t1', 'svc-ü'), edge);
      assert.equal(await s.getL3Service('t1', 'billing'), undefined);
      assert.deepEqual(
        (await s.listL3Services('t1')).map((r) => r.service),
        ['Billing', 'orders', 'svc-ü'],
      );
      assert.deepEqual(await s.listL3Services('t3'), []);
      await rejectsWith(
        put((tx) => tx.insertL3Service(l3ServiceRecord('t1', 'orders', { encryptionBudget: 1 }))),
        'store_conflict',
      );
      const changed = l3ServiceRecord('t1', 'orders', { minDecryptVersion: 4, updatedAt: 9, mac: bytes(32, 99) });
      await put((tx) => tx.updateL3Service(changed));
      assert.deepEqual(await s.getL3Service('t1', 'orders'), changed);
      assert.deepEqual(await s.getL3Service('t2', 'billing'), l3ServiceRecord('t2', 'billing'), 'other rows untouched');
      await rejectsWith(
        put((tx) => tx.updateL3Service(l3ServiceRecord('t2', 'orders'))),
        'store_not_found',
      );
      await rejectsWith(
        put((tx) => tx.insertL3Service(l3ServiceRecord('t1', 'x', { rotatePeriodMs: 2 ** 53 }))),
        'internal_error',
      );
    });
  });

  describe('L3 keys', () => {
    it('round-trips every field (nulls, empty buffer, extremes); conflict; update; not found', async () => {
      const pending = l3Record('t1', 'billing', 3, {
        state: 'PENDING',
        activatedAt: null,
        rotateAfter: null,
        wrapped: Buffer.alloc(0),
        mac: Buffer.alloc(0),
      });
      const old = l3Record('t1', 'billing', U32, {
        state: 'REVOKED',
        l2Version: U32,
        createdAt: 0,
        activatedAt: 0,
        rotateAfter: MAX_TIME,
        expiredAt: MAX_TIME - 1,
        revokedAt: MAX_TIME,
        encryptions: MAX_TIME,
      });
      await put(async (tx) => {
        await tx.insertL3(pending);
        await tx.insertL3(old);
      });
      const s = env.store();
      assert.deepEqual(await s.getL3('t1', 'billing', 3), pending);
      assert.deepEqual(await s.getL3('t1', 'billing', U32), old);
      assert.equal(await s.getL3('t1', 'billing', 4), undefined);
      assert.equal(await s.getL3('t1', 'Billing', 3), undefined);
      await rejectsWith(
        put((tx) => tx.insertL3(l3Record('t1', 'billing', 3))),
        'store_conflict',
      );
      const active = l3Record('t1', 'billing', 3, { encryptions: 1000, mac: bytes(32, 1) });
      await put((tx) => tx.updateL3(active));
      assert.deepEqual(await s.getL3('t1', 'billing', 3), active);
      assert.deepEqual(await s.getL3('t1', 'billing', U32), old, 'other versions untouched');
      await rejectsWith(
        put((tx) => tx.updateL3(l3Record('t1', 'billing', 4))),
        'store_not_found',
      );
      await rejectsWith(
        put((tx) => tx.insertL3(l3Record('t1', 'billing', 5, { state: 'ACTIVE ' as L3Record['state'] }))),
        'internal_error',
      );
    });

    it('listL3 by version (numeric); listL3ByTenant by service then version, exact tenant', async () => {
      await put(async (tx) => {
        for (const [t, sv, v] of [
          ['t1', 'b', 10],
          ['t1', 'b', 2],
          ['t1', 'a', 1],
          ['t1', 'b', 1],
          ['t10', 'a', 1],
          ['t1', 'B', 7],
        ] as const) {
          await tx.insertL3(l3Record(t, sv, v));
        }
      });
      const s = env.store();
      const key = (r: L3Record): string => `${r.tenant}/${r.service}/${r.version}`;
      assert.deepEqual((await s.listL3('t1', 'b')).map(key), ['t1/b/1', 't1/b/2', 't1/b/10']);
      assert.deepEqual(await s.listL3('t1', 'c'), []);
      assert.deepEqual((await s.listL3ByTenant('t1')).map(key), ['t1/B/7', 't1/a/1', 't1/b/1', 't1/b/2', 't1/b/10']);
      assert.deepEqual((await s.listL3ByTenant('t1'))[0], l3Record('t1', 'B', 7));
      assert.deepEqual(await s.listL3ByTenant('t'), []);
    });

    it('listL3DueForRotation: ACTIVE with rotateAfter <= now only, oldest due first, then key; limit', async () => {
      const recs: L3Record[] = [
        l3Record('a', 's', 1, { rotateAfter: 100 }),
        l3Record('b', 's', 1, { rotateAfter: 50 }),
        l3Record('c', 's', 1, { rotateAfter: 100 }),
        l3Record('a', 'r', 2, { rotateAfter: 100 }),
        l3Record('d', 's', 1, { rotateAfter: 101 }), // not due yet at 100
        l3Record('e', 's', 1, { rotateAfter: null }), // active, no schedule
        l3Record('f', 's', 1, { state: 'PENDING', rotateAfter: 10 }),
        l3Record('g', 's', 1, { state: 'EXPIRED', rotateAfter: 10 }),
        l3Record('h', 's', 1, { state: 'REVOKED', rotateAfter: 10 }),
        l3Record('i', 's', 1, { rotateAfter: 0 }),
      ];
      await put(async (tx) => {
        for (const r of recs) await tx.insertL3(r);
      });
      const s = env.store();
      const key = (r: L3Record): string => `${r.tenant}/${r.service}/${r.version}`;
      assert.deepEqual((await s.listL3DueForRotation(100, 100)).map(key), [
        'i/s/1',
        'b/s/1',
        'a/r/2',
        'a/s/1',
        'c/s/1',
      ]);
      assert.deepEqual((await s.listL3DueForRotation(100, 2)).map(key), ['i/s/1', 'b/s/1']);
      assert.deepEqual((await s.listL3DueForRotation(MAX_TIME, 100)).length, 6);
      assert.deepEqual(await s.listL3DueForRotation(-1, 100), []);
      assert.deepEqual(await s.listL3DueForRotation(100, 0), []);
      assert.deepEqual(await s.listL3DueForRotation(50, 5), [recs[9], recs[1]]);
      await rejectsWith(s.listL3DueForRotation(100, -1), 'internal_error');
      await rejectsWith(s.listL3DueForRotation(0.5, 1), 'internal_error');
    });
  });
}
