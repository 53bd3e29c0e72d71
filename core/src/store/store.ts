/**
 * The persistence contract of the Core, implemented by `sqlite/` (embedded
 * default) and `postgres/` (several replicas), both tested by one contract
 * suite (test/core/store/contract.ts). Raw stores persist and return records
 * exactly as given, `mac` included; they never compute or check MACs (see
 * integrity-store.ts) and never see a plaintext key.
 *
 * Errors: KcmError with code `store_conflict` (primary key exists),
 * `store_not_found` (update/delete of a missing row), `store_unavailable`
 * (connection lost), `store_schema` (database newer than this build);
 * `internal_error` for misuse (a record with an unsafe integer or a non-Buffer,
 * a StoreTx used after its transaction, a nested transaction).
 */
import type {
  ApprovalRecord,
  ApprovalState,
  ClusterRecord,
  EdgeRecord,
  IvkRecord,
  KeyEventRecord,
  L2Record,
  L3Record,
  L3ServiceRecord,
  TenantRecord,
} from './records.ts';

/** Reads available both inside and outside transactions. */
export interface StoreReader {
  getCluster(): Promise<ClusterRecord | undefined>;
  listIvks(): Promise<IvkRecord[]>;
  getIvk(version: number): Promise<IvkRecord | undefined>;
  getL2(tenant: string, version: number): Promise<L2Record | undefined>;
  /** Newest version of the tenant's L2, if any. */
  getLatestL2(tenant: string): Promise<L2Record | undefined>;
  /** L2 records whose active binding uses this IVK version. */
  countL2ByIvk(ivkVersion: number): Promise<number>;
  /**
   * Up to `limit` L2 records bound to IVK versions below `ivkVersion`, oldest first (the re-wrap scrubber):
   * ordered by IVK version, then createdAt, tenant, version.
   */
  listL2BelowIvk(ivkVersion: number, limit: number): Promise<L2Record[]>;
  /** Every L2 version of the tenant, oldest first. */
  listL2(tenant: string): Promise<L2Record[]>;

  getTenant(id: string): Promise<TenantRecord | undefined>;
  /** Tenants ordered by id, after `afterId` (exclusive, '' = from the start), at most `limit`. */
  listTenants(afterId: string, limit: number): Promise<TenantRecord[]>;

  getL3Service(tenant: string, service: string): Promise<L3ServiceRecord | undefined>;
  /** Services of the tenant ordered by name. */
  listL3Services(tenant: string): Promise<L3ServiceRecord[]>;
  getL3(tenant: string, service: string, version: number): Promise<L3Record | undefined>;
  /** Versions of one service key, ascending. */
  listL3(tenant: string, service: string): Promise<L3Record[]>;
  /** Every L3 version of the tenant (all services), ordered by service, version. */
  listL3ByTenant(tenant: string): Promise<L3Record[]>;
  /** ACTIVE versions with rotateAfter <= `now`, oldest due first, at most `limit` (the rotation ticker). */
  listL3DueForRotation(now: number, limit: number): Promise<L3Record[]>;

  /** Events with seq > `afterSeq`, ascending, at most `limit`. */
  listEventsAfter(afterSeq: number, limit: number): Promise<KeyEventRecord[]>;
  /** Highest seq appended (0 when none). */
  latestEventSeq(): Promise<number>;

  getEdge(edgeId: string): Promise<EdgeRecord | undefined>;
  /** All edges ordered by id. */
  listEdges(): Promise<EdgeRecord[]>;

  getApproval(id: string): Promise<ApprovalRecord | undefined>;
  /** Requests ordered by createdAt then id, optionally only those in `state`, at most `limit`. */
  listApprovals(state: ApprovalState | null, limit: number): Promise<ApprovalRecord[]>;
}

