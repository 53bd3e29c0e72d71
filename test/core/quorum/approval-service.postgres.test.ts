/**
 * ApprovalService on a real PostgreSQL store: every test gets a fresh schema
 * and two Store instances on it (two connection pools, like two Core
 * replicas), so concurrent approvals race inside the database. Skips with a
 * reason when PostgreSQL is not installed, unless CI=true.
 */
import { after, before, describe } from 'node:test';
import pg from 'pg';
import { IntegrityStore } from '../../../core/src/store/integrity-store.ts';
import { PostgresStore } from '../../../core/src/store/postgres/postgres-store.ts';
import { RecordMac } from '../../../core/src/store/record-mac.ts';
import { defaultCrypto } from '../../../native/index.ts';
import { type PgServer, postgresSkipReason, startPostgres } from '../../support/postgres.ts';
import { type QuorumEnv, runApprovalSuite } from './approval-suite.ts';

const skip = postgresSkipReason() ?? false;
let server: PgServer | undefined;
let admin: pg.Pool | undefined;
let counter = 0;

async function makeEnv(): Promise<QuorumEnv> {
  if (!server || !admin) throw new Error('PostgreSQL test server is not running');
  const schema = `q${process.pid}_${++counter}`;
  const raws = [0, 1].map(() => PostgresStore.open({ connectionString: server?.connectionString ?? '', schema }));
  await raws[0]?.migrate();
  const masterKey = defaultCrypto().generateKey();
  const stores = raws.map((raw) => {
    const s = new IntegrityStore(raw);
    s.setMac(new RecordMac(masterKey));
    return s;
  });
  return {
    stores,
    cleanup: async () => {
      for (const s of stores) s.setMac(null);
      masterKey.destroy();
      for (const raw of raws) await raw.close();
      await admin?.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    },
  };
}

describe('ApprovalService on PostgreSQL', { skip }, () => {
  before(async () => {
    server = await startPostgres();
    admin = new pg.Pool({ connectionString: server.connectionString, max: 2 });
  });
  after(async () => {
    await admin?.end();
    await server?.stop();
  });
  runApprovalSuite('postgres', makeEnv);
});
