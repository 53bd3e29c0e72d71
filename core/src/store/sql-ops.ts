/**
 * The record operations of store.ts written once over a SqlExecutor: the
 * SQLite and PostgreSQL stores differ only in how they connect, execute and
 * run transactions.
 */
import type { Queries } from './queries.ts';
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
import {
  checkBuf,
  checkEnum,
  checkInt,
  checkText,
  clusterOf,
  clusterParams,
  intOf,
  ivkOf,
  ivkParams,
  l2Of,
  l2Params,
  type SqlValue,
} from './row-codec.ts';
import {
  APPROVAL_STATES,
  approvalOf,
  approvalParams,
  edgeOf,
  edgeParams,
  keyEventOf,
  keyEventParams,
} from './row-codec-events.ts';
import { l3Of, l3Params, l3ServiceOf, l3ServiceParams, tenantOf, tenantParams } from './row-codec-tenants.ts';
import type { StoreReader, StoreTx } from './store.ts';
import { storeError } from './store-error.ts';
import type { SqlExecutor } from './tx-support.ts';

/** A limit parameter: a safe integer >= 0; throws `internal_error` naming `op`. */
function checkLimit(op: string, limit: number): number {
  if (checkInt(op, 'limit', limit) < 0) throw storeError('internal_error', `${op}: limit must be >= 0`);
  return limit;
}

/** Update parameters: the record's columns after its first `keyCount` (key) columns, then the key columns. */
function keyLast(params: SqlValue[], keyCount: number): SqlValue[] {
  return [...params.slice(keyCount), ...params.slice(0, keyCount)];
}

/** Reads; outside a transaction they see committed data only. */
export class SqlReader implements StoreReader {
  protected readonly exec: SqlExecutor;
  protected readonly q: Queries;

  constructor(exec: SqlExecutor, queries: Queries) {
    this.exec = exec;
    this.q = queries;
  }

  async getCluster(): Promise<ClusterRecord | undefined> {
    const [row] = await this.exec.all(this.q.getCluster, []);
    return row && clusterOf(row);
  }

  async listIvks(): Promise<IvkRecord[]> {
    return (await this.exec.all(this.q.listIvks, [])).map(ivkOf);
  }

  async getIvk(version: number): Promise<IvkRecord | undefined> {
    const [row] = await this.exec.all(this.q.getIvk, [checkInt('getIvk', 'version', version)]);
    return row && ivkOf(row);
  }

  async getL2(tenant: string, version: number): Promise<L2Record | undefined> {
    const params = [checkText('getL2', 'tenant', tenant), checkInt('getL2', 'version', version)];
    const [row] = await this.exec.all(this.q.getL2, params);
    return row && l2Of(row);
  }

  async getLatestL2(tenant: string): Promise<L2Record | undefined> {
    const [row] = await this.exec.all(this.q.getLatestL2, [checkText('getLatestL2', 'tenant', tenant)]);
    return row && l2Of(row);
  }

  async countL2ByIvk(ivkVersion: number): Promise<number> {
    const [row] = await this.exec.all(this.q.countL2ByIvk, [checkInt('countL2ByIvk', 'ivkVersion', ivkVersion)]);
    return intOf('count', row?.n);
  }

  async listL2BelowIvk(ivkVersion: number, limit: number): Promise<L2Record[]> {
    const below = checkInt('listL2BelowIvk', 'ivkVersion', ivkVersion);
    if (checkInt('listL2BelowIvk', 'limit', limit) < 0) {
      throw storeError('internal_error', 'listL2BelowIvk: limit must be >= 0');
    }
    return (await this.exec.all(this.q.listL2BelowIvk, [below, limit])).map(l2Of);
  }

  async listL2(tenant: string): Promise<L2Record[]> {
    return (await this.exec.all(this.q.listL2, [checkText('listL2', 'tenant', tenant)])).map(l2Of);
  }

  async getTenant(id: string): Promise<TenantRecord | undefined> {
    const [row] = await this.exec.all(this.q.getTenant, [checkText('getTenant', 'id', id)]);
    return row && tenantOf(row);
  }

