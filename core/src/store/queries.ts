/**
 * The SQL of the record operations, one text for both dialects: `?`
 * placeholders (the PostgreSQL executor numbers them `$1…`), tables prefixed
 * by the schema (`''` for SQLite, `"name".` for PostgreSQL). Conflicts and
 * missing rows are detected from affected-row counts (`ON CONFLICT DO
 * NOTHING`, `UPDATE … WHERE`), never from an error, so they do not abort a
 * PostgreSQL transaction and a caller may go on after catching them.
 */
import { CLUSTER_COLUMNS, IVK_COLUMNS, L2_COLUMNS } from './row-codec.ts';

export interface Queries {
  getCluster: string;
  deleteCluster: string;
  insertCluster: string;
  updateCluster: string;
  listIvks: string;
  getIvk: string;
  insertIvk: string;
  updateIvk: string;
  deleteIvk: string;
  getL2: string;
  getLatestL2: string;
  countL2ByIvk: string;
  listL2BelowIvk: string;
  insertL2: string;
  updateL2: string;
}

const marks = (n: number): string => Array.from({ length: n }, () => '?').join(', ');
const sets = (cols: readonly string[]): string => cols.map((c) => `${c} = ?`).join(', ');

/**
 * Statements over the tables of migrations.ts. `prefix` is trusted text (a
 * validated, quoted schema name and a dot, or '').
 */
export function buildQueries(prefix: string): Queries {
  const cluster = `${prefix}cluster`;
  const ivk = `${prefix}ivk_versions`;
  const l2 = `${prefix}l2_keys`;
  const cc = CLUSTER_COLUMNS.join(', ');
  const ic = IVK_COLUMNS.join(', ');
  const lc = L2_COLUMNS.join(', ');
  const [, ...ivkRest] = IVK_COLUMNS;
  const l2Rest = L2_COLUMNS.filter((c) => c !== 'tenant' && c !== 'version');
  return {
    getCluster: `SELECT ${cc} FROM ${cluster} WHERE id = 1`,
    insertCluster: `INSERT INTO ${cluster} (id, ${cc}) VALUES (1, ${marks(CLUSTER_COLUMNS.length)}) ON CONFLICT DO NOTHING`,
    updateCluster: `UPDATE ${cluster} SET ${sets(CLUSTER_COLUMNS)} WHERE id = 1`,
    deleteCluster: `DELETE FROM ${cluster} WHERE id = 1`,
    listIvks: `SELECT ${ic} FROM ${ivk} ORDER BY version`,
    getIvk: `SELECT ${ic} FROM ${ivk} WHERE version = ?`,
    insertIvk: `INSERT INTO ${ivk} (${ic}) VALUES (${marks(IVK_COLUMNS.length)}) ON CONFLICT DO NOTHING`,
    // Parameters: the record minus its version, then the version (see SqlTx.updateIvk).
    updateIvk: `UPDATE ${ivk} SET ${sets(ivkRest)} WHERE version = ?`,
    deleteIvk: `DELETE FROM ${ivk} WHERE version = ?`,
    getL2: `SELECT ${lc} FROM ${l2} WHERE tenant = ? AND version = ?`,
    getLatestL2: `SELECT ${lc} FROM ${l2} WHERE tenant = ? ORDER BY version DESC LIMIT 1`,
    countL2ByIvk: `SELECT count(*) AS n FROM ${l2} WHERE ivk_version = ?`,
    // Served in index order by l2_keys_ivk (migrations.ts): no sort, no scan past `limit`.
    listL2BelowIvk: `SELECT ${lc} FROM ${l2} WHERE ivk_version < ? ORDER BY ivk_version, created_at, tenant, version LIMIT ?`,
    insertL2: `INSERT INTO ${l2} (${lc}) VALUES (${marks(L2_COLUMNS.length)}) ON CONFLICT DO NOTHING`,
    // Parameters: the record minus tenant and version, then tenant, version.
    updateL2: `UPDATE ${l2} SET ${sets(l2Rest)} WHERE tenant = ? AND version = ?`,
  };
}
