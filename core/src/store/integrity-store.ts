/**
 * The Store the rest of the Core uses: a raw store (sqlite/ or postgres/)
 * plus record integrity. Every write gets a fresh MAC; every read is checked,
 * and a record that fails is refused with `record_tampered` (and reported to
 * `onTamper`, which audits it) — never returned. Until the MasterKey is
 * present (sealed), only `readClusterUnverified` works; everything else
 * throws `sealed`.
 */
import { KcmError } from '../../../common/src/errors.ts';
import { clusterFields, type Field, ivkFields, l2Fields, type RecordMac } from './record-mac.ts';
import type { ClusterRecord, IvkRecord, L2Record } from './records.ts';
import type { Store, StoreReader, StoreTx } from './store.ts';

/** What a tamper report names (never the record's secret parts). */
export interface TamperEvent {
  table: 'cluster' | 'ivk_versions' | 'l2_keys';
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
    if (r === undefined) return undefined;
    if (!this.#macKey().verify(table, fields(r), r.mac)) {
      this.onTamper({ table, id });
      throw new KcmError('record_tampered', `${table} ${id}`);
    }
    return r;
  }

  #reader(src: StoreReader): IntegrityReader {
    return {
      getCluster: async () => {
        const r = await src.getCluster();
        return this.#check(r, 'cluster', r?.clusterId ?? '', clusterFields);
      },
      listIvks: async () =>
        (await src.listIvks()).map((r) => this.#check(r, 'ivk_versions', `v${r.version}`, ivkFields) as IvkRecord),
      getIvk: async (v) => this.#check(await src.getIvk(v), 'ivk_versions', `v${v}`, ivkFields),
      getL2: async (t, v) => this.#check(await src.getL2(t, v), 'l2_keys', `${t} v${v}`, l2Fields),
      getLatestL2: async (t) => {
        const r = await src.getLatestL2(t);
        return this.#check(r, 'l2_keys', `${t} v${r?.version ?? ''}`, l2Fields);
      },
      countL2ByIvk: (v) => {
        this.#macKey();
        return src.countL2ByIvk(v);
      },
      listL2BelowIvk: async (v, limit) =>
        (await src.listL2BelowIvk(v, limit)).map(
          (r) => this.#check(r, 'l2_keys', `${r.tenant} v${r.version}`, l2Fields) as L2Record,
        ),
    };
  }

  readonly #self: IntegrityReader;
  getCluster = () => this.#self.getCluster();
  listIvks = () => this.#self.listIvks();
  getIvk = (v: number) => this.#self.getIvk(v);
  getL2 = (t: string, v: number) => this.#self.getL2(t, v);
  getLatestL2 = (t: string) => this.#self.getLatestL2(t);
  countL2ByIvk = (v: number) => this.#self.countL2ByIvk(v);
  listL2BelowIvk = (v: number, limit: number) => this.#self.listL2BelowIvk(v, limit);

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
      };
      return fn(itx);
    });
  }
}
