/**
 * Transaction plumbing shared by both stores: a FIFO async mutex, detection
 * of a nested transaction on the same store (which would deadlock on the
 * SQLite mutex or hold two PostgreSQL connections), and the guard that makes
 * a StoreTx unusable once its transaction has settled.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Row, SqlValue } from './row-codec.ts';
import { storeError } from './store-error.ts';

/** Runs the statements of the record operations; implemented per dialect. */
export interface SqlExecutor {
  /** The rows of a query. Throws a store KcmError (driver errors mapped by the dialect). */
  all(sql: string, params: readonly SqlValue[]): Promise<Row[]>;
  /** Executes a write; returns the number of rows it changed. Throws like `all`. */
  run(sql: string, params: readonly SqlValue[]): Promise<number>;
}

/** FIFO mutex: `run` calls execute one at a time, in call order, whatever they throw. */
export class AsyncMutex {
  #tail: Promise<void> = Promise.resolve();

  run<T>(fn: () => Promise<T>): Promise<T> {
    const prev = this.#tail;
    let release: () => void = () => {};
    this.#tail = new Promise<void>((resolve) => {
      release = resolve;
    });
    return prev.then(fn).finally(release);
  }
}

const activeStores = new AsyncLocalStorage<ReadonlySet<object>>();

/**
 * Throws `internal_error` when called from inside a transaction of `store`
 * (a nested transaction(), migrate() or close() would wait for the outer
 * transaction, which waits for it: a deadlock).
 */
export function assertNotInTransaction(store: object, method: string): void {
  if (activeStores.getStore()?.has(store)) {
    throw storeError('internal_error', `${method}: called inside a transaction of the same store; use its StoreTx`);
  }
}

/** Runs `fn` marked as inside a transaction of `store` (see assertNotInTransaction). */
export function inTransactionScope<T>(store: object, fn: () => Promise<T>): Promise<T> {
  const outer = activeStores.getStore();
  return activeStores.run(new Set([...(outer ?? []), store]), fn);
}

/**
 * The executor a StoreTx uses: it refuses every call after `finish()` (a
 * leaked StoreTx must not write into a later transaction on the same
 * connection), and remembers the first statement failure: the transaction is
 * then doomed (rolled back even if `fn` swallows the error), as PostgreSQL
 * would do anyway, so both dialects behave alike.
 */
export class TxExecutor implements SqlExecutor {
  readonly #inner: SqlExecutor;
  #done = false;
  #failure: unknown;

  constructor(inner: SqlExecutor) {
    this.#inner = inner;
  }

  /** The first statement error of this transaction, if any. */
  get failure(): unknown {
    return this.#failure;
  }

  finish(): void {
    this.#done = true;
  }

  all(sql: string, params: readonly SqlValue[]): Promise<Row[]> {
    return this.#guard(() => this.#inner.all(sql, params));
  }

  run(sql: string, params: readonly SqlValue[]): Promise<number> {
    return this.#guard(() => this.#inner.run(sql, params));
  }

  async #guard<T>(f: () => Promise<T>): Promise<T> {
    if (this.#done) throw storeError('internal_error', 'StoreTx used after its transaction settled');
    if (this.#failure !== undefined) throw this.#failure;
    try {
      return await f();
    } catch (e) {
      this.#failure ??= e;
      throw e;
    }
  }
}
