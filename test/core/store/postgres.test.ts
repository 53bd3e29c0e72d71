/**
 * PostgresStore: the store contract against a throwaway PostgreSQL cluster
 * (one per file, one schema per test), plus PostgreSQL-specific behaviour:
 * serialization retries, concurrent migration by replicas, unreachable server.
 * Skips with a reason when PostgreSQL is not installed, unless CI=true.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { MIGRATIONS } from '../../../core/src/store/migrations.ts';
import { openStore } from '../../../core/src/store/open-store.ts';
import { PostgresStore, type PostgresStoreOptions } from '../../../core/src/store/postgres/postgres-store.ts';
import type { Store } from '../../../core/src/store/store.ts';
import { type PgServer, postgresSkipReason, startPostgres } from '../../support/postgres.ts';
import { runStoreContract } from './contract.ts';
import { ivkRecord } from './fixtures.ts';
import { gate, rejectsWith, type StoreHarness } from './harness.ts';
import { runIntegrityContract } from './integrity-contract.ts';

const skip = postgresSkipReason() ?? false;
let server: PgServer | undefined;
let admin: pg.Pool | undefined;
let schemaCounter = 0;

function connectionString(): string {
  if (server === undefined) throw new Error('PostgreSQL test server is not running');
  return server.connectionString;
}

/** A fresh schema name, and a cleanup that drops it. */
function freshSchema(): { schema: string; drop: () => Promise<void> } {
  const schema = `t${process.pid}_${++schemaCounter}`;
  return { schema, drop: async () => void (await admin?.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)) };
}

async function makeHarness(): Promise<StoreHarness> {
  const { schema, drop } = freshSchema();
  const handles: Store[] = [];
  const open = (o: Partial<PostgresStoreOptions> = {}): PostgresStore => {
    const st = PostgresStore.open({ connectionString: connectionString(), schema, ...o });
    handles.push(st);
    return st;
  };
  const store = open();
  await store.migrate();
  return {
    store,
    reopen: async (o) => open(o?.migrations ? { migrations: o.migrations } : {}),
    cleanup: async () => {
      for (const st of handles) await st.close();
      await drop();
    },
    sql: async (statements) => {
      const client = await admin?.connect();
      if (client === undefined) throw new Error('PostgreSQL test server is not running');
      try {
        await client.query(`BEGIN; SET LOCAL search_path TO "${schema}"; ${statements}; COMMIT`);
      } catch (e) {
        await client.query('ROLLBACK');
        throw e;
      } finally {
        client.release();
      }
    },
  };
}

describe('PostgresStore', { skip }, () => {
  before(async () => {
    server = await startPostgres();
    admin = new pg.Pool({ connectionString: server.connectionString, max: 2 });
  });
  after(async () => {
    await admin?.end();
    await server?.stop();
  });

  it('started a throwaway cluster', (t) => {
    assert.ok(server);
    t.diagnostic(`PostgreSQL initdb + start: ${server.startupMs.toFixed(0)} ms`);
  });

  runStoreContract('postgres', makeHarness);
  runIntegrityContract('postgres', makeHarness);

  it('retries a transaction that hits a serialization failure, and gives up after maxAttempts', async () => {
    const h = await makeHarness();
    const impatient = PostgresStore.open({
      connectionString: connectionString(),
      schema: (h.store as PostgresStore).schema,
      maxAttempts: 1,
    });
    try {
      await h.store.transaction((tx) => tx.insertIvk(ivkRecord(1)));
      // T1 reads, T2 updates and commits, T1 updates: 40001 for T1.
      const conflict = async (store: Store): Promise<number> => {
        let runs = 0;
        const read = gate();
        const t2done = gate();
        const t1 = store.transaction(async (tx) => {
          runs++;
          const cur = await tx.getIvk(1);
          assert.ok(cur);
          if (runs === 1) {
            read.open();
            await t2done.promise;
          }
          await tx.updateIvk({ ...cur, wraps: cur.wraps + 1 });
        });
        await read.promise;
        await h.store.transaction(async (tx) => {
          const cur = await tx.getIvk(1);
          assert.ok(cur);
          await tx.updateIvk({ ...cur, wraps: cur.wraps + 10 });
        });
        t2done.open();
        await t1;
        return runs;
      };
      assert.equal(await conflict(h.store), 2, 'fn ran twice');
      assert.equal((await h.store.getIvk(1))?.wraps, 11);
      await rejectsWith(conflict(impatient), 'store_unavailable');
      assert.equal((await h.store.getIvk(1))?.wraps, 21);
    } finally {
      await impatient.close();
      await h.cleanup();
    }
  });

  it('replicas migrating one fresh schema together both succeed', async () => {
    const { schema, drop } = freshSchema();
    const replicas = [1, 2, 3].map(() => PostgresStore.open({ connectionString: connectionString(), schema }));
    try {
      assert.deepEqual(
        await Promise.all(replicas.map((r) => r.migrate())),
        [1, 2, 3].map(() => MIGRATIONS.length),
      );
    } finally {
      for (const r of replicas) await r.close();
      await drop();
    }
  });

  it('openStore opens and migrates (default schema public)', async () => {
    const store = await openStore({ kind: 'postgres', connectionString: connectionString() });
    try {
      assert.equal(store.dialect, 'postgres');
      assert.equal(await store.migrate(), MIGRATIONS.length);
      assert.deepEqual(await store.listIvks(), []);
    } finally {
      await store.close();
    }
  });

  it('maps an unreachable server to store_unavailable and a bad schema name to invalid_config', async () => {
    const port = server?.port ?? 1;
    const dead = `postgresql://postgres@127.0.0.1:${port === 1 ? 2 : 1}/postgres`;
    await rejectsWith(openStore({ kind: 'postgres', connectionString: dead }), 'store_unavailable');
    await rejectsWith(openStore({ kind: 'postgres', connectionString: dead, schema: 'Bad"Name' }), 'invalid_config');
  });
});
