/**
 * L3 service keys on a real SQLite store: lazy hydration and pre-warm,
 * budget-forced rotation, the RotateAfter ticker without blocking concurrent
 * leases, PENDING written before ACTIVE (and finished after a crash between),
 * retention of EXPIRED versions, lease input checks, L2 re-wrap after an IVK
 * rotation.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { wrapL3 } from '../../../core/src/keys/l3/l3-keys.ts';
import type { L3Record, TenantRecord } from '../../../core/src/store/records.ts';
import { defaultCrypto } from '../../../native/index.ts';
import { codeOf, DAY, type Fixture, hierarchyFixture } from '../tenants/fixture.ts';

const crypto = defaultCrypto();

describe('ServiceKeys and L3 leases', () => {
  let f: Fixture;
  beforeEach(async () => {
    f = await hierarchyFixture();
    await f.keys.tenants.create({ id: 'acme' });
  });
  afterEach(async () => {
    await f.close();
  });

  it('hydrates lazily after a restart: nothing loaded until a lease, then only what it needs; prewarm loads the rest', async () => {
    await f.keys.services.create('acme', 'orders');
    await f.keys.services.rotate('acme', 'orders');
    await f.keys.services.create('acme', 'users');
    await f.restart();
    assert.deepEqual(f.keys.cacheSizes(), { l2: 0, l3: 0 });
    const lease = await f.keys.leaseSet('acme', 'orders', []);
    assert.equal(lease.active?.version, 2);
    assert.deepEqual(f.keys.cacheSizes(), { l2: 1, l3: 1 });
    const warm = await f.keys.services.prewarm('acme');
    assert.deepEqual(warm, { services: 2, versions: 3 });
    assert.deepEqual(f.keys.cacheSizes(), { l2: 1, l3: 3 });
    assert.ok(f.audit.events.some((e) => e.action === 'l3.prewarm' && e.outcome === 'success'));
  });

  it('forces a rotation at 90 % of the encryption budget and reports the budget left', async () => {
    await f.keys.services.create('acme', 'orders', { encryptionBudget: 100 });
    let lease = await f.keys.leaseSet('acme', 'orders', []);
    assert.equal(lease.activeBudgetLeft, 100);
    await f.keys.reportEncryptions('acme', 'orders', 1, 60, { actor: 'edge-1' });
    lease = await f.keys.leaseSet('acme', 'orders', []);
    assert.deepEqual([lease.active?.version, lease.activeBudgetLeft], [1, 40]);
    await f.keys.reportEncryptions('acme', 'orders', 1, 30);
    lease = await f.keys.leaseSet('acme', 'orders', [1]);
    assert.deepEqual([lease.active?.version, lease.activeBudgetLeft], [2, 100]);
    assert.deepEqual(
      lease.decryptOnly.map((v) => [v.version, v.state]),
      [[1, 'EXPIRED']],
    );
    const v1 = await f.store.getL3('acme', 'orders', 1);
    assert.deepEqual([v1?.state, v1?.encryptions], ['EXPIRED', 90]);
    assert.ok(f.audit.events.some((e) => e.action === 'l3.rotate' && e.reason === 'budget'));
    assert.equal(await codeOf(f.keys.reportEncryptions('acme', 'orders', 1, 0)), 'bad_request');
    assert.equal(await codeOf(f.keys.reportEncryptions('acme', 'orders', 9, 1)), 'key_not_found');
  });

  it('the ticker rotates due keys while concurrent leases keep being served', async () => {
    for (const s of ['a', 'b', 'c', 'd']) await f.keys.services.create('acme', s, { rotatePeriodMs: DAY });
    assert.deepEqual(await f.keys.tick(), []);
    f.clock.now += DAY;
    const leases: Promise<unknown>[] = [];
    let served = 0;
    const seenVersions = new Set<number>();
    const tick = f.keys.tick();
    for (let i = 0; i < 200; i++) {
      leases.push(
        f.keys.leaseSet('acme', ['a', 'b', 'c', 'd'][i % 4] as string, []).then((l) => {
          served++;
          seenVersions.add(l.active?.version ?? 0);
        }),
      );
    }
    const done = await tick;
    await Promise.all(leases);
    assert.equal(served, 200);
    assert.deepEqual(done.sort(), ['rotated:acme/a:v2', 'rotated:acme/b:v2', 'rotated:acme/c:v2', 'rotated:acme/d:v2']);
    assert.ok([...seenVersions].every((v) => v === 1 || v === 2));
    assert.equal((await f.keys.leaseSet('acme', 'a', [])).active?.version, 2);
    assert.deepEqual(await f.keys.tick(), [], 'next rotation is a period away');
  });

  it('skips suspended tenants in the ticker', async () => {
    await f.keys.services.create('acme', 'orders', { rotatePeriodMs: DAY });
    await f.keys.tenants.suspend('acme');
    f.clock.now += 2 * DAY;
    assert.deepEqual(await f.keys.tick(), []);
    assert.equal((await f.keys.services.get('acme', 'orders')).activeVersion, 1);
  });

  it('a PENDING version left by a crash is promoted (by the next rotation, or a lease finding no ACTIVE), not duplicated', async () => {
    const t = (await f.store.getTenant('acme')) as TenantRecord;
    const { handle: l2 } = await f.keys.tenants.resolver.resolve(t, 1);
    const pendingRow = (service: string, version: number) => {
      const key = crypto.generateKey();
      try {
        return {
          tenant: 'acme',
          service,
          version,
          state: 'PENDING' as const,
          l2Version: 1,
          wrapped: wrapL3(l2, 'acme', 1, service, version, key),
          createdAt: f.clock.now,
          activatedAt: null,
          rotateAfter: null,
          expiredAt: null,
          revokedAt: null,
          encryptions: 0,
        };
      } finally {
        key.destroy();
      }
    };
    // Crash during a rotation: v2 PENDING beside v1 ACTIVE. Leases keep v1 and never hand out v2.
    await f.keys.services.create('acme', 'orders');
    await f.store.transaction((tx) => tx.insertL3(pendingRow('orders', 2)));
    assert.equal((await f.keys.leaseSet('acme', 'orders', [2])).active?.version, 1);
    assert.equal(await codeOf(f.keys.services.keyForDecrypt('acme', 'orders', 2)), 'key_not_found');
    assert.equal((await f.keys.services.rotate('acme', 'orders')).version, 2);
    const info = await f.keys.services.get('acme', 'orders');
    assert.deepEqual(
      info.versions.map((v) => [v.version, v.state]),
      [
        [1, 'EXPIRED'],
        [2, 'ACTIVE'],
      ],
    );
    // Crash during a create: service + v1 PENDING only. The first lease finishes it.
    await f.store.transaction(async (tx) => {
      await tx.insertL3Service({
        tenant: 'acme',
        service: 'users',
        rotatePeriodMs: DAY,
        encryptionBudget: 1000,
        minDecryptVersion: 1,
        expiredRetentionMs: 0,
        createdAt: f.clock.now,
        updatedAt: f.clock.now,
      });
      await tx.insertL3(pendingRow('users', 1));
    });
    const lease = await f.keys.leaseSet('acme', 'users', []);
    assert.equal(lease.active?.version, 1);
    assert.equal((await f.store.getL3('acme', 'users', 1))?.state, 'ACTIVE');
    // A blob relabelled as another version never opens (its AAD names the version).
    const v2 = (await f.store.getL3('acme', 'orders', 2)) as L3Record;
    const { mac: _m, ...row } = v2;
    await f.store.transaction((tx) =>
      tx.insertL3({ ...row, version: 3, state: 'PENDING', activatedAt: null, rotateAfter: null }),
    );
    await f.keys.services.rotate('acme', 'orders');
    assert.equal(await codeOf(f.keys.leaseSet('acme', 'orders', [])), 'record_tampered');
  });

  it('revokes EXPIRED versions past their retention at the next rotation, and never leases them after it', async () => {
    await f.keys.services.create('acme', 'orders', { expiredRetentionMs: DAY });
    await f.keys.services.rotate('acme', 'orders');
    assert.deepEqual(
      (await f.keys.leaseSet('acme', 'orders', [1])).decryptOnly.map((v) => v.version),
      [1],
    );
    f.clock.now += DAY;
    assert.deepEqual((await f.keys.leaseSet('acme', 'orders', [1])).decryptOnly, []);
    assert.equal(await codeOf(f.keys.services.keyForDecrypt('acme', 'orders', 1)), 'key_revoked');
    await f.keys.services.rotate('acme', 'orders');
    assert.equal((await f.store.getL3('acme', 'orders', 1))?.state, 'REVOKED');
    assert.ok(f.events.some((e) => e.type === 'l3.revoked' && e.version === 1));
  });

  it('checks lease input and unknown services', async () => {
    await f.keys.services.create('acme', 'orders');
    assert.equal(await codeOf(f.keys.leaseSet('acme', 'nope', [])), 'key_not_found');
    assert.equal(await codeOf(f.keys.leaseSet('acme', 'bad/name', [])), 'invalid_key_id');
    assert.equal(await codeOf(f.keys.leaseSet('ghost', 'orders', [])), 'tenant_not_found');
    assert.equal(await codeOf(f.keys.leaseSet('acme', 'orders', new Array(257).fill(1))), 'bad_request');
    assert.deepEqual((await f.keys.leaseSet('acme', 'orders', [0, -1, 1.5, 7, 1])).decryptOnly, []);
    assert.equal(await codeOf(f.keys.services.create('acme', 'orders')), 'key_exists');
    assert.equal(await codeOf(f.keys.services.create('acme', 'x', { rotatePeriodMs: 5 })), 'bad_request');
    assert.equal(await codeOf(f.keys.services.create('acme', 'x', { bogus: 1 })), 'bad_request');
    const lease = f.audit.events.filter((e) => e.action === 'l3.lease');
    assert.ok(lease.some((e) => e.outcome === 'failure' && e.reason === 'tenant_not_found'));
  });

  it('re-wraps L2 under the new IVK on first use after an IVK rotation (lazy, self-healing)', async () => {
    await f.keys.services.create('acme', 'orders');
    await f.root.ivk().rotate('emergency');
    await f.restart();
    assert.equal((await f.store.getL2('acme', 1))?.ivkVersion, 1);
    await f.keys.leaseSet('acme', 'orders', []);
    assert.equal((await f.store.getL2('acme', 1))?.ivkVersion, 2);
    assert.ok(f.audit.events.some((e) => e.action === 'l2.rewrap' && e.reason === 'ivk_rotation'));
  });
});
