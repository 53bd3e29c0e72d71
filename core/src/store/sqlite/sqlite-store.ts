/**
 * The embedded store: one SQLite file through better-sqlite3.
 *
 * Durability: WAL with `synchronous=FULL`, so COMMIT returns only after the
 * WAL is fsynced; a committed key survives SIGKILL and power loss.
 * `secure_delete` overwrites deleted rows, so a deleted IVK's wrapped bytes do
 * not linger in free pages.
 *
 * Concurrency: better-sqlite3 is synchronous, the Store interface is async.
 * One writer connection runs `BEGIN IMMEDIATE … COMMIT` around the async `fn`;
 * an in-process FIFO mutex makes transaction()/migrate()/close() calls take
 * turns, so two transactions never interleave on the connection. Reads outside
 * a transaction use a second, query-only connection: in WAL mode it sees only
 * committed data, never the writes of a running transaction, and it never
 * waits for one (a transaction may await a KMS call for a while). Another
 * process writing the same file is waited for up to `busyTimeoutMs`,
 * synchronously (it blocks the event loop), then `store_unavailable`.
 */
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Database from 'better-sqlite3';
import {
  checkMigrations,
  MIGRATIONS,
  type Migration,
  pendingMigrations,
  SQLITE_SCHEMA_MIGRATIONS,
} from '../migrations.ts';
import { buildQueries } from '../queries.ts';
import type { Row, SqlValue } from '../row-codec.ts';
import { DelegatingReader, SqlReader, SqlTx } from '../sql-ops.ts';
import type { Store, StoreReader, StoreTx } from '../store.ts';
import { storeError } from '../store-error.ts';
import { AsyncMutex, assertNotInTransaction, inTransactionScope, type SqlExecutor, TxExecutor } from '../tx-support.ts';
import { mapSqliteError } from './sqlite-errors.ts';

export interface SqliteStoreOptions {
  /** Database file. Missing parent directories are created (mode 0700), a missing file with mode 0600. */
  path: string;
  /** How long to wait for a lock held by another process, in ms (default 5000). */
  busyTimeoutMs?: number;
  /** The migration list (default MIGRATIONS); tests pass a longer one to build a "newer" database. */
  migrations?: readonly Migration[];
}

/** Runs statements on one connection with a per-connection prepared-statement cache. */
class SqliteExecutor implements SqlExecutor {
  readonly #db: Database.Database;
  readonly #cache = new Map<string, Database.Statement>();

  constructor(db: Database.Database) {
    this.#db = db;
  }

  stmt(sql: string): Database.Statement {
    if (!this.#db.open) throw storeError('store_unavailable', 'the SQLite store is closed');
    let s = this.#cache.get(sql);
    if (s === undefined) {
      s = this.#db.prepare(sql);
      this.#cache.set(sql, s);
    }
    return s;
  }

  async all(sql: string, params: readonly SqlValue[]): Promise<Row[]> {
    try {
      return this.stmt(sql).all(...params) as Row[];
    } catch (e) {
      throw mapSqliteError(e, 'sqlite query');
    }
  }

  async run(sql: string, params: readonly SqlValue[]): Promise<number> {
    try {
      return this.stmt(sql).run(...params).changes;
    } catch (e) {
      throw mapSqliteError(e, 'sqlite write');
    }
  }
}

function openConnection(path: string, busyTimeoutMs: number, role: 'writer' | 'reader'): Database.Database {
  const db = new Database(path, { timeout: busyTimeoutMs });
  try {
    if (role === 'writer') {
      const mode = db.pragma('journal_mode = WAL', { simple: true });
      if (mode !== 'wal') throw storeError('store_unavailable', `SqliteStore: WAL mode refused (journal_mode=${mode})`);
      db.pragma('secure_delete = ON');
    } else {
      db.pragma('query_only = ON');
    }
    db.pragma('synchronous = FULL');
    db.pragma('foreign_keys = ON');
    db.pragma('trusted_schema = OFF');
    return db;
  } catch (e) {
    db.close();
    throw e;
  }
}

export class SqliteStore extends DelegatingReader implements Store {
  readonly dialect = 'sqlite' as const;
  readonly path: string;
  readonly #writer: Database.Database;
  readonly #reader: Database.Database;
  readonly #writeExec: SqliteExecutor;
  readonly #readOps: SqlReader;
  readonly #queries = buildQueries('');
  readonly #migrations: readonly Migration[];
  readonly #mutex = new AsyncMutex();

