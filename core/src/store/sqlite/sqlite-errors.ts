/**
 * better-sqlite3 errors → store KcmErrors. Uniqueness violations →
 * `store_conflict`; lock, I/O, open and disk-full failures → `store_unavailable`;
 * anything else (a missing table, a CHECK violation, a corrupt file) →
 * `internal_error`. KcmErrors pass through unchanged.
 */
import Database from 'better-sqlite3';
import { KcmError } from '../../../../common/src/errors.ts';
import { storeError } from '../store-error.ts';

const UNAVAILABLE = /^SQLITE_(BUSY|LOCKED|IOERR|CANTOPEN|FULL|READONLY|PROTOCOL|NOLFS|PERM|AUTH)/;

export function mapSqliteError(e: unknown, op: string): KcmError {
  if (e instanceof KcmError) return e;
  if (e instanceof Database.SqliteError) {
    if (e.code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || e.code === 'SQLITE_CONSTRAINT_UNIQUE') {
      return storeError('store_conflict', `${op}: ${e.message}`, e);
    }
    if (UNAVAILABLE.test(e.code)) return storeError('store_unavailable', `${op}: ${e.code}: ${e.message}`, e);
    return storeError('internal_error', `${op}: ${e.code}: ${e.message}`, e);
  }
  const code = (e as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) {
    return storeError('store_unavailable', `${op}: ${code}`, e); // fs errors (EACCES, ENOSPC, …)
  }
  return storeError('internal_error', `${op}: ${e instanceof Error ? e.message : String(e)}`, e);
}
