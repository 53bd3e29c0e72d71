/**
 * Durability of init and IVK rotation (issue 3, item 7): a real `kcm core`
 * process SIGKILLs itself at each crash point of core/src/fault/crash-point.ts
 * (KCM_TEST_CRASH_AT); it is restarted without the crash point and unsealed,
 * and what was committed is there, what was not is not, and every record
 * verifies (no record_tampered, no store.integrity audit). retire:before-commit
 * runs in clock-core.ts (same startCore, clock shifted past the GRACE period).
 * Rotation crashes run on SQLite and once on a throwaway PostgreSQL.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import pg from 'pg';
import { type PgServer, postgresSkipReason, startPostgres } from '../../support/postgres.ts';
import { CoreChild, cleanupAll, type Reply, shuffled, submitShares, tempDir } from './core-process.ts';

after(cleanupAll);

const HOUR = 3_600_000;

interface Env {
  [k: string]: string | undefined;
}

/** The request must fail (the process died under it) and the process must have died by SIGKILL. */
async function diesDuring(core: CoreChild, request: Promise<Reply>): Promise<void> {
  await assert.rejects(request, /socket hang up|ECONNRESET|EPIPE/);
  const exit = await core.exited;
  assert.equal(exit.signal, 'SIGKILL', core.output);
}

async function unseal(core: CoreChild, shares: string[]): Promise<void> {
  const { last } = await submitShares(core, shuffled(shares).slice(0, 3));
  assert.equal(last.body.state, 'active');
}

/** [version, state] of every IVK, newest first; the list is read from verified records. */
async function ivks(core: CoreChild): Promise<[number, string][]> {
  const r = await core.api('GET', '/v1/ivk');
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body.versions.map((v: { version: number; state: string }) => [v.version, v.state]);
}

function noIntegrityFailures(dataDir: string): void {
  const log = join(dataDir, 'audit.jsonl');
  const text = existsSync(log) ? readFileSync(log, 'utf8') : '';
  assert.doesNotMatch(text, /store\.integrity|record_tampered/);
}

/** Row counts of the SQLite file (read-only, after the process is gone). */
function rows(dataDir: string): { cluster: number; ivk: number } {
  const db = new Database(join(dataDir, 'core.db'), { readonly: true });
  try {
    const n = (t: string) => (db.prepare(`SELECT count(*) AS n FROM ${t}`).get() as { n: number }).n;
    return { cluster: n('cluster'), ivk: n('ivk_versions') };
  } finally {
    db.close();
  }
}

async function initShares(core: CoreChild): Promise<string[]> {
  const r = await core.api('POST', '/v1/sys/init', { threshold: 3, shares: 5 });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body.shares.map((s: { payload: string }) => s.payload);
}

/** Crash during an emergency rotation, restart, unseal, check; returns nothing, throws on any difference. */
async function rotateCrash(point: 'rotate:before-commit' | 'rotate:after-commit', dataDir: string, env: Env = {}) {
  let core = await CoreChild.start({ dataDir, env: { ...env, KCM_TEST_CRASH_AT: point } });
  const shares = await initShares(core);
  assert.deepEqual(await ivks(core), [[1, 'ACTIVE']]);
  await diesDuring(core, core.api('POST', '/v1/ivk/rotate', {}));
  core = await CoreChild.start({ dataDir, env });
  assert.equal((await core.status()).state, 'sealed');
  await unseal(core, shares);
  if (point === 'rotate:before-commit') {
    assert.deepEqual(await ivks(core), [[1, 'ACTIVE']], 'the uncommitted v2 is gone and v1 is still ACTIVE');
  } else {
    assert.deepEqual(
      await ivks(core),
      [
        [2, 'ACTIVE'],
        [1, 'GRACE'],
      ],
      'the committed rotation survived',
    );
    assert.equal((await core.status()).ivkVersion, 2);
  }
  const next = await core.api('POST', '/v1/ivk/rotate', {});
  assert.equal(next.status, 200, JSON.stringify(next.body));
  assert.equal(next.body.version, point === 'rotate:before-commit' ? 2 : 3);
  assert.equal((await core.stop()).code, 0);
  noIntegrityFailures(dataDir);
}

