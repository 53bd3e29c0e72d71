/**
 * The replicated store: PostgreSQL through a node-postgres Pool, every table
 * in one schema (default `public`; tests use one schema each).
 *
 * Transactions run `BEGIN ISOLATION LEVEL SERIALIZABLE` on one pooled client.
 * A serialization failure or deadlock (40001, 40P01), at any statement or at
 * COMMIT, rolls back and re-runs the whole `fn` (up to `maxAttempts` times,
 * with jittered exponential backoff), so `fn` must have no effects outside its
 * StoreTx. Reads outside a transaction are single autocommit statements on
 * the pool: they see committed data only. BIGINT comes back as text and is
 * parsed to a safe integer (row-codec.ts); BYTEA to Buffer.
 */
import pg from 'pg';
import {
  checkMigrations,
  MIGRATIONS,
  type Migration,
  pendingMigrations,
  postgresSchemaMigrations,
} from '../migrations.ts';
import { buildQueries, type Queries } from '../queries.ts';
import type { Row, SqlValue } from '../row-codec.ts';
import { DelegatingReader, SqlReader, SqlTx } from '../sql-ops.ts';
import type { Store, StoreReader, StoreTx } from '../store.ts';
import { storeError } from '../store-error.ts';
import { assertNotInTransaction, inTransactionScope, type SqlExecutor, TxExecutor } from '../tx-support.ts';
import { isSerializationFailure, mapPgError } from './pg-errors.ts';

export interface PostgresStoreOptions {
  /** libpq-style URL; alternatively (or in addition) connection fields in `pool`. */
  connectionString?: string;
  /** Extra pg Pool settings (max, ssl, …); `connectionString` above wins. */
  pool?: pg.PoolConfig;
  /** Schema holding the tables: lower-case identifier, default `public`; created by migrate(). */
  schema?: string;
  /** Attempts of a transaction that keeps failing serialization (default 10). */
  maxAttempts?: number;
  /** The migration list (default MIGRATIONS); tests pass a longer one to build a "newer" database. */
  migrations?: readonly Migration[];
}

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;
/** pg_advisory_xact_lock class for migrations: 'OKCM' as an int4. */
const MIGRATION_LOCK_CLASS = 0x4f4b434d;