  private constructor(
    path: string,
    writer: Database.Database,
    reader: Database.Database,
    migrations: readonly Migration[],
  ) {
    super();
    this.path = path;
    this.#writer = writer;
    this.#reader = reader;
    this.#writeExec = new SqliteExecutor(writer);
    this.#readOps = new SqlReader(new SqliteExecutor(reader), this.#queries);
    this.#migrations = migrations;
  }

  /**
   * Opens (creating if missing) the database file; does not migrate. Throws
   * `invalid_config` for a bad option, `store_unavailable` when the file or
   * its directory cannot be created or opened, `internal_error` for a file
   * that is not a SQLite database.
   */
  static open(options: SqliteStoreOptions): SqliteStore {
    const { path, busyTimeoutMs = 5000, migrations = MIGRATIONS } = options;
    if (typeof path !== 'string' || path === '' || path === ':memory:' || path.startsWith('file:')) {
      throw storeError('invalid_config', `SqliteStore.open: path must be a file path, got ${JSON.stringify(path)}`);
    }
    if (!Number.isSafeInteger(busyTimeoutMs) || busyTimeoutMs < 0) {
      throw storeError(
        'invalid_config',
        `SqliteStore.open: busyTimeoutMs must be an integer >= 0, got ${busyTimeoutMs}`,
      );
    }
    checkMigrations(migrations);
    const abs = resolve(path);
    let writer: Database.Database | undefined;
    try {
      mkdirSync(dirname(abs), { recursive: true, mode: 0o700 });
      closeSync(openSync(abs, 'a', 0o600)); // SQLite gives -wal/-shm the mode of the main file
      writer = openConnection(abs, busyTimeoutMs, 'writer');
      const reader = openConnection(abs, busyTimeoutMs, 'reader');
      return new SqliteStore(abs, writer, reader, migrations);
    } catch (e) {
      writer?.close();
      throw mapSqliteError(e, 'SqliteStore.open');
    }
  }

  /** Applies pending migrations in one IMMEDIATE transaction; returns the schema version. Throws `store_schema`. */
  async migrate(): Promise<number> {
    assertNotInTransaction(this, 'migrate');
    return this.#mutex.run(async () => {
      if (!this.#writer.open) throw storeError('store_unavailable', 'the SQLite store is closed');
      const apply = this.#writer.transaction(() => {
        this.#writer.exec(SQLITE_SCHEMA_MIGRATIONS);
        const row = this.#writer.prepare('SELECT coalesce(max(version), 0) AS v FROM schema_migrations').get() as Row;
        const insert = this.#writer.prepare(
          'INSERT INTO schema_migrations (version, description, applied_at) VALUES (?, ?, ?)',
        );
        for (const m of pendingMigrations(Number(row.v), this.#migrations)) {
          this.#writer.exec(m.sqlite);
          insert.run(m.version, m.description, Date.now());
        }
        return this.#migrations.length;
      });
      try {
        return apply.immediate();
      } catch (e) {
        throw mapSqliteError(e, 'migrate');
      }
    });
  }

  /**
   * Runs `fn` in `BEGIN IMMEDIATE … COMMIT` (serialisable: SQLite has one
   * writer). A throw in `fn`, or a failed statement even if `fn` caught it,
   * rolls everything back and rethrows. The StoreTx is dead once this settles.
   * Throws `internal_error` when called inside a transaction of this store.
   */
  async transaction<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> {
    assertNotInTransaction(this, 'transaction');
    return this.#mutex.run(async () => {
      this.#control('BEGIN IMMEDIATE');
      const exec = new TxExecutor(this.#writeExec);
      try {
        const value = await inTransactionScope(this, () => fn(new SqlTx(exec, this.#queries)));
        exec.finish();
        if (exec.failure !== undefined) throw exec.failure;
        this.#control('COMMIT');
        return value;
      } catch (e) {
        exec.finish();
        if (this.#writer.open && this.#writer.inTransaction) {
          try {
            this.#control('ROLLBACK');
          } catch {
            // The original error matters more; SQLite rolls back on close anyway.
          }
        }
        throw e;
      }
    });
  }

  /** Waits for a running transaction, then closes both connections; idempotent. */
  async close(): Promise<void> {
    assertNotInTransaction(this, 'close');
    await this.#mutex.run(async () => {
      if (this.#reader.open) this.#reader.close();
      if (this.#writer.open) this.#writer.close();
    });
  }

  #control(sql: 'BEGIN IMMEDIATE' | 'COMMIT' | 'ROLLBACK'): void {
    try {
      this.#writeExec.stmt(sql).run();
    } catch (e) {
      throw mapSqliteError(e, sql);
    }
  }

  protected reads(): StoreReader {
    return this.#readOps;
  }
}