describe('e2e durability: SIGKILL at crash points (SQLite)', () => {
  it('init:before-commit → restart: uninitialized, nothing stored, init works again', async () => {
    const dataDir = tempDir();
    let core = await CoreChild.start({ dataDir, env: { KCM_TEST_CRASH_AT: 'init:before-commit' } });
    await diesDuring(core, core.api('POST', '/v1/sys/init', { threshold: 3, shares: 5 }));
    assert.deepEqual(rows(dataDir), { cluster: 0, ivk: 0 });
    core = await CoreChild.start({ dataDir });
    const s = await core.status();
    assert.deepEqual([s.state, s.clusterId], ['uninitialized', null]);
    assert.equal((await core.api('GET', '/v1/ivk')).body.error.code, 'not_initialized');
    await initShares(core);
    assert.deepEqual(await ivks(core), [[1, 'ACTIVE']]);
    assert.equal((await core.stop()).code, 0);
  });

  it('init:after-commit → restart: sealed and pending; a re-init with abandonPending replaces it', async () => {
    const dataDir = tempDir();
    let core = await CoreChild.start({ dataDir, env: { KCM_TEST_CRASH_AT: 'init:after-commit' } });
    await diesDuring(core, core.api('POST', '/v1/sys/init', { threshold: 3, shares: 5 }));
    assert.deepEqual(rows(dataDir), { cluster: 1, ivk: 1 });
    core = await CoreChild.start({ dataDir });
    const s = await core.status();
    assert.deepEqual([s.state, s.initState], ['sealed', 'pending']);
    const lost = s.clusterId as string;
    // The shares died with the process: a plain init is refused (it would be an accident) ...
    const again = await core.api('POST', '/v1/sys/init', { threshold: 3, shares: 5 });
    assert.deepEqual([again.status, again.body.error.code], [409, 'already_initialized']);
    assert.match(again.body.error.message, /abandonPending/);
    // ... and an explicit re-init abandons the pending cluster in the same transaction.
    const redo = await core.api('POST', '/v1/sys/init', { threshold: 3, shares: 5, abandonPending: true });
    assert.equal(redo.status, 200, JSON.stringify(redo.body));
    assert.notEqual(redo.body.clusterId, lost);
    assert.deepEqual(rows(dataDir), { cluster: 1, ivk: 1 });
    assert.deepEqual(await ivks(core), [[1, 'ACTIVE']]);
    const confirmed = await core.api('POST', '/v1/sys/init/confirm', {});
    assert.equal(confirmed.body.initState, 'confirmed');
    const refused = await core.api('POST', '/v1/sys/init', { abandonPending: true });
    assert.deepEqual([refused.status, refused.body.error.code], [409, 'already_initialized']);
    assert.equal((await core.stop()).code, 0);
  });

  it('rotate:before-commit → restart + unseal: only v1 ACTIVE; the next rotation makes v2', async () => {
    const dataDir = tempDir();
    await rotateCrash('rotate:before-commit', dataDir);
    assert.deepEqual(rows(dataDir), { cluster: 1, ivk: 2 });
  });

  it('rotate:after-commit → restart + unseal: v2 ACTIVE, v1 GRACE, every record verifies', async () => {
    const dataDir = tempDir();
    await rotateCrash('rotate:after-commit', dataDir);
    assert.deepEqual(rows(dataDir), { cluster: 1, ivk: 3 });
  });

  it('retire:before-commit (GRACE → DEPRECATED by the ticker, clock +2 h) → v1 still GRACE; retried later', async () => {
    const dataDir = tempDir();
    const config = { tickMs: 20, ivk: { graceMs: HOUR } };
    let core = await CoreChild.start({ dataDir, config, clock: true });
    const shares = await initShares(core);
    assert.equal((await core.api('POST', '/v1/ivk/rotate', {})).status, 200);
    assert.equal((await core.stop()).code, 0);

    const later = { KCM_TEST_CLOCK_OFFSET_MS: String(2 * HOUR) };
    core = await CoreChild.start({
      dataDir,
      config,
      clock: true,
      env: { ...later, KCM_TEST_CRASH_AT: 'retire:before-commit' },
    });
    // The ticker retires v1 right after the M-th share: the process may die before or after answering it.
    await submitShares(core, shares.slice(0, 2));
    await core.api('POST', '/v1/sys/unseal', { share: shares[2] }).catch(() => undefined);
    assert.equal((await core.exited).signal, 'SIGKILL', core.output);

    core = await CoreChild.start({ dataDir, config, clock: true });
    await unseal(core, shares);
    assert.deepEqual(
      await ivks(core),
      [
        [2, 'ACTIVE'],
        [1, 'GRACE'],
      ],
      'the uncommitted DEPRECATED is gone',
    );
    assert.equal((await core.stop()).code, 0);

    core = await CoreChild.start({ dataDir, config, clock: true, env: later });
    await unseal(core, shares);
    const deadline = Date.now() + 5_000;
    while ((await ivks(core))[1]?.[1] !== 'DEPRECATED' && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    const list = (await core.api('GET', '/v1/ivk')).body.versions;
    assert.deepEqual(
      list.map((v: { version: number; state: string; inMemory: boolean }) => [v.version, v.state, v.inMemory]),
      [
        [2, 'ACTIVE', true],
        [1, 'DEPRECATED', false],
      ],
    );
    assert.equal((await core.stop()).code, 0);
    noIntegrityFailures(dataDir);
  });
});

const pgSkip = postgresSkipReason();

describe('e2e durability: rotation crash points on PostgreSQL', { skip: pgSkip ?? false }, () => {
  let server: PgServer;
  let admin: pg.Client;

  before(async () => {
    server = await startPostgres();
    admin = new pg.Client({ connectionString: server.connectionString });
    await admin.connect();
  });
  after(async () => {
    await admin?.end();
    await server?.stop();
  });

  /** A fresh database on the throwaway server, as KCM_STORE_URL. */
  const database = async (name: string) => {
    await admin.query(`CREATE DATABASE ${name}`);
    return server.connectionString.replace(/\/postgres$/, `/${name}`);
  };

  for (const point of ['rotate:before-commit', 'rotate:after-commit'] as const) {
    it(`${point} on PostgreSQL (KCM_STORE_URL)`, async () => {
      const url = await database(point.replace(/[:-]/g, '_'));
      await rotateCrash(point, tempDir(), { KCM_STORE_URL: url });
      const db = new pg.Client({ connectionString: url });
      await db.connect();
      try {
        const { rows: r } = await db.query('SELECT version, state FROM ivk_versions ORDER BY version');
        const want =
          point === 'rotate:before-commit'
            ? [
                ['1', 'GRACE'],
                ['2', 'ACTIVE'],
              ]
            : [
                ['1', 'GRACE'],
                ['2', 'GRACE'],
                ['3', 'ACTIVE'],
              ];
        assert.deepEqual(
          r.map((x) => [String(x.version), x.state]),
          want,
        );
      } finally {
        await db.end();
      }
    });
  }
});