  async listTenants(afterId: string, limit: number): Promise<TenantRecord[]> {
    const params = [checkText('listTenants', 'afterId', afterId), checkLimit('listTenants', limit)];
    return (await this.exec.all(this.q.listTenants, params)).map(tenantOf);
  }

  async getL3Service(tenant: string, service: string): Promise<L3ServiceRecord | undefined> {
    const params = [checkText('getL3Service', 'tenant', tenant), checkText('getL3Service', 'service', service)];
    const [row] = await this.exec.all(this.q.getL3Service, params);
    return row && l3ServiceOf(row);
  }

  async listL3Services(tenant: string): Promise<L3ServiceRecord[]> {
    const params = [checkText('listL3Services', 'tenant', tenant)];
    return (await this.exec.all(this.q.listL3Services, params)).map(l3ServiceOf);
  }

  async getL3(tenant: string, service: string, version: number): Promise<L3Record | undefined> {
    const params = [
      checkText('getL3', 'tenant', tenant),
      checkText('getL3', 'service', service),
      checkInt('getL3', 'version', version),
    ];
    const [row] = await this.exec.all(this.q.getL3, params);
    return row && l3Of(row);
  }

  async listL3(tenant: string, service: string): Promise<L3Record[]> {
    const params = [checkText('listL3', 'tenant', tenant), checkText('listL3', 'service', service)];
    return (await this.exec.all(this.q.listL3, params)).map(l3Of);
  }

  async listL3ByTenant(tenant: string): Promise<L3Record[]> {
    return (await this.exec.all(this.q.listL3ByTenant, [checkText('listL3ByTenant', 'tenant', tenant)])).map(l3Of);
  }

  async listL3DueForRotation(now: number, limit: number): Promise<L3Record[]> {
    const params = [checkInt('listL3DueForRotation', 'now', now), checkLimit('listL3DueForRotation', limit)];
    return (await this.exec.all(this.q.listL3DueForRotation, params)).map(l3Of);
  }

  async listEventsAfter(afterSeq: number, limit: number): Promise<KeyEventRecord[]> {
    const params = [checkInt('listEventsAfter', 'afterSeq', afterSeq), checkLimit('listEventsAfter', limit)];
    return (await this.exec.all(this.q.listEventsAfter, params)).map(keyEventOf);
  }

  async latestEventSeq(): Promise<number> {
    const [row] = await this.exec.all(this.q.latestEventSeq, []);
    return intOf('latest seq', row?.n);
  }

  async getEdge(edgeId: string): Promise<EdgeRecord | undefined> {
    const [row] = await this.exec.all(this.q.getEdge, [checkText('getEdge', 'edgeId', edgeId)]);
    return row && edgeOf(row);
  }

  async listEdges(): Promise<EdgeRecord[]> {
    return (await this.exec.all(this.q.listEdges, [])).map(edgeOf);
  }

  async getApproval(id: string): Promise<ApprovalRecord | undefined> {
    const [row] = await this.exec.all(this.q.getApproval, [checkText('getApproval', 'id', id)]);
    return row && approvalOf(row);
  }

  async listApprovals(state: ApprovalState | null, limit: number): Promise<ApprovalRecord[]> {
    const n = checkLimit('listApprovals', limit);
    const rows =
      state === null
        ? await this.exec.all(this.q.listApprovals, [n])
        : await this.exec.all(this.q.listApprovalsInState, [
            checkEnum('listApprovals', 'state', state, APPROVAL_STATES),
            n,
          ]);
    return rows.map(approvalOf);
  }
}

/** Reads and writes of one transaction. */
export class SqlTx extends SqlReader implements StoreTx {
  async insertCluster(r: ClusterRecord): Promise<void> {
    if ((await this.exec.run(this.q.insertCluster, clusterParams('insertCluster', r))) === 0) {
      throw storeError('store_conflict', 'insertCluster: a cluster record exists');
    }
  }

  async updateCluster(r: ClusterRecord): Promise<void> {
    if ((await this.exec.run(this.q.updateCluster, clusterParams('updateCluster', r))) === 0) {
      throw storeError('store_not_found', 'updateCluster: no cluster record');
    }
  }

