/**
 * The Store the rest of the Core uses: a raw store (sqlite/ or postgres/)
 * plus record integrity. Every write gets a fresh MAC; every read is checked,
 * and a record that fails is refused with `record_tampered` (and reported to
 * `onTamper`, which audits it) — never returned; a list read fails whole at
 * its first bad row. Until the MasterKey is present (sealed), only
 * `readClusterUnverified` works; everything else throws `sealed`, even a read
 * that would find no row.
 *
 * What a row MAC cannot see: a deleted row, or a whole row replaced by an
 * older version of itself (the IVK table is covered by the cluster's IVK
 * digest; the v3 tables are not).
 */
import { KcmError } from '../../../common/src/errors.ts';
import {
  approvalFields,
  clusterFields,
  edgeFields,
  type Field,
  ivkFields,
  keyEventFields,
  l2Fields,
  l3Fields,
  l3ServiceFields,
  type RecordMac,
  tenantFields,
} from './record-mac.ts';
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
import type { Store, StoreReader, StoreTx } from './store.ts';

/** What a tamper report names (never the record's secret parts). */
export interface TamperEvent {
  table:
    | 'cluster'
    | 'ivk_versions'
    | 'l2_keys'
    | 'tenants'
    | 'l3_services'
    | 'l3_keys'
    | 'key_events'
    | 'edges'
    | 'approvals';
  /** The row's key: `v3`, `tenant v2`, `tenant/service v4`, `seq 17`, an id. */
  id: string;
}

/** Records as callers give them: the MAC is computed here. */
export type Unsigned<T> = Omit<T, 'mac'>;

export interface IntegrityTx extends IntegrityReader {
  /** The unverified transaction, for the one case that must read rows MAC'd under another key: abandoning a pending init. */
  readonly unverified: StoreTx;
  insertCluster(r: Unsigned<ClusterRecord>): Promise<void>;
  updateCluster(r: Unsigned<ClusterRecord>): Promise<void>;
  deleteCluster(): Promise<void>;
  insertIvk(r: Unsigned<IvkRecord>): Promise<void>;
  updateIvk(r: Unsigned<IvkRecord>): Promise<void>;
  deleteIvk(version: number): Promise<void>;
  insertL2(r: Unsigned<L2Record>): Promise<void>;
  updateL2(r: Unsigned<L2Record>): Promise<void>;
  insertTenant(r: Unsigned<TenantRecord>): Promise<void>;
  updateTenant(r: Unsigned<TenantRecord>): Promise<void>;
  insertL3Service(r: Unsigned<L3ServiceRecord>): Promise<void>;
  updateL3Service(r: Unsigned<L3ServiceRecord>): Promise<void>;
  insertL3(r: Unsigned<L3Record>): Promise<void>;
  updateL3(r: Unsigned<L3Record>): Promise<void>;
  /** Appends with the next seq; the MAC covers that seq. Returns the stored record. */
  appendEvent(r: Omit<KeyEventRecord, 'seq' | 'mac'>): Promise<KeyEventRecord>;
  upsertEdge(r: Unsigned<EdgeRecord>): Promise<void>;
  insertApproval(r: Unsigned<ApprovalRecord>): Promise<void>;
  updateApproval(r: Unsigned<ApprovalRecord>): Promise<void>;
}

export type IntegrityReader = StoreReader;

export class IntegrityStore implements IntegrityReader {
  #mac: RecordMac | null = null;

  constructor(
    readonly raw: Store,
    private readonly onTamper: (e: TamperEvent) => void = () => {},
  ) {
    this.#self = this.#reader(raw);
  }

  /** Installs the MAC key at unseal; `null` at seal (the previous key is destroyed). */
  setMac(mac: RecordMac | null): void {
    if (this.#mac && this.#mac !== mac) this.#mac.destroy();
    this.#mac = mac;
  }

  /** Reports a consistency failure found above the row level (e.g. the IVK head) like a bad MAC. */
  reportTamper(e: TamperEvent): void {
    this.onTamper(e);
  }

  get unlocked(): boolean {
    return this.#mac !== null;
  }

  /** The cluster record as stored, MAC not checked: the one read a sealed Core may make. */
  readClusterUnverified(): Promise<ClusterRecord | undefined> {
    return this.raw.getCluster();
  }

  #macKey(): RecordMac {
    if (!this.#mac) throw new KcmError('sealed', 'records cannot be verified while sealed');
    return this.#mac;
  }

  #check<T extends { mac: Buffer }>(
    r: T | undefined,
    table: TamperEvent['table'],
    id: string,
    fields: (r: T) => Field[],
  ): T | undefined {
    const key = this.#macKey(); // sealed even when there is no row: a read never answers while sealed
    if (r === undefined) return undefined;
    if (!key.verify(table, fields(r), r.mac)) {
      this.onTamper({ table, id });
      throw new KcmError('record_tampered', `${table} ${id}`);
    }
    return r;
  }

