/**
 * Record integrity end to end (issue 3, item 2): a Core (startCore in this
 * process, temp SQLite, in-memory audit sink, admin API over real HTTP) is
 * initialised and rotated twice (v1 GRACE, v2 GRACE, v3 ACTIVE), sealed, and
 * then a row is edited directly in the SQLite file. The unseal must refuse
 * with `record_tampered`, a `store.integrity` failure must be audited, and
 * the Core must stay sealed (the tampered record is never used). Each case
 * restores the rows afterwards and shows the Core unseals again.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { MemoryAuditSink } from '../../../core/src/audit/audit-sink.ts';
import { coreConfig } from '../../../core/src/config.ts';
import { type CoreService, startCore } from '../../../core/src/core-service.ts';
import { cleanupAll, httpJson, type Reply, tempDir } from './core-process.ts';

after(cleanupAll);

interface IvkRow {
  version: number;
  state: string;
  retired_at: number | null;
  wraps: number;
  wrapped: Buffer;
  mac: Buffer;
}

describe('e2e: tampered store rows are refused (SQLite, in-process Core)', () => {
  const dataDir = tempDir();
  const audit = new MemoryAuditSink();
  let core: CoreService;
  let db: Database.Database;
  let shares: string[] = [];
  /** ivk_versions as it was after init, after the first rotation, after the second. */
  const snapshots: IvkRow[][] = [];

  const api = (method: string, path: string, body?: unknown): Promise<Reply> =>
    httpJson(`${core.admin.url}${path}`, method, body);
  const readIvks = () => db.prepare('SELECT * FROM ivk_versions ORDER BY version').all() as IvkRow[];
  const writeIvks = (rowsToWrite: IvkRow[]) =>
    db.transaction(() => {
      db.prepare('DELETE FROM ivk_versions').run();
      const ins = db.prepare(
        'INSERT INTO ivk_versions (version, state, created_at, retired_at, hard_expiry, wraps, wrapped, mac) ' +
          'VALUES (@version, @state, @created_at, @retired_at, @hard_expiry, @wraps, @wrapped, @mac)',
      );
      for (const r of rowsToWrite) ins.run(r);
    })();
  const versions = async () => {
    const r = await api('GET', '/v1/ivk');
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return r.body.versions.map((v: { version: number; state: string }) => `v${v.version} ${v.state}`);
  };
  const unsealWith = async (): Promise<Reply> => {
    let last: Reply = { status: 0, body: null };
    for (const share of shares.slice(0, 2)) last = await api('POST', '/v1/sys/unseal', { share });
    return last;
  };

  before(async () => {
    const config = coreConfig({}, { KCM_DEV: '1', KCM_DATA_DIR: dataDir, KCM_LISTEN: '127.0.0.1:0' });
    core = await startCore(config, { audit, log: () => {} });
    const init = await api('POST', '/v1/sys/init', { threshold: 2, shares: 3 });
    assert.equal(init.status, 200);
    shares = init.body.shares.map((s: { payload: string }) => s.payload);
    db = new Database(join(dataDir, 'core.db'));
    snapshots.push(readIvks());
    for (let i = 0; i < 2; i++) {
      assert.equal((await api('POST', '/v1/ivk/rotate', {})).status, 200);
      snapshots.push(readIvks());
    }
    assert.deepEqual(await versions(), ['v3 ACTIVE', 'v2 GRACE', 'v1 GRACE']);
  });

  after(async () => {
    db?.close();
    await core?.close();
  });

  /**
   * Seals, applies `tamper` to the file, and checks the unseal is refused with
   * record_tampered, audited as store.integrity naming `resource`, and the Core
   * stays sealed; then restores the rows and unseals.
   */
  async function refusedAtUnseal(tamper: (rows: IvkRow[]) => void, resource: RegExp): Promise<void> {
    assert.equal((await api('POST', '/v1/sys/seal', {})).body.state, 'sealed');
    const good = readIvks();
    const cluster = db.prepare('SELECT * FROM cluster').get() as Record<string, unknown>;
    const from = audit.events.length;
    tamper(good.map((r) => ({ ...r, wrapped: Buffer.from(r.wrapped), mac: Buffer.from(r.mac) })));
    try {
      const r = await unsealWith();
      assert.equal(r.status, 500, JSON.stringify(r.body));
      assert.equal(r.body.error.code, 'record_tampered');
      assert.doesNotMatch(JSON.stringify(r.body), /v\d|ivk_versions/, 'no detail leaks to the client');
      assert.equal(core.root.state, 'sealed', 'the Core stays sealed');
      const ivk = await api('GET', '/v1/ivk');
      assert.deepEqual([ivk.status, ivk.body.error.code], [503, 'sealed']);
      const events = audit.events.slice(from);
      const integrity = events.filter((e) => e.action === 'store.integrity');
      assert.equal(integrity.length, 1, JSON.stringify(events));
      assert.equal(integrity[0]?.outcome, 'failure');
      assert.equal(integrity[0]?.reason, 'record_tampered');
      assert.match(integrity[0]?.resource ?? '', resource);
      assert.ok(
        events.some((e) => e.action === 'core.unseal' && e.outcome === 'failure' && e.reason === 'record_tampered'),
      );
    } finally {
      writeIvks(good);
      db.prepare('UPDATE cluster SET manifest = ?, mac = ?').run(cluster.manifest, cluster.mac);
    }
    assert.equal((await unsealWith()).body.state, 'active', 'restored rows unseal again');
    assert.deepEqual(await versions(), ['v3 ACTIVE', 'v2 GRACE', 'v1 GRACE']);
  }

  const update = (version: number, set: Partial<IvkRow>) => {
    const cols = Object.keys(set).map((k) => `${k} = @${k}`);
    db.prepare(`UPDATE ivk_versions SET ${cols.join(', ')} WHERE version = @version`).run({ ...set, version });
  };

  it('a flipped byte in a GRACE version’s wrapped blob', async () => {
    await refusedAtUnseal((rows) => {
      const w = (rows[1] as IvkRow).wrapped;
      w[w.length - 5] = (w[w.length - 5] as number) ^ 0x01;
      update(2, { wrapped: w });
    }, /^ivk_versions v2$/);
  });

  it('the wrapped blobs of v2 and v3 swapped (MACs left in place)', async () => {
    await refusedAtUnseal((rows) => {
      update(2, { wrapped: (rows[2] as IvkRow).wrapped });
      update(3, { wrapped: (rows[1] as IvkRow).wrapped });
    }, /^ivk_versions v[23]$/);
  });

  it('v1 and v2 swapped whole (wrapped blob and its MAC moved together)', async () => {
    await refusedAtUnseal((rows) => {
      update(1, { wrapped: (rows[1] as IvkRow).wrapped, mac: (rows[1] as IvkRow).mac });
      update(2, { wrapped: (rows[0] as IvkRow).wrapped, mac: (rows[0] as IvkRow).mac });
    }, /^ivk_versions v[12]$/);
  });

  it('a state changed GRACE → ACTIVE', async () => {
    await refusedAtUnseal(() => update(2, { state: 'ACTIVE' }), /^ivk_versions v2$/);
  });

  it('the wraps counter of the ACTIVE version changed (volume trigger)', async () => {
    await refusedAtUnseal(() => update(3, { wraps: 7 }), /^ivk_versions v3$/);
  });

  it('the MAC of the ACTIVE version deleted (empty)', async () => {
    await refusedAtUnseal(() => update(3, { mac: Buffer.alloc(0) }), /^ivk_versions v3$/);
  });

  it('the cluster record edited (manifest)', async () => {
    await refusedAtUnseal(() => {
      db.prepare('UPDATE cluster SET manifest = replace(manifest, \'"threshold":2\', \'"threshold":1\')').run();
    }, /^cluster kcm-/);
  });

  let afterRefusedRotation = { store: [] as string[], api: [] as string[] };
  let replayAudited = false;

  it('tampered while active: the next rotation is refused with record_tampered and audited', async () => {
    assert.equal(core.root.state, 'active');
    const good = readIvks();
    const from = audit.events.length;
    const w = Buffer.from((good[0] as IvkRow).wrapped);
    w[w.length - 1] = (w[w.length - 1] as number) ^ 0x80;
    update(1, { wrapped: w });
    const r = await api('POST', '/v1/ivk/rotate', {});
    assert.deepEqual([r.status, r.body.error?.code], [500, 'record_tampered']);
    assert.ok(audit.events.slice(from).some((e) => e.action === 'store.integrity' && e.resource === 'ivk_versions v1'));
    afterRefusedRotation = {
      store: readIvks()
        .map((x) => `v${x.version} ${x.state}`)
        .reverse(),
      api: await versions(),
    };
    writeIvks(good);
  });

  it('…and the refused rotation is not committed (store and served view agree)', () => {
    assert.deepEqual(afterRefusedRotation.store, afterRefusedRotation.api);
  });

  it('replay of v2’s older, validly MAC’d ACTIVE row next to v3 ACTIVE: unseal refused (two ACTIVE versions)', async () => {
    assert.equal((await api('POST', '/v1/sys/seal', {})).body.state, 'sealed');
    const good = readIvks();
    const from = audit.events.length;
    writeIvks([...(snapshots[1] as IvkRow[]), good[2] as IvkRow]);
    const r = await unsealWith();
    assert.deepEqual([r.status, r.body.error?.code], [500, 'record_tampered']);
    assert.equal(core.root.state, 'sealed');
    replayAudited = audit.events.slice(from).some((e) => e.action === 'store.integrity');
    writeIvks(good);
    assert.equal((await unsealWith()).body.state, 'active');
  });

  it('…and is audited as store.integrity', () => {
    assert.ok(replayAudited);
  });

  it('rollback: v3 deleted and v2’s older ACTIVE row replayed is detected (IVK head)', async () => {
    assert.equal((await api('POST', '/v1/sys/seal', {})).body.state, 'sealed');
    const good = readIvks();
    writeIvks(snapshots[1] as IvkRow[]);
    try {
      const r = await unsealWith();
      assert.equal(
        r.body.error?.code,
        'record_tampered',
        `unsealed with ${JSON.stringify(await versions().catch(() => []))}`,
      );
    } finally {
      await api('POST', '/v1/sys/seal', {});
      writeIvks(good);
      assert.equal((await unsealWith()).body.state, 'active');
    }
  });
});
