/**
 * The metadata cache of the key hierarchy (metadata-cache.ts) on a real
 * SQLite store wrapped in a counting proxy: a warm lease reads no store row;
 * every state change made by this Core is seen by the very next lease; a
 * change made by another hierarchy on the same store (another replica) is
 * seen once `keys.metadataCacheMs` has passed; the cache itself (in-flight
 * reads overtaken by an invalidation, clock going back, bound, TTL 0).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { KeyEventBus } from '../../../core/src/events/key-event-bus.ts';
import { keyHierarchyConfig } from '../../../core/src/keys/l3/key-settings.ts';
import type { L3LeaseSet } from '../../../core/src/keys/l3-lease-source.ts';
import type { DevSealProvider } from '../../../core/src/seal/dev/dev-provider.ts';
import { openSealProvider } from '../../../core/src/seal/open-seal-provider.ts';
import { openStore } from '../../../core/src/store/open-store.ts';
import type { TenantRecord } from '../../../core/src/store/records.ts';
import type { Store } from '../../../core/src/store/store.ts';
import { KeyHierarchy } from '../../../core/src/tenants/key-hierarchy.ts';
import { MetadataCache } from '../../../core/src/tenants/metadata-cache.ts';
import { defaultCrypto } from '../../../native/index.ts';
import { codeOf, DAY, type Fixture, type FixtureOptions, hierarchyFixture } from './fixture.ts';

const TTL = 1000;

/** Counts every method call on the raw store (reads, transactions, anything). */
function counting(raw: Store, calls: string[]): Store {
  return new Proxy(raw, {
    get(target, prop) {
      const v = Reflect.get(target, prop, target) as unknown;
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) => {
        calls.push(String(prop));
        return (v as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

describe('key hierarchy metadata cache', () => {
  const dirs: string[] = [];
  let f: Fixture | undefined;
  afterEach(async () => {
    await f?.close();
    f = undefined;
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  /** A fixture whose raw store counts its calls into the returned array. */
  async function counted(o: FixtureOptions = {}): Promise<{ f: Fixture; calls: string[] }> {
    const dir = mkdtempSync(join(tmpdir(), 'kcm-meta-'));
    dirs.push(dir);
    const calls: string[] = [];
    const fx = await hierarchyFixture({
      ...o,
      openRaw: async () => counting(await openStore({ kind: 'sqlite', path: join(dir, 'core.db') }), calls),
    });
    return { f: fx, calls };
  }

  it('a warm lease (and keyForEncrypt/keyForDecrypt) makes no store call; with the cache off it does', async () => {
    const c = await counted({ keys: { metadataCacheMs: TTL } });
    f = c.f;
    const k = c.f.keys;
    await k.tenants.create({ id: 'acme' });
    await k.services.create('acme', 'orders');
    await k.services.rotate('acme', 'orders');
    await k.leaseSet('acme', 'orders', [1]); // warm: handles and metadata
    c.calls.length = 0;
    for (let i = 0; i < 50; i++) {
      const set: L3LeaseSet = await k.leaseSet('acme', 'orders', [1], { actor: 'edge-a' });
      assert.deepEqual([set.active?.version, set.decryptOnly.map((v) => v.version)], [2, [1]]);
    }
    await k.services.keyForEncrypt('acme', 'orders');
    await k.services.keyForDecrypt('acme', 'orders', 1);
    assert.deepEqual(c.calls, []);

    const off = await counted({ keys: { metadataCacheMs: 0 } });
    try {
      await off.f.keys.tenants.create({ id: 'acme' });
      await off.f.keys.services.create('acme', 'orders');
      await off.f.keys.leaseSet('acme', 'orders', []);
      off.calls.length = 0;
      await off.f.keys.leaseSet('acme', 'orders', []);
      assert.deepEqual(off.calls.sort(), ['getL3Service', 'getTenant', 'listL3']);
    } finally {
      await off.f.close();
    }
  });

  it('every state change made by this Core is seen by the very next lease (long TTL, clock still)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kcm-meta-l1-'));
    dirs.push(dir);
    f = await hierarchyFixture({
      keys: { metadataCacheMs: 60_000 },
      l1Providers: { dev: { type: 'dev', keyFile: join(dir, 'l1.key') } },
    });
    const dev = openSealProvider({ type: 'dev', keyFile: join(dir, 'l1.key') }, { devMode: true }) as DevSealProvider;
    const devKeyId = dev.keyId;
    await dev.close();
    const k = f.keys;
    const lease = (want: number[] = []) => k.leaseSet('acme', 'orders', want);
    const shape = async (want: number[] = []) => {
      const s = await lease(want);
      return {
        active: s.active?.version ?? null,
        decrypt: s.decryptOnly.map((v) => v.version),
        min: s.minDecryptVersion,
        left: s.activeBudgetLeft,
      };
    };
    await k.tenants.create({ id: 'acme' });
    await k.services.create('acme', 'orders', { encryptionBudget: 1000, rotatePeriodMs: 60_000 });
    assert.deepEqual(await shape(), { active: 1, decrypt: [], min: 1, left: 1000 });

    await k.tenants.suspend('acme');
    assert.deepEqual(await shape([1]), { active: null, decrypt: [1], min: 1, left: null });
    await k.tenants.resume('acme');
    assert.equal((await shape()).active, 1);

    await k.services.rotate('acme', 'orders');
    assert.deepEqual(await shape([1]), { active: 2, decrypt: [1], min: 1, left: 1000 });

    await k.reportEncryptions('acme', 'orders', 2, 100);
    assert.equal((await shape()).left, 900);
    await k.services.updateSettings('acme', 'orders', { encryptionBudget: 500 });
    assert.equal((await shape()).left, 400);
    await k.reportEncryptions('acme', 'orders', 2, 350); // 450 ≥ 90 % of 500: budget rotation
    assert.deepEqual(await shape([1, 2]), { active: 3, decrypt: [1, 2], min: 1, left: 500 });

    await k.services.revokeVersion('acme', 'orders', 1);
    assert.deepEqual((await shape([1, 2])).decrypt, [2]);
    await k.services.setMinDecrypt('acme', 'orders', 3);
    assert.deepEqual(await shape([1, 2]), { active: 3, decrypt: [], min: 3, left: 500 });

    // Ticker: warm the cache at the due time first, so only the rotation can make v4 visible.
    f.clock.now += 60_000;
    assert.equal((await shape()).active, 3);
    assert.deepEqual(await k.tick(), ['rotated:acme/orders:v4']);
    assert.equal((await shape()).active, 4);

    // L1 link / unlink change the tenant record the lease path reads.
    assert.equal((await k.tenants.usable('acme')).t.keyMode, 'managed');
    await k.l1.link('acme', { l1: { provider: 'dev', keyId: devKeyId, region: '' }, keyMode: 'byok' });
    assert.equal((await k.tenants.usable('acme')).t.keyMode, 'byok');
    await k.l1.unlink('acme');
    assert.equal((await k.tenants.usable('acme')).t.keyMode, 'managed');

    // Grace end is evaluated per call against the clock, not cached.
    await k.tenants.suspend('acme', { graceDays: 30 });
    assert.equal((await shape()).active, null);
    f.clock.now += 30 * DAY - 1;
    await lease();
    f.clock.now += 1;
    assert.equal(await codeOf(lease()), 'tenant_grace_ended');
    await k.tenants.resume('acme');

    await k.tenants.revoke('acme');
    assert.equal(await codeOf(lease()), 'tenant_revoked');
    assert.equal(await codeOf(k.services.keyForDecrypt('acme', 'orders', 4)), 'tenant_revoked');
  });

  it("another hierarchy's changes on the same store are seen within keys.metadataCacheMs", async () => {
    f = await hierarchyFixture({ keys: { metadataCacheMs: TTL } });
    const fx = f;
    const b = new KeyHierarchy({
      crypto: defaultCrypto(),
      store: fx.store,
      root: fx.root,
      l1: fx.l1,
      bus: new KeyEventBus(),
      audit: fx.audit,
      now: () => fx.clock.now,
      config: keyHierarchyConfig({ metadataCacheMs: TTL }),
    });
    try {
      const a = fx.keys;
      await a.tenants.create({ id: 'acme' });
      await a.services.create('acme', 'orders');
      assert.equal((await a.leaseSet('acme', 'orders', [])).active?.version, 1);

      // Replica B rotates: A keeps v1 until its entry is TTL old, then sees v2.
      await b.services.rotate('acme', 'orders');
      fx.clock.now += TTL - 1;
      assert.equal((await a.leaseSet('acme', 'orders', [])).active?.version, 1, 'served from cache within the TTL');
      fx.clock.now += 1;
      assert.equal((await a.leaseSet('acme', 'orders', [])).active?.version, 2);

      // Replica B suspends.
      await b.tenants.suspend('acme');
      fx.clock.now += TTL;
      assert.equal((await a.leaseSet('acme', 'orders', [])).active, null);
      await b.tenants.resume('acme');
      fx.clock.now += TTL;
      assert.equal((await a.leaseSet('acme', 'orders', [])).active?.version, 2);

      // Replica B revokes: A refuses the tenant once the TTL has passed.
      await b.tenants.revoke('acme');
      fx.clock.now += TTL;
      assert.equal(await codeOf(a.leaseSet('acme', 'orders', [])), 'tenant_revoked');

      // A clock that goes back does not extend an entry.
      await a.tenants.create({ id: 'beta' });
      await a.services.create('beta', 'orders');
      await a.leaseSet('beta', 'orders', []);
      await b.tenants.suspend('beta');
      fx.clock.now -= 1;
      assert.equal((await a.leaseSet('beta', 'orders', [])).active, null);
    } finally {
      b.wipe();
    }
  });

  it('MetadataCache: reads overtaken by an invalidation are not stored; TTL 0 stores nothing; bounded; config bounds', async () => {
    const rec = (id: string, state: TenantRecord['state'] = 'ACTIVE') => ({ id, state }) as unknown as TenantRecord;
    const m = new MetadataCache(TTL, 2);
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const slow = m.loadTenant('acme', 0, async () => {
      await gate;
      return rec('acme', 'ACTIVE');
    });
    m.invalidateTenant('acme'); // a write committed while the read was in flight
    release();
    assert.equal((await slow)?.state, 'ACTIVE', 'the caller still gets what it read');
    assert.equal(m.tenant('acme', 0), undefined, 'but it is not cached');

    await m.loadTenant('acme', 0, async () => rec('acme'));
    assert.ok(Object.isFrozen(m.tenant('acme', 0)));
    assert.equal(m.tenant('acme', TTL), undefined, 'expired at exactly the TTL');
    for (const id of ['a', 'b', 'c']) await m.loadTenant(id, 0, async () => rec(id));
    assert.deepEqual(
      ['a', 'b', 'c'].map((id) => m.tenant(id, 0)?.id),
      [undefined, 'b', 'c'],
    );
    await m.loadService('a', 's', 0, async () => ({ svc: {} as never, versions: [] }));
    m.invalidateTenant('a');
    assert.equal(m.service('a', 's', 0), undefined, 'a tenant invalidation drops its services');

    const off = new MetadataCache(0, 10);
    await off.loadTenant('acme', 0, async () => rec('acme'));
    assert.equal(off.tenant('acme', 0), undefined);
    assert.equal(keyHierarchyConfig({}).metadataCacheMs, 1000);
    assert.equal(keyHierarchyConfig({ metadataCacheMs: 0 }).metadataCacheMs, 0);
    for (const bad of [-1, 60_001, 1.5, '1000'])
      assert.throws(() => keyHierarchyConfig({ metadataCacheMs: bad }), /keys.metadataCacheMs/);
    assert.throws(() => new MetadataCache(-1, 1), RangeError);
    assert.throws(() => new MetadataCache(1, 0), RangeError);
  });
});