  #reader(src: StoreReader): IntegrityReader {
    const l2 = (r: L2Record) => this.#checked(r, 'l2_keys', `${r.tenant} v${r.version}`, l2Fields);
    const tenant = (r: TenantRecord) => this.#checked(r, 'tenants', r.id, tenantFields);
    const l3Service = (r: L3ServiceRecord) =>
      this.#checked(r, 'l3_services', `${r.tenant}/${r.service}`, l3ServiceFields);
    const l3 = (r: L3Record) => this.#checked(r, 'l3_keys', `${r.tenant}/${r.service} v${r.version}`, l3Fields);
    const event = (r: KeyEventRecord) => this.#checked(r, 'key_events', `seq ${r.seq}`, keyEventFields);
    const edge = (r: EdgeRecord) => this.#checked(r, 'edges', r.edgeId, edgeFields);
    const approval = (r: ApprovalRecord) => this.#checked(r, 'approvals', r.id, approvalFields);
    const ivk = (r: IvkRecord) => this.#checked(r, 'ivk_versions', `v${r.version}`, ivkFields);
    /** A list read: refused while sealed (before the query), then every row verified. */
    const list = async <T>(read: () => Promise<T[]>, check: (r: T) => T): Promise<T[]> => {
      this.#macKey();
      return (await read()).map(check);
    };
    return {
      getCluster: async () => {
        const r = await src.getCluster();
        return this.#check(r, 'cluster', r?.clusterId ?? '', clusterFields);
      },
      listIvks: () => list(() => src.listIvks(), ivk),
      getIvk: async (v) => this.#check(await src.getIvk(v), 'ivk_versions', `v${v}`, ivkFields),
      getL2: async (t, v) => this.#check(await src.getL2(t, v), 'l2_keys', `${t} v${v}`, l2Fields),
      getLatestL2: async (t) => {
        const r = await src.getLatestL2(t);
        return this.#check(r, 'l2_keys', `${t} v${r?.version ?? ''}`, l2Fields);
      },
      countL2ByIvk: async (v) => {
        this.#macKey();
        return src.countL2ByIvk(v);
      },
      listL2BelowIvk: (v, limit) => list(() => src.listL2BelowIvk(v, limit), l2),
      listL2: (t) => list(() => src.listL2(t), l2),
      getTenant: async (id) => this.#check(await src.getTenant(id), 'tenants', id, tenantFields),
      listTenants: (after, limit) => list(() => src.listTenants(after, limit), tenant),
      getL3Service: async (t, sv) =>
        this.#check(await src.getL3Service(t, sv), 'l3_services', `${t}/${sv}`, l3ServiceFields),
      listL3Services: (t) => list(() => src.listL3Services(t), l3Service),
      getL3: async (t, sv, v) => this.#check(await src.getL3(t, sv, v), 'l3_keys', `${t}/${sv} v${v}`, l3Fields),
      listL3: (t, sv) => list(() => src.listL3(t, sv), l3),
      listL3ByTenant: (t) => list(() => src.listL3ByTenant(t), l3),
      listL3DueForRotation: (now, limit) => list(() => src.listL3DueForRotation(now, limit), l3),
      listEventsAfter: (after, limit) => list(() => src.listEventsAfter(after, limit), event),
      latestEventSeq: async () => {
        this.#macKey();
        return src.latestEventSeq();
      },
      getEdge: async (id) => this.#check(await src.getEdge(id), 'edges', id, edgeFields),
      listEdges: () => list(() => src.listEdges(), edge),
      getApproval: async (id) => this.#check(await src.getApproval(id), 'approvals', id, approvalFields),
      listApprovals: (state, limit) => list(() => src.listApprovals(state, limit), approval),
    };
  }

  /** `r` if its MAC verifies (for the list reads); throws like #check. */
  #checked<T extends { mac: Buffer }>(r: T, table: TamperEvent['table'], id: string, fields: (r: T) => Field[]): T {
    return this.#check(r, table, id, fields) as T;
  }

  readonly #self: IntegrityReader;
  getCluster = () => this.#self.getCluster();
  listIvks = () => this.#self.listIvks();
  getIvk = (v: number) => this.#self.getIvk(v);
  getL2 = (t: string, v: number) => this.#self.getL2(t, v);
  getLatestL2 = (t: string) => this.#self.getLatestL2(t);
  countL2ByIvk = (v: number) => this.#self.countL2ByIvk(v);
  listL2BelowIvk = (v: number, limit: number) => this.#self.listL2BelowIvk(v, limit);
  listL2 = (t: string) => this.#self.listL2(t);
  getTenant = (id: string) => this.#self.getTenant(id);
  listTenants = (afterId: string, limit: number) => this.#self.listTenants(afterId, limit);
  getL3Service = (t: string, service: string) => this.#self.getL3Service(t, service);
  listL3Services = (t: string) => this.#self.listL3Services(t);
  getL3 = (t: string, service: string, v: number) => this.#self.getL3(t, service, v);
  listL3 = (t: string, service: string) => this.#self.listL3(t, service);
  listL3ByTenant = (t: string) => this.#self.listL3ByTenant(t);
  listL3DueForRotation = (now: number, limit: number) => this.#self.listL3DueForRotation(now, limit);
  listEventsAfter = (afterSeq: number, limit: number) => this.#self.listEventsAfter(afterSeq, limit);
  latestEventSeq = () => this.#self.latestEventSeq();
  getEdge = (edgeId: string) => this.#self.getEdge(edgeId);
  listEdges = () => this.#self.listEdges();
  getApproval = (id: string) => this.#self.getApproval(id);
  listApprovals = (state: ApprovalState | null, limit: number) => this.#self.listApprovals(state, limit);

  /** One transaction; every record written in it is MAC'd with the current key. */
  transaction<T>(fn: (tx: IntegrityTx) => Promise<T>): Promise<T> {
    const mac = this.#macKey();
    return this.raw.transaction((tx: StoreTx) => {
      const sign = <R>(table: TamperEvent['table'], fields: (r: R) => Field[], r: R): R & { mac: Buffer } => ({
        ...r,
        mac: mac.mac(table, fields(r)),
      });
      const itx: IntegrityTx = {
        ...this.#reader(tx),
        unverified: tx,
        insertCluster: (r) => tx.insertCluster(sign('cluster', clusterFields, r)),
        updateCluster: (r) => tx.updateCluster(sign('cluster', clusterFields, r)),
        deleteCluster: () => tx.deleteCluster(),
        insertIvk: (r) => tx.insertIvk(sign('ivk_versions', ivkFields, r)),
        updateIvk: (r) => tx.updateIvk(sign('ivk_versions', ivkFields, r)),
        deleteIvk: (v) => tx.deleteIvk(v),
        insertL2: (r) => tx.insertL2(sign('l2_keys', l2Fields, r)),
        updateL2: (r) => tx.updateL2(sign('l2_keys', l2Fields, r)),
        insertTenant: (r) => tx.insertTenant(sign('tenants', tenantFields, r)),
        updateTenant: (r) => tx.updateTenant(sign('tenants', tenantFields, r)),
        insertL3Service: (r) => tx.insertL3Service(sign('l3_services', l3ServiceFields, r)),
        updateL3Service: (r) => tx.updateL3Service(sign('l3_services', l3ServiceFields, r)),
        insertL3: (r) => tx.insertL3(sign('l3_keys', l3Fields, r)),
        updateL3: (r) => tx.updateL3(sign('l3_keys', l3Fields, r)),
        appendEvent: (r) => tx.appendEvent(r, (withSeq) => mac.mac('key_events', keyEventFields(withSeq))),
        upsertEdge: (r) => tx.upsertEdge(sign('edges', edgeFields, r)),
        insertApproval: (r) => tx.insertApproval(sign('approvals', approvalFields, r)),
        updateApproval: (r) => tx.updateApproval(sign('approvals', approvalFields, r)),
      };
      return fn(itx);
    });
  }
}