/** FNV-1a of the schema name as an int4: the second key of the migration lock. */
function lockKey(schema: string): number {
  let h = 0x811c9dc5;
  for (const b of Buffer.from(schema)) h = Math.imul(h ^ b, 0x01000193);
  return h | 0;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Turns the `?` of queries.ts into `$1…` and names each text once, so each connection prepares it once. */
class StatementBook {
  readonly #byText = new Map<string, { name: string; text: string }>();

  get(sql: string): { name: string; text: string } {
    let s = this.#byText.get(sql);
    if (s === undefined) {
      let n = 0;
      s = { name: `okcm_${this.#byText.size}`, text: sql.replace(/\?/g, () => `$${++n}`) };
      this.#byText.set(sql, s);
    }
    return s;
  }
}

class PgExecutor implements SqlExecutor {
  readonly #target: pg.Pool | pg.PoolClient;
  readonly #book: StatementBook;

  constructor(target: pg.Pool | pg.PoolClient, book: StatementBook) {
    this.#target = target;
    this.#book = book;
  }

  async all(sql: string, params: readonly SqlValue[]): Promise<Row[]> {
    try {
      return (await this.#target.query<Row>({ ...this.#book.get(sql), values: [...params] })).rows;
    } catch (e) {
      throw mapPgError(e, 'postgres query');
    }
  }

  async run(sql: string, params: readonly SqlValue[]): Promise<number> {
    try {
      return (await this.#target.query({ ...this.#book.get(sql), values: [...params] })).rowCount ?? 0;
    } catch (e) {
      throw mapPgError(e, 'postgres write');
    }
  }
}

const ignoreClientError = (): void => {};

/** One statement outside the record operations (BEGIN, COMMIT, DDL); driver errors mapped. */
async function query(client: pg.PoolClient, op: string, sql: string, params: unknown[] = []): Promise<Row[]> {
  try {
    return (await client.query<Row>(sql, params)).rows;
  } catch (e) {
    throw mapPgError(e, op);
  }
}

export class PostgresStore extends DelegatingReader implements Store {
  readonly dialect = 'postgres' as const;
  readonly schema: string;
  readonly #pool: pg.Pool;
  readonly #quoted: string;
  readonly #queries: Queries;
  readonly #book = new StatementBook();
  readonly #readOps: SqlReader;
  readonly #maxAttempts: number;
  readonly #migrations: readonly Migration[];
  #closing: Promise<void> | undefined;

  private constructor(pool: pg.Pool, schema: string, maxAttempts: number, migrations: readonly Migration[]) {
    super();
    this.#pool = pool;
    this.schema = schema;
    this.#quoted = `"${schema}"`;
    this.#queries = buildQueries(`${this.#quoted}.`);
    this.#readOps = new SqlReader(new PgExecutor(pool, this.#book), this.#queries);
    this.#maxAttempts = maxAttempts;
    this.#migrations = migrations;
  }

  /**
   * Creates the pool (connections are made on first use); does not migrate.
   * Throws `invalid_config` for a bad option.
   */
  static open(options: PostgresStoreOptions): PostgresStore {
    const { connectionString, pool: poolConfig = {}, schema = 'public', maxAttempts = 10 } = options;
    const migrations = options.migrations ?? MIGRATIONS;
    if (!SCHEMA_NAME.test(schema)) {
      throw storeError(
        'invalid_config',
        `PostgresStore.open: schema must match ${SCHEMA_NAME}, got ${JSON.stringify(schema)}`,
      );
    }
    if (!Number.isSafeInteger(maxAttempts) || maxAttempts < 1) {
      throw storeError('invalid_config', `PostgresStore.open: maxAttempts must be an integer >= 1, got ${maxAttempts}`);
    }
    checkMigrations(migrations);
    const pool = new pg.Pool({
      connectionTimeoutMillis: 10_000,
      application_name: 'openkcm-core',
      ...poolConfig,
      ...(connectionString === undefined ? {} : { connectionString }),
    });
    // An idle client whose connection died: pg has already dropped it and the
    // next checkout reconnects. Without a listener the event would crash Node.
    pool.on('error', ignoreClientError);
    return new PostgresStore(pool, schema, maxAttempts, migrations);
  }

  /**
   * Creates the schema if needed and applies pending migrations in one
   * transaction, under an advisory lock so replicas starting together take
   * turns. Returns the schema version; throws `store_schema`, `store_unavailable`.
   */
  async migrate(): Promise<number> {
    assertNotInTransaction(this, 'migrate');
    const s = this.#quoted;
    return this.#withClient('migrate', async (client) => {
      // READ COMMITTED, not SERIALIZABLE: once the lock is ours, each statement
      // must see what a replica that held it before us committed.
      const q = (sql: string, params?: unknown[]) => query(client, 'migrate', sql, params);
      await q('BEGIN');
      await q('SELECT pg_advisory_xact_lock($1, $2)', [MIGRATION_LOCK_CLASS, lockKey(this.schema)]);
      await q(`CREATE SCHEMA IF NOT EXISTS ${s}`);
      await q(postgresSchemaMigrations(s));
      const [row] = await q(`SELECT coalesce(max(version), 0) AS v FROM ${s}.schema_migrations`);
      for (const m of pendingMigrations(Number(row?.v), this.#migrations)) {
        await q(m.postgres(s));
        const insert = `INSERT INTO ${s}.schema_migrations (version, description, applied_at) VALUES ($1, $2, $3)`;
        await q(insert, [m.version, m.description, Date.now()]);
      }
      await q('COMMIT');
      return this.#migrations.length;
    });
  }

  /**
   * Runs `fn` in one SERIALIZABLE transaction, re-running it after a
   * serialization failure (see the file comment). A throw in `fn`, or a failed
   * statement even if `fn` caught it, rolls back and rethrows. After
   * `maxAttempts` serialization failures throws `store_unavailable`. When
   * COMMIT itself loses the connection the outcome is unknown (`store_unavailable`).
   */
  async transaction<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> {
    assertNotInTransaction(this, 'transaction');
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#withClient('transaction', (client) => this.#attempt(client, fn));
      } catch (e) {
        if (!isSerializationFailure(e)) throw e;
        if (attempt >= this.#maxAttempts) {
          throw storeError('store_unavailable', `transaction: serialization failure, ${attempt} attempts`, e);
        }
        await sleep(Math.random() * Math.min(200, 4 * 2 ** attempt)); // full jitter (AWS backoff guidance)
      }
    }
  }

  async #attempt<T>(client: pg.PoolClient, fn: (tx: StoreTx) => Promise<T>): Promise<T> {
    await query(client, 'transaction: BEGIN', 'BEGIN ISOLATION LEVEL SERIALIZABLE');
    const exec = new TxExecutor(new PgExecutor(client, this.#book));
    try {
      const value = await inTransactionScope(this, () => fn(new SqlTx(exec, this.#queries)));
      exec.finish();
      if (exec.failure !== undefined) throw exec.failure;
      await query(client, 'transaction: COMMIT', 'COMMIT');
      return value;
    } catch (e) {
      exec.finish();
      // Retry on a serialization failure even when fn caught it and threw something else.
      throw isSerializationFailure(exec.failure) ? exec.failure : e;
    }
  }

  /**
   * Runs `body` on a checked-out client. If `body` throws, ROLLBACK is sent
   * (harmless outside a transaction) and the error passes unchanged; a client
   * whose ROLLBACK fails is destroyed rather than returned to the pool.
   */
  async #withClient<T>(op: string, body: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    if (this.#closing !== undefined) throw storeError('store_unavailable', `${op}: the PostgreSQL store is closed`);
    let client: pg.PoolClient;
    try {
      client = await this.#pool.connect();
    } catch (e) {
      throw mapPgError(e, `${op}: connect`);
    }
    // A connection error while checked out and between queries is emitted, not thrown.
    client.on('error', ignoreClientError);
    let destroy = false;
    try {
      return await body(client);
    } catch (e) {
      try {
        await client.query('ROLLBACK');
      } catch {
        destroy = true;
      }
      throw e;
    } finally {
      client.off('error', ignoreClientError);
      client.release(destroy);
    }
  }

  /** Waits for checked-out clients to come back, then closes the pool; idempotent. */
  async close(): Promise<void> {
    assertNotInTransaction(this, 'close');
    this.#closing ??= this.#pool.end();
    await this.#closing;
  }

  protected reads(): StoreReader {
    return this.#readOps;
  }
}
