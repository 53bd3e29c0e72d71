/**
 * The key hierarchy on the PostgreSQL store (a throwaway cluster,
 * test/support/postgres.ts): tenant and service-key lifecycle, concurrent
 * leases during a rotation, the kill switch across a restart.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { openStore } from '../../../core/src/store/open-store.ts';
import { type PgServer, postgresSkipReason, startPostgres } from '../../support/postgres.ts';
import { codeOf, type Fixture, hierarchyFixture } from './fixture.ts';

describe('key hierarchy on PostgreSQL', { skip: postgresSkipReason() ?? false }, () => {
  let server: PgServer;
  let f: Fixture;
  before(async () => {
    server = await startPostgres();
    f = await hierarchyFixture({
      openRaw: () =>
        openStore({ kind: 'postgres', connectionString: server.connectionString, schema: `keys_${process.pid}` }),
    });
  });
  after(async () => {
    await f?.close();
    await server?.stop();
  });

  it('creates, rotates under concurrent leases, suspends, revokes, and refuses the tenant after a restart', async () => {
    await f.keys.tenants.create({ id: 'acme' });
    await f.keys.tenants.create({ id: 'beta' });
    await f.keys.services.create('acme', 'orders');
    await f.keys.services.create('beta', 'orders');
    const leases = Array.from({ length: 40 }, () => f.keys.leaseSet('acme', 'orders', [1]));
    const rotated = await f.keys.services.rotate('acme', 'orders');
    const sets = await Promise.all(leases);
    assert.equal(rotated.version, 2);
    assert.ok(sets.every((s) => s.active?.version === 1 || s.active?.version === 2));
    await f.keys.tenants.suspend('beta', { graceDays: 90 });
    assert.equal((await f.keys.leaseSet('beta', 'orders', [1])).active, null);
    await f.keys.tenants.revoke('acme');
    await f.restart();
    assert.equal(await codeOf(f.keys.leaseSet('acme', 'orders', [])), 'tenant_revoked');
    assert.equal((await f.keys.tenants.get('beta')).state, 'SUSPENDED');
    assert.deepEqual(
      (await f.store.listEventsAfter(0, 100)).map((e) => e.type).filter((t) => t.startsWith('tenant.')),
      ['tenant.suspended', 'tenant.revoked'],
    );
  });
});
