/**
 * The SQL of the record operations, one text for both dialects: `?`
 * placeholders (the PostgreSQL executor numbers them `$1…`), tables prefixed
 * by the schema (`''` for SQLite, `"name".` for PostgreSQL). Conflicts and
 * missing rows are detected from affected-row counts (`ON CONFLICT DO
 * NOTHING`, `UPDATE … WHERE`), never from an error, so they do not abort a
 * PostgreSQL transaction and a caller may go on after catching them.
 */
import { CLUSTER_COLUMNS, IVK_COLUMNS, L2_COLUMNS } from './row-codec.ts';
import { APPROVAL_COLUMNS, EDGE_COLUMNS, KEY_EVENT_COLUMNS } from './row-codec-events.ts';
import { L3_COLUMNS, L3_SERVICE_COLUMNS, TENANT_COLUMNS } from './row-codec-tenants.ts';

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
  listL2: string;
  getTenant: string;
  listTenants: string;
  insertTenant: string;
  updateTenant: string;
  getL3Service: string;
  listL3Services: string;
  insertL3Service: string;
  updateL3Service: string;
  getL3: string;
  listL3: string;
  listL3ByTenant: string;
  listL3DueForRotation: string;
  insertL3: string;
  updateL3: string;
  listEventsAfter: string;
  latestEventSeq: string;
  insertEvent: string;
  getEdge: string;
  listEdges: string;
  upsertEdge: string;
  getApproval: string;
  listApprovals: string;
  listApprovalsInState: string;
  insertApproval: string;
  updateApproval: string;
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
    listL2: `SELECT ${lc} FROM ${l2} WHERE tenant = ? ORDER BY version`,
    ...tenantQueries(prefix),
    ...eventQueries(prefix),
  };
}

/** Statement texts for a table whose key is the first `keyCount` columns: get, insert, update. */
function keyed(table: string, cols: readonly string[], keyCount: number) {
  const all = cols.join(', ');
  const where = cols
    .slice(0, keyCount)
    .map((c) => `${c} = ?`)
    .join(' AND ');
  return {
    all,
    get: `SELECT ${all} FROM ${table} WHERE ${where}`,
    insert: `INSERT INTO ${table} (${all}) VALUES (${marks(cols.length)}) ON CONFLICT DO NOTHING`,
    // Parameters: the record minus its key columns, then the key columns (see keyLast in sql-ops.ts).
    update: `UPDATE ${table} SET ${sets(cols.slice(keyCount))} WHERE ${where}`,
  };
}

function tenantQueries(prefix: string) {
  const t = keyed(`${prefix}tenants`, TENANT_COLUMNS, 1);
  const svc = keyed(`${prefix}l3_services`, L3_SERVICE_COLUMNS, 2);
  const l3 = keyed(`${prefix}l3_keys`, L3_COLUMNS, 3);
  return {
    getTenant: t.get,
    listTenants: `SELECT ${t.all} FROM ${prefix}tenants WHERE id > ? ORDER BY id LIMIT ?`,
    insertTenant: t.insert,
    updateTenant: t.update,
    getL3Service: svc.get,
    listL3Services: `SELECT ${svc.all} FROM ${prefix}l3_services WHERE tenant = ? ORDER BY service`,
    insertL3Service: svc.insert,
    updateL3Service: svc.update,
    getL3: l3.get,
    listL3: `SELECT ${l3.all} FROM ${prefix}l3_keys WHERE tenant = ? AND service = ? ORDER BY version`,
    listL3ByTenant: `SELECT ${l3.all} FROM ${prefix}l3_keys WHERE tenant = ? ORDER BY service, version`,
    // Served in index order by l3_keys_due (migrations.ts).
    listL3DueForRotation:
      `SELECT ${l3.all} FROM ${prefix}l3_keys WHERE state = 'ACTIVE' AND rotate_after <= ? ` +
      'ORDER BY rotate_after, tenant, service, version LIMIT ?',
    insertL3: l3.insert,
    updateL3: l3.update,
  };
}

function eventQueries(prefix: string) {
  const ev = `${prefix}key_events`;
  const ec = KEY_EVENT_COLUMNS.join(', ');
  const edge = keyed(`${prefix}edges`, EDGE_COLUMNS, 1);
  const [, ...edgeRest] = EDGE_COLUMNS;
  const ap = keyed(`${prefix}approvals`, APPROVAL_COLUMNS, 1);
  return {
    listEventsAfter: `SELECT ${ec} FROM ${ev} WHERE seq > ? ORDER BY seq LIMIT ?`,
    latestEventSeq: `SELECT coalesce(max(seq), 0) AS n FROM ${ev}`,
    // The seq is chosen by the caller (latest + 1, in the same transaction): see SqlTx.appendEvent.
    insertEvent: `INSERT INTO ${ev} (${ec}) VALUES (${marks(KEY_EVENT_COLUMNS.length)}) ON CONFLICT DO NOTHING`,
    getEdge: edge.get,
    listEdges: `SELECT ${edge.all} FROM ${prefix}edges ORDER BY edge_id`,
    upsertEdge:
      `INSERT INTO ${prefix}edges (${edge.all}) VALUES (${marks(EDGE_COLUMNS.length)}) ` +
      `ON CONFLICT (edge_id) DO UPDATE SET ${edgeRest.map((c) => `${c} = excluded.${c}`).join(', ')}`,
    getApproval: ap.get,
    listApprovals: `SELECT ${ap.all} FROM ${prefix}approvals ORDER BY created_at, id LIMIT ?`,
    listApprovalsInState: `SELECT ${ap.all} FROM ${prefix}approvals WHERE state = ? ORDER BY created_at, id LIMIT ?`,
    insertApproval: ap.insert,
    updateApproval: ap.update,
  };
}
