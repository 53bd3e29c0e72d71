/**
 * Tenants on a real SQLite store: create (ids never reused), suspend with a
 * decrypt-only grace, resume, revoke = kill switch (handles zeroised, store
 * REVOKED, event on the bus, refused after restart), tenant id validation
 * (fast-check), audit records.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import fc from 'fast-check';
import { CryptoError } from '../../../native/index.ts';
import { codeOf, DAY, type Fixture, hierarchyFixture } from './fixture.ts';

const ID_CHARS = 'ABCXYZabcxyz0189-._~';

describe('TenantService', () => {
  let f: Fixture;
  beforeEach(async () => {
    f = await hierarchyFixture();
  });
  afterEach(async () => {
    await f.close();
  });

  it('creates a managed tenant with L2 v1 under the IVK, and never reuses an id', async () => {
    const t = await f.keys.tenants.create({ id: 'acme' }, { actor: 'op-1' });
    assert.equal(t.state, 'ACTIVE');
    assert.equal(t.keyMode, 'managed');
    const l2 = await f.store.getL2('acme', 1);
    assert.equal(l2?.ivkVersion, 1);
    assert.equal(l2?.wrappedSovereign, null);
    assert.equal(await codeOf(f.keys.tenants.create({ id: 'acme' })), 'tenant_exists');
    await f.keys.tenants.revoke('acme');
    assert.equal(await codeOf(f.keys.tenants.create({ id: 'acme' })), 'tenant_exists');
    const rec = f.audit.events.find((e) => e.action === 'tenant.create' && e.outcome === 'success');
    assert.deepEqual([rec?.actor, rec?.tenant], ['op-1', 'acme']);
    assert.equal(f.audit.events.filter((e) => e.action === 'tenant.create' && e.outcome === 'failure').length, 2);
  });

  it('refuses bad ids, and mode/L1 mismatches', async () => {
    assert.equal(await codeOf(f.keys.tenants.create({ id: 'a'.repeat(41) })), 'invalid_tenant_id');
    assert.equal(await codeOf(f.keys.tenants.create({ id: 'a/b' })), 'invalid_tenant_id');
    assert.equal(await codeOf(f.keys.tenants.create({ id: 'x', keyMode: 'hyok' })), 'bad_request');
    assert.equal(
      await codeOf(f.keys.tenants.create({ id: 'x', l1: { provider: 'nope', keyId: 'k', region: '' } })),
      'bad_request',
    );
    assert.equal(await f.store.getTenant('x'), undefined);
  });

  it('accepts exactly the ids of ADR-103 (property)', async () => {
    const valid = fc.string({ unit: fc.constantFrom(...ID_CHARS), minLength: 1, maxLength: 40 });
    const anyString = fc.string({ maxLength: 60 });
    const isValid = (s: string) =>
      s.length >= 1 && s.length <= 40 && [...s].every((ch) => ID_CHARS.includes(ch) || /[A-Za-z0-9]/.test(ch));
    await fc.assert(
      fc.asyncProperty(fc.oneof(valid, anyString), async (id) => {
        const got = await f.keys.tenants.get(id).then(
          () => 'found',
          (e: { code?: string }) => e.code,
        );
        assert.equal(got, isValid(id) ? 'tenant_not_found' : 'invalid_tenant_id');
      }),
      { numRuns: 300 },
    );
  });

  it('suspend: no active key, decrypt allowed until the grace ends; resume restores encryption', async () => {
    await f.keys.tenants.create({ id: 'acme' });
    await f.keys.services.create('acme', 'orders');
    const s = await f.keys.tenants.suspend('acme', { graceDays: 60, reason: 'invoice unpaid' });
    assert.equal(s.state, 'SUSPENDED');
    assert.equal(s.graceEndsAt, f.clock.now + 60 * DAY);
    assert.equal(f.events.at(-1)?.type, 'tenant.suspended');
    const lease = await f.keys.leaseSet('acme', 'orders', [1]);
    assert.equal(lease.active, null);
    assert.equal(lease.tenantState, 'SUSPENDED');
    assert.deepEqual(
      lease.decryptOnly.map((v) => [v.version, v.state]),
      [[1, 'ACTIVE']],
    );
    assert.equal(await codeOf(f.keys.services.keyForEncrypt('acme', 'orders')), 'tenant_suspended');
    assert.equal(await codeOf(f.keys.services.rotate('acme', 'orders')), 'tenant_suspended');
    assert.equal(await codeOf(f.keys.tenants.suspend('acme')), 'invalid_tenant_state');
    assert.equal(await codeOf(f.keys.tenants.suspend('acme', { graceDays: 45 as 30 })), 'bad_request');
    f.clock.now += 60 * DAY - 1;
    await f.keys.services.keyForDecrypt('acme', 'orders', 1);
    f.clock.now += 1;
    assert.equal(await codeOf(f.keys.leaseSet('acme', 'orders', [1])), 'tenant_grace_ended');
    await f.keys.tenants.resume('acme');
    assert.equal(f.events.at(-1)?.type, 'tenant.resumed');
    assert.equal((await f.keys.leaseSet('acme', 'orders', [])).active?.version, 1);
  });

  it('revoke: zeroises cached handles, marks L2/L3 REVOKED, erases the IVK binding, tells the bus, survives restart', async () => {
    await f.keys.tenants.create({ id: 'acme' });
    await f.keys.tenants.create({ id: 'other' });
    await f.keys.services.create('acme', 'orders');
    await f.keys.services.create('other', 'orders');
    const lease = await f.keys.leaseSet('acme', 'orders', []);
    const handle = lease.active?.handle;
    assert.ok(handle);
    const probe = handle.seal(Buffer.from('x'), Buffer.alloc(0));
    assert.equal(probe.length, 29);
    await f.keys.tenants.revoke('acme', { reason: 'customer request' }, { actor: 'op-2' });
    const told = f.events.filter((e) => e.type === 'tenant.revoked' && e.tenant === 'acme').length;
    assert.equal(told, 1);
    assert.throws(
      () => handle.seal(Buffer.from('x'), Buffer.alloc(0)),
      (e: unknown) => e instanceof CryptoError && e.code === 'key_destroyed',
    );
    const l2 = await f.store.getL2('acme', 1);
    assert.equal(l2?.state, 'REVOKED');
    assert.equal(l2?.wrappedActive.length, 0);
    assert.deepEqual(
      (await f.store.listL3ByTenant('acme')).map((r) => r.state),
      ['REVOKED'],
    );
    assert.equal(await codeOf(f.keys.leaseSet('acme', 'orders', [])), 'tenant_revoked');
    assert.equal(await codeOf(f.keys.services.keyForDecrypt('acme', 'orders', 1)), 'tenant_revoked');
    assert.equal((await f.keys.leaseSet('other', 'orders', [])).active?.version, 1, 'other tenants unaffected');
    // Idempotent: no second event.
    await f.keys.tenants.revoke('acme');
    assert.equal(f.events.filter((e) => e.type === 'tenant.revoked').length, 1);

    await f.restart();
    assert.equal((await f.keys.tenants.get('acme')).state, 'REVOKED');
    assert.equal(await codeOf(f.keys.leaseSet('acme', 'orders', [])), 'tenant_revoked');
    assert.equal((await f.store.listEventsAfter(0, 100)).filter((e) => e.type === 'tenant.revoked').length, 1);
    assert.equal((await f.keys.leaseSet('other', 'orders', [])).active?.version, 1);
  });

  it('lists tenants in id order with paging, and refuses a bad limit', async () => {
    for (const id of ['c', 'a', 'b']) await f.keys.tenants.create({ id });
    assert.deepEqual(
      (await f.keys.tenants.list('', 2)).map((t) => t.id),
      ['a', 'b'],
    );
    assert.deepEqual(
      (await f.keys.tenants.list('b', 2)).map((t) => t.id),
      ['c'],
    );
    assert.equal(await codeOf(f.keys.tenants.list('', 0)), 'bad_request');
  });

  it('is sealed while the root of trust is, and wipes its caches at seal', async () => {
    await f.keys.tenants.create({ id: 'acme' });
    await f.keys.services.create('acme', 'orders');
    const h = (await f.keys.leaseSet('acme', 'orders', [])).active?.handle;
    f.root.seal('test');
    assert.deepEqual(await f.keys.tick(), []);
    assert.deepEqual(f.keys.cacheSizes(), { l2: 0, l3: 0 });
    assert.throws(() => h?.seal(Buffer.from('x'), Buffer.alloc(0)));
    assert.equal(await codeOf(f.keys.leaseSet('acme', 'orders', [])), 'sealed');
  });
});
