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
import type { ClusterRecord, IvkRecord, L2Record } from './records.ts';

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
}

export interface StoreTx extends StoreReader {
  /** Throws `store_conflict` when a cluster record exists. */
  insertCluster(r: ClusterRecord): Promise<void>;
  /** Replaces the cluster record (seal re-key); throws `store_not_found`. */
  updateCluster(r: ClusterRecord): Promise<void>;
  /** Throws `store_conflict` when the version exists. */
  /** Removes the cluster record (abandoning a pending init); throws `store_not_found`. */
  deleteCluster(): Promise<void>;
  insertIvk(r: IvkRecord): Promise<void>;
  /** Replaces the row of `r.version`; throws `store_not_found`. */
  updateIvk(r: IvkRecord): Promise<void>;
  /** Throws `store_not_found`. */
  deleteIvk(version: number): Promise<void>;
  /** Throws `store_conflict` when (tenant, version) exists. */
  insertL2(r: L2Record): Promise<void>;
  /** Replaces the row of (`r.tenant`, `r.version`); throws `store_not_found`. */
  updateL2(r: L2Record): Promise<void>;
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
