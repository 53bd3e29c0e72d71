/** What the store contract suite needs from a backend's test file, and small test helpers. */
import assert from 'node:assert/strict';
import { KcmError } from '../../../common/src/errors.ts';
import { MIGRATIONS, type Migration } from '../../../core/src/store/migrations.ts';
import type { Store } from '../../../core/src/store/store.ts';

export interface StoreHarness {
  /** A migrated store on a fresh, empty database. */
  store: Store;
  /** Another handle on the same database, not migrated; closed by cleanup() if the test does not. */
  reopen(options?: { migrations?: readonly Migration[] }): Promise<Store>;
  /** Closes every handle and removes the database. */
  cleanup(): Promise<void>;
  /**
   * Runs SQL statements directly on the database, outside the store (an
   * attacker with database access): table names unqualified (PostgreSQL: the
   * test schema is on the search path), no parameters.
   */
  sql(statements: string): Promise<void>;
}

/** MIGRATIONS plus one: what a newer build would have applied. */
export const FUTURE_MIGRATIONS: readonly Migration[] = [
  ...MIGRATIONS,
  {
    version: MIGRATIONS.length + 1,
    description: 'test: a table from the future',
    sqlite: 'CREATE TABLE future_table (x INTEGER) STRICT',
    postgres: (s) => `CREATE TABLE ${s}.future_table (x BIGINT)`,
  },
];

/** Asserts that `p` rejects with a KcmError of `code`. */
export async function rejectsWith(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof KcmError, `expected KcmError ${code}, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    return true;
  });
}

export function gate(): { promise: Promise<void>; open: () => void } {
  let open = (): void => {};
  const promise = new Promise<void>((r) => {
    open = r;
  });
  return { promise, open };
}