  async deleteCluster(): Promise<void> {
    if ((await this.exec.run(this.q.deleteCluster, [])) === 0) {
      throw storeError('store_not_found', 'deleteCluster: no cluster record');
    }
  }

  async insertIvk(r: IvkRecord): Promise<void> {
    if ((await this.exec.run(this.q.insertIvk, ivkParams('insertIvk', r))) === 0) {
      throw storeError('store_conflict', `insertIvk: IVK version ${r.version} exists`);
    }
  }

  async updateIvk(r: IvkRecord): Promise<void> {
    const [version, ...rest] = ivkParams('updateIvk', r);
    if ((await this.exec.run(this.q.updateIvk, [...rest, version ?? null])) === 0) {
      throw storeError('store_not_found', `updateIvk: no IVK version ${r.version}`);
    }
  }

  async deleteIvk(version: number): Promise<void> {
    if ((await this.exec.run(this.q.deleteIvk, [checkInt('deleteIvk', 'version', version)])) === 0) {
      throw storeError('store_not_found', `deleteIvk: no IVK version ${version}`);
    }
  }

  async insertL2(r: L2Record): Promise<void> {
    if ((await this.exec.run(this.q.insertL2, l2Params('insertL2', r))) === 0) {
      throw storeError('store_conflict', `insertL2: L2 ${r.tenant} v${r.version} exists`);
    }
  }

  async updateL2(r: L2Record): Promise<void> {
    const [tenant, version, ...rest] = l2Params('updateL2', r);
    if ((await this.exec.run(this.q.updateL2, [...rest, tenant ?? null, version ?? null])) === 0) {
      throw storeError('store_not_found', `updateL2: no L2 ${r.tenant} v${r.version}`);
    }
  }

  async insertTenant(r: TenantRecord): Promise<void> {
    if ((await this.exec.run(this.q.insertTenant, tenantParams('insertTenant', r))) === 0) {
      throw storeError('store_conflict', `insertTenant: tenant ${r.id} exists`);
    }
  }

  async updateTenant(r: TenantRecord): Promise<void> {
    if ((await this.exec.run(this.q.updateTenant, keyLast(tenantParams('updateTenant', r), 1))) === 0) {
      throw storeError('store_not_found', `updateTenant: no tenant ${r.id}`);
    }
  }

  async insertL3Service(r: L3ServiceRecord): Promise<void> {
    if ((await this.exec.run(this.q.insertL3Service, l3ServiceParams('insertL3Service', r))) === 0) {
      throw storeError('store_conflict', `insertL3Service: ${r.tenant}/${r.service} exists`);
    }
  }

  async updateL3Service(r: L3ServiceRecord): Promise<void> {
    if ((await this.exec.run(this.q.updateL3Service, keyLast(l3ServiceParams('updateL3Service', r), 2))) === 0) {
      throw storeError('store_not_found', `updateL3Service: no service ${r.tenant}/${r.service}`);
    }
  }

  async insertL3(r: L3Record): Promise<void> {
    if ((await this.exec.run(this.q.insertL3, l3Params('insertL3', r))) === 0) {
      throw storeError('store_conflict', `insertL3: L3 ${r.tenant}/${r.service} v${r.version} exists`);
    }
  }

  async updateL3(r: L3Record): Promise<void> {
    if ((await this.exec.run(this.q.updateL3, keyLast(l3Params('updateL3', r), 3))) === 0) {
      throw storeError('store_not_found', `updateL3: no L3 ${r.tenant}/${r.service} v${r.version}`);
    }
  }

  /**
   * Reads the latest seq and inserts at latest + 1, in this transaction: the
   * seq order is the commit order, without gaps. (A database sequence would
   * hand out numbers at insert time, so on PostgreSQL a later seq could commit
   * first and an edge reading in between would ack past an event it never saw.)
   * Two PostgreSQL transactions appending at once conflict: one gets a
   * serialization failure and is re-run by the store. Events are never
   * deleted, so a seq is never reused.
   */
  async appendEvent(
    r: Omit<KeyEventRecord, 'seq' | 'mac'>,
    sign: (withSeq: Omit<KeyEventRecord, 'mac'>) => Buffer,
  ): Promise<KeyEventRecord> {
    const seq = (await this.latestEventSeq()) + 1;
    const { type, tenant, service, version, createdAt } = r;
    const unsigned: Omit<KeyEventRecord, 'mac'> = { seq, type, tenant, service, version, createdAt };
    keyEventParams('appendEvent', { ...unsigned, mac: Buffer.alloc(0) }); // refuse a bad record before signing it
    const stored: KeyEventRecord = { ...unsigned, mac: checkBuf('appendEvent', 'mac', sign({ ...unsigned })) };
    if ((await this.exec.run(this.q.insertEvent, keyEventParams('appendEvent', stored))) === 0) {
      throw storeError('internal_error', `appendEvent: seq ${seq} taken inside a serialisable transaction`);
    }
    return stored;
  }

