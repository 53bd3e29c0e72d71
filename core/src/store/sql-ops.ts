/**
 * The record operations of store.ts written once over a SqlExecutor: the
 * SQLite and PostgreSQL stores differ only in how they connect, execute and
 * run transactions.
 */
import type { Queries } from './queries.ts';
import type { ClusterRecord, IvkRecord, L2Record } from './records.ts';
import { checkInt, checkText, clusterOf, clusterParams, intOf, ivkOf, ivkParams, l2Of, l2Params } from './row-codec.ts';
import type { StoreReader, StoreTx } from './store.ts';
import { storeError } from './store-error.ts';
import type { SqlExecutor } from './tx-support.ts';

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
}
