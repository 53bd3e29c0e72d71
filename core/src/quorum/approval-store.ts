/**
 * The part of the Core's store the approval service uses: approval rows read
 * and written with integrity (the MAC is computed by the store layer, so
 * callers give records without `mac`). The IntegrityStore satisfies it.
 *
 * `transaction` has the Store contract: one serialisable transaction, all
 * writes or none, `fn` possibly run more than once (PostgreSQL retries
 * serialization failures), so `fn` has no effect outside `tx`.
 */
import type { ApprovalRecord, ApprovalState } from '../store/records.ts';

export type UnsignedApproval = Omit<ApprovalRecord, 'mac'>;

export interface ApprovalReader {
  /** The request, verified; undefined when there is none. */
  getApproval(id: string): Promise<ApprovalRecord | undefined>;
  /** Requests ordered by createdAt then id, optionally only those in `state`, at most `limit`. */
  listApprovals(state: ApprovalState | null, limit: number): Promise<ApprovalRecord[]>;
}

export interface ApprovalTx extends ApprovalReader {
  /** Throws `store_conflict` when the id exists. */
  insertApproval(r: UnsignedApproval): Promise<void>;
  /** Throws `store_not_found`. */
  updateApproval(r: UnsignedApproval): Promise<void>;
}

export interface ApprovalStore extends ApprovalReader {
  transaction<T>(fn: (tx: ApprovalTx) => Promise<T>): Promise<T>;
}
