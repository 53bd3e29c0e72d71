/**
 * IVK lifecycle (ADR-301–304) on a real SQLite store with a test clock:
 * scheduled, volume and emergency rotation; GRACE expiry to DEPRECATED with
 * eviction from memory; on-demand unwrap of DEPRECATED versions; REVOKED and
 * hard-expired versions refused; delete refused while an L2 key uses it.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { KcmError } from '../../../common/src/errors.ts';
import { MemoryAuditSink } from '../../../core/src/audit/audit-sink.ts';
import { ivkPolicy } from '../../../core/src/ivk/ivk-policy.ts';
import { RootOfTrust } from '../../../core/src/root/root-of-trust.ts';
import { IntegrityStore } from '../../../core/src/store/integrity-store.ts';
import { openStore } from '../../../core/src/store/open-store.ts';
import type { Store } from '../../../core/src/store/store.ts';
import { defaultCrypto } from '../../../native/index.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

function code(err: unknown): string {
  return err instanceof KcmError ? err.code : String(err);
}

describe('IVK manager', () => {
  let dir: string;
  let raw: Store;
  let clock: number;
  let root: RootOfTrust;
  let store: IntegrityStore;
  const audit = new MemoryAuditSink();
  const crypto = defaultCrypto();

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kcm-ivk-'));
    raw = await openStore({ kind: 'sqlite', path: join(dir, 'core.db') });
    clock = Date.UTC(2026, 0, 1);
    store = new IntegrityStore(raw);
    root = new RootOfTrust({
      crypto,
      store,
      region: 'eu-1',
      sealProvider: null,
      ivkPolicy: ivkPolicy({ rotationPeriodMs: 30 * DAY, graceMs: 2 * HOUR, maxWraps: 3, hardExpiryMs: 400 * DAY }),
      audit,
      now: () => clock,
    });
    await root.load();
    await root.init({ threshold: 2, shareCount: 3 });
  });

  afterEach(async () => {
    root.seal('test');
    await raw.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Stores a tenant's L2 key wrapped under the ACTIVE IVK, as tenant onboarding does. */
  async function addL2(tenant: string): Promise<{ probe: Buffer }> {
    const l2 = crypto.generateKey();
    const probe = l2.seal(Buffer.from(tenant), Buffer.alloc(0));
    await store.transaction(async (tx) => {
      await root.ivk().insertL2(tx, l2, tenant, 1, clock);
    });
    l2.destroy();
    return { probe };
  }

  async function opensProbe(tenant: string, probe: Buffer): Promise<void> {
    const record = await store.getL2(tenant, 1);
    assert.ok(record);
    const l2 = await root.ivk().unwrapL2(record);
    assert.equal(l2.open(probe, Buffer.alloc(0)).toString(), tenant);
    l2.destroy();
  }

  it('starts with v1 ACTIVE in memory', () => {
    const [v1] = root.ivk().list();
    assert.equal(v1?.version, 1);
    assert.equal(v1?.state, 'ACTIVE');
    assert.equal(v1?.inMemory, true);
    assert.equal(v1?.hardExpiry, clock + 400 * DAY);
  });

  it('rotates on schedule, then retires GRACE to DEPRECATED after the grace period', async () => {
    const ivk = root.ivk();
    clock += 29 * DAY;
    assert.deepEqual(await ivk.tick(), []);
    clock += DAY;
    assert.deepEqual(await ivk.tick(), ['rotated:scheduled']);
    assert.deepEqual(
      ivk.list().map((v) => [v.version, v.state, v.inMemory]),
      [
        [2, 'ACTIVE', true],
        [1, 'GRACE', true],
      ],
    );
    clock += 2 * HOUR - 1;
    assert.deepEqual(await ivk.tick(), []);
    clock += 1;
    assert.deepEqual(await ivk.tick(), ['deprecated:v1']);
    assert.deepEqual(
      ivk.list().map((v) => [v.version, v.state, v.inMemory]),
      [
        [2, 'ACTIVE', true],
        [1, 'DEPRECATED', false],
      ],
    );
    assert.ok(audit.events.some((e) => e.action === 'ivk.rotate.scheduled'));
    assert.ok(audit.events.some((e) => e.action === 'ivk.deprecate'));
  });

  it('rotates by emergency at once, keeping the old version for decryption', async () => {
    const v2 = await root.ivk().rotate('emergency');
    assert.equal(v2.version, 2);
    assert.equal(root.ivk().activeVersion, 2);
    assert.equal(root.status().ivkVersion, 2);
  });

  it('rotates by volume once a version has wrapped maxWraps L2 keys', async () => {
    await addL2('t1');
    await addL2('t2');
    assert.deepEqual(await root.ivk().tick(), []);
    await addL2('t3');
    assert.equal(root.ivk().list()[0]?.wraps, 3);
    assert.deepEqual(await root.ivk().tick(), ['rotated:volume']);
    assert.equal(root.ivk().activeVersion, 2);
    await addL2('t4');
    assert.equal((await store.getL2('t4', 1))?.ivkVersion, 2);
  });

  it('unwraps L2 keys under GRACE (in memory) and DEPRECATED (loaded on demand) versions', async () => {
    const { probe } = await addL2('acme');
    await root.ivk().rotate('emergency');
    await opensProbe('acme', probe);
    clock += 2 * HOUR;
    await root.ivk().tick();
    assert.equal(
      root
        .ivk()
        .list()
        .find((v) => v.version === 1)?.state,
      'DEPRECATED',
    );
    await opensProbe('acme', probe);
    assert.equal(
      root
        .ivk()
        .list()
        .find((v) => v.version === 1)?.inMemory,
      false,
      'on-demand load is not cached',
    );
  });

  it('refuses REVOKED and hard-expired versions, and revoking the ACTIVE one', async () => {
    const { probe } = await addL2('acme');
    await assert.rejects(root.ivk().revoke(1), (e) => code(e) === 'store_conflict');
    await root.ivk().rotate('emergency');
    await opensProbe('acme', probe);
    clock += 400 * DAY;
    await assert.rejects(opensProbe('acme', probe), (e) => code(e) === 'key_destroyed');
    clock -= 400 * DAY;
    await root.ivk().revoke(1);
    await assert.rejects(opensProbe('acme', probe), (e) => code(e) === 'key_destroyed');
  });

  it('refuses to delete a version that still wraps an L2 key, or that is ACTIVE/GRACE', async () => {
    await addL2('acme');
    await assert.rejects(root.ivk().delete(1), (e) => code(e) === 'store_conflict');
    await root.ivk().rotate('emergency');
    await assert.rejects(
      root.ivk().delete(1),
      (e) => code(e) === 'store_conflict' && /GRACE/.test((e as Error).message),
    );
    clock += 2 * HOUR;
    await root.ivk().tick();
    await assert.rejects(
      root.ivk().delete(1),
      (e) => code(e) === 'store_conflict' && /still wraps 1 L2/.test((e as Error).message),
    );
    await assert.rejects(root.ivk().delete(9), (e) => code(e) === 'store_not_found');
    await root.ivk().rotate('emergency');
    clock += 2 * HOUR;
    await root.ivk().tick();
    await root.ivk().delete(2);
    assert.deepEqual(
      root
        .ivk()
        .list()
        .map((v) => v.version),
      [3, 1],
    );
  });

  it('is refused while sealed and comes back verified after unseal', async () => {
    await root.ivk().rotate('emergency');
    root.seal('test');
    assert.throws(
      () => root.ivk(),
      (e) => code(e) === 'sealed',
    );
    await assert.rejects(store.listIvks(), (e) => code(e) === 'sealed');
  });
});