  async upsertEdge(r: EdgeRecord): Promise<void> {
    await this.exec.run(this.q.upsertEdge, edgeParams('upsertEdge', r));
  }

  async insertApproval(r: ApprovalRecord): Promise<void> {
    if ((await this.exec.run(this.q.insertApproval, approvalParams('insertApproval', r))) === 0) {
      throw storeError('store_conflict', `insertApproval: request ${r.id} exists`);
    }
  }

  async updateApproval(r: ApprovalRecord): Promise<void> {
    if ((await this.exec.run(this.q.updateApproval, keyLast(approvalParams('updateApproval', r), 1))) === 0) {
      throw storeError('store_not_found', `updateApproval: no request ${r.id}`);
    }
  }
}

/**
 * The StoreReader methods of a store, each answered by `reads()` (the store's
 * SqlReader outside transactions): the SQLite and PostgreSQL stores extend it
 * instead of repeating the delegations.
 */
export abstract class DelegatingReader implements StoreReader {
  protected abstract reads(): StoreReader;

  getCluster: StoreReader['getCluster'] = () => this.reads().getCluster();
  listIvks: StoreReader['listIvks'] = () => this.reads().listIvks();
  getIvk: StoreReader['getIvk'] = (version) => this.reads().getIvk(version);
  getL2: StoreReader['getL2'] = (tenant, version) => this.reads().getL2(tenant, version);
  getLatestL2: StoreReader['getLatestL2'] = (tenant) => this.reads().getLatestL2(tenant);
  countL2ByIvk: StoreReader['countL2ByIvk'] = (ivkVersion) => this.reads().countL2ByIvk(ivkVersion);
  listL2BelowIvk: StoreReader['listL2BelowIvk'] = (ivkVersion, limit) => this.reads().listL2BelowIvk(ivkVersion, limit);
  listL2: StoreReader['listL2'] = (tenant) => this.reads().listL2(tenant);
  getTenant: StoreReader['getTenant'] = (id) => this.reads().getTenant(id);
  listTenants: StoreReader['listTenants'] = (afterId, limit) => this.reads().listTenants(afterId, limit);
  getL3Service: StoreReader['getL3Service'] = (tenant, service) => this.reads().getL3Service(tenant, service);
  listL3Services: StoreReader['listL3Services'] = (tenant) => this.reads().listL3Services(tenant);
  getL3: StoreReader['getL3'] = (tenant, service, version) => this.reads().getL3(tenant, service, version);
  listL3: StoreReader['listL3'] = (tenant, service) => this.reads().listL3(tenant, service);
  listL3ByTenant: StoreReader['listL3ByTenant'] = (tenant) => this.reads().listL3ByTenant(tenant);
  listL3DueForRotation: StoreReader['listL3DueForRotation'] = (now, limit) =>
    this.reads().listL3DueForRotation(now, limit);
  listEventsAfter: StoreReader['listEventsAfter'] = (afterSeq, limit) => this.reads().listEventsAfter(afterSeq, limit);
  latestEventSeq: StoreReader['latestEventSeq'] = () => this.reads().latestEventSeq();
  getEdge: StoreReader['getEdge'] = (edgeId) => this.reads().getEdge(edgeId);
  listEdges: StoreReader['listEdges'] = () => this.reads().listEdges();
  getApproval: StoreReader['getApproval'] = (id) => this.reads().getApproval(id);
  listApprovals: StoreReader['listApprovals'] = (state, limit) => this.reads().listApprovals(state, limit);
}