export interface StoreTx extends StoreReader {
  /** Throws `store_conflict` when a cluster record exists. */
  insertCluster(r: ClusterRecord): Promise<void>;
  /** Replaces the cluster record (seal re-key); throws `store_not_found`. */
  updateCluster(r: ClusterRecord): Promise<void>;
  /** Removes the cluster record (abandoning a pending init); throws `store_not_found`. */
  deleteCluster(): Promise<void>;
  /** Throws `store_conflict` when the version exists. */
  insertIvk(r: IvkRecord): Promise<void>;
  /** Replaces the row of `r.version`; throws `store_not_found`. */
  updateIvk(r: IvkRecord): Promise<void>;
  /** Throws `store_not_found`. */
  deleteIvk(version: number): Promise<void>;
  /** Throws `store_conflict` when (tenant, version) exists. */
  insertL2(r: L2Record): Promise<void>;
  /** Replaces the row of (`r.tenant`, `r.version`); throws `store_not_found`. */
  updateL2(r: L2Record): Promise<void>;

  /**
   * Throws `store_conflict` when the id exists (ids are never reused). Besides
   * the type checks, refuses with `internal_error` an empty id, a null `l1`
   * unless keyMode is `managed`, and a graceDays other than 30, 60, 90 or null
   * (insert and update alike; the schema has the same CHECKs).
   */
  insertTenant(r: TenantRecord): Promise<void>;
  /** Replaces the row of `r.id`; throws `store_not_found`. */
  updateTenant(r: TenantRecord): Promise<void>;
  /** Throws `store_conflict` when (tenant, service) exists. */
  insertL3Service(r: L3ServiceRecord): Promise<void>;
  /** Replaces the row of (`r.tenant`, `r.service`); throws `store_not_found`. */
  updateL3Service(r: L3ServiceRecord): Promise<void>;
  /** Throws `store_conflict` when (tenant, service, version) exists. */
  insertL3(r: L3Record): Promise<void>;
  /** Replaces the row of (`r.tenant`, `r.service`, `r.version`); throws `store_not_found`. */
  updateL3(r: L3Record): Promise<void>;
  /**
   * Appends an event; the store assigns the next seq (ignoring any `seq` or
   * `mac` on `r`): latest seq + 1, read in this transaction, so seqs are
   * gap-free (a rolled-back append frees its seq) and their order is the
   * commit order (an edge that read seq n never later sees a seq below n
   * appear). `sign` gets the validated record with its seq and returns the
   * MAC stored with it; it is called once per attempt, after validation (an
   * invalid record throws `internal_error` without calling it). Concurrent
   * appenders are serialised: SQLite by its single writer, PostgreSQL by a
   * serialization failure that re-runs the losing transaction. Events are
   * never deleted (a seq is never reused). Returns the stored record.
   */
  appendEvent(
    r: Omit<KeyEventRecord, 'seq' | 'mac'>,
    sign: (withSeq: Omit<KeyEventRecord, 'mac'>) => Buffer,
  ): Promise<KeyEventRecord>;
  /** Inserts or replaces the edge's row (never a conflict). */
  upsertEdge(r: EdgeRecord): Promise<void>;
  /** Throws `store_conflict` when the id exists. */
  insertApproval(r: ApprovalRecord): Promise<void>;
  /** Replaces the row of `r.id`; throws `store_not_found`. */
  updateApproval(r: ApprovalRecord): Promise<void>;
}

export interface Store extends StoreReader {
  readonly dialect: 'sqlite' | 'postgres';
  /** Applies the pending versioned migrations in one transaction; returns the schema version. */
  migrate(): Promise<number>;
  /**
   * Runs `fn` in one serialisable transaction: all of its writes are durable together, or none is.
   * A throw in `fn`, or a failed statement even if `fn` caught it, rolls back (a caught `store_conflict`
   * or `store_not_found` does not). `fn` may run more than once (PostgreSQL retries serialization
   * failures), so it must have no effects outside `tx`; `tx` is dead once the returned promise settles.
   * Calling transaction/migrate/close of the same store from inside `fn` throws `internal_error`.
   */
  transaction<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}
