/**
 * Internal versioned keys (ADR-301–304). The MasterKey wraps the IVK versions;
 * the newest (ACTIVE) wraps new L2 keys, older ones only unwrap.
 *
 * Tiers (ADR-304): 1 = plaintext in native locked memory (ACTIVE + GRACE),
 * 3 = the store (source of truth). DEPRECATED versions are unwrapped on
 * demand and dropped again; REVOKED ones and ones past their hard expiry are
 * refused. A rotation is one transaction (new ACTIVE row, old row → GRACE);
 * the new version is used only after the transaction has committed.
 *
 * Triggers (ADR-303): scheduled (ACTIVE older than rotationPeriodMs), volume
 * (wraps ≥ maxWraps, counted durably with each wrap), emergency (admin API).
 */

import { KcmError } from '../../../common/src/errors.ts';
import { decodeWrappedKey, encodeWrappedKey, wrapAad } from '../../../common/src/format/wrapped-key.ts';
import type { Crypto, KeyHandle } from '../../../native/index.ts';
import { crashPoint } from '../fault/crash-point.ts';
import { ivkRef, l2Ref, masterKeyRef } from '../keys/key-names.ts';
import type { IntegrityStore, IntegrityTx, Unsigned } from '../store/integrity-store.ts';
import type { IvkRecord, L2Record } from '../store/records.ts';
import { ivkDigest } from './ivk-digest.ts';
import type { IvkPolicy } from './ivk-policy.ts';

export type RotationReason = 'scheduled' | 'volume' | 'emergency';

/** IVK metadata without the wrapped blob or MAC: what status APIs show. */
export type IvkInfo = Omit<IvkRecord, 'wrapped' | 'mac'> & { inMemory: boolean };

export interface IvkEvents {
  rotated?(info: { from: number; to: number; reason: RotationReason }): void;
  deprecated?(version: number): void;
}

export interface IvkManagerOptions {
  crypto: Crypto;
  store: IntegrityStore;
  clusterId: string;
  region: string;
  masterKey: KeyHandle;
  policy: IvkPolicy;
  now?: () => number;
  events?: IvkEvents;
}

/** Makes IVK v1, ACTIVE, inside the init transaction (the caller commits and records the IVK head). */
export async function createFirstIvk(
  tx: IntegrityTx,
  o: Pick<IvkManagerOptions, 'crypto' | 'clusterId' | 'region' | 'masterKey' | 'policy'>,
  now: number,
): Promise<void> {
  const key = o.crypto.generateKey();
  try {
    await tx.insertIvk(newIvkRecord(o, key, 1, now));
  } finally {
    key.destroy();
  }
}

/** Rewrites the IVK head in the cluster record from the rows as they now stand in `tx`; returns the rows. */
async function writeIvkHead(tx: IntegrityTx): Promise<IvkRecord[]> {
  const all = await tx.listIvks();
  const cluster = await tx.getCluster();
  if (!cluster) throw new KcmError('not_initialized');
  const { mac: _m, ...rest } = cluster;
  await tx.updateCluster({ ...rest, ivkDigest: ivkDigest(all) });
  return all;
}

function newIvkRecord(
  o: Pick<IvkManagerOptions, 'clusterId' | 'region' | 'masterKey' | 'policy'>,
  key: KeyHandle,
  version: number,
  now: number,
): Unsigned<IvkRecord> {
  const wrapping = masterKeyRef(o.clusterId);
  const wrapped = ivkRef(o.region, version);
  const sealed = o.masterKey.wrap(key, wrapAad(wrapping, wrapped));
  return {
    version,
    state: 'ACTIVE',
    createdAt: now,
    retiredAt: null,
    hardExpiry: now + o.policy.hardExpiryMs,
    wraps: 0,
    wrapped: encodeWrappedKey({ wrapping, wrapped, sealed }),
  };
}

export class IvkManager {
  readonly #o: IvkManagerOptions;
  readonly #now: () => number;
  /** Tier 1: unwrapped ACTIVE and GRACE versions. */
  readonly #memory = new Map<number, KeyHandle>();
  #records = new Map<number, IvkRecord>();
  #active = 0;
  #lock: Promise<unknown> = Promise.resolve();
  /** Set by wipe (seal): work that commits afterwards must not put keys back in memory. */
  #wiped = false;

  constructor(o: IvkManagerOptions) {
    this.#o = o;
    this.#now = o.now ?? Date.now;
  }

  /** Loads the versions (verified) and unwraps ACTIVE + GRACE into memory. Nothing else is loaded. */
  async load(): Promise<void> {
    const records = await this.#o.store.listIvks();
    const cluster = await this.#o.store.getCluster();
    const active = records.filter((r) => r.state === 'ACTIVE');
    if (!cluster || !cluster.ivkDigest.equals(ivkDigest(records)) || active.length !== 1) {
      this.#o.store.reportTamper({ table: 'ivk_versions', id: 'head' });
      throw new KcmError('record_tampered', 'ivk_versions do not match the IVK head in the cluster record');
    }
    this.#records = new Map(records.map((r) => [r.version, r]));
    this.#active = (active[0] as IvkRecord).version;
    for (const r of records)
      if (r.state === 'ACTIVE' || r.state === 'GRACE') this.#memory.set(r.version, this.#unwrap(r));
  }

  get activeVersion(): number {
    return this.#active;
  }

  /** Metadata of every version, newest first. */
  list(): IvkInfo[] {
    return [...this.#records.values()]
      .sort((a, b) => b.version - a.version)
      .map(({ wrapped: _w, mac: _m, ...info }) => ({ ...info, inMemory: this.#memory.has(info.version) }));
  }

  #unwrap(r: IvkRecord): KeyHandle {
    const blob = decodeWrappedKey(r.wrapped);
    const expected = ivkRef(this.#o.region, r.version);
    if (blob.wrapped.version !== expected.version || blob.wrapped.keyId !== expected.keyId) {
      throw new KcmError('record_tampered', `ivk_versions v${r.version}: blob names another key`);
    }
    return this.#o.masterKey.unwrap(blob.sealed, wrapAad(masterKeyRef(this.#o.clusterId), expected));
  }

  /** Serialises rotations, retirements and wraps so triggers never race. */
  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#lock.then(fn, fn);
    this.#lock = run.catch(() => {});
    return run;
  }

  /** Creates the next version and makes it ACTIVE after commit; the old one becomes GRACE. */
  rotate(reason: RotationReason): Promise<IvkInfo> {
    return this.#exclusive(() => this.#rotate(reason));
  }

  async #rotate(reason: RotationReason): Promise<IvkInfo> {
    const now = this.#now();
    const fromVersion = this.#active;
    const key = this.#o.crypto.generateKey();
    let rows: IvkRecord[];
    let nextVersion: number;
    try {
      [rows, nextVersion] = await this.#o.store.transaction(async (tx) => {
        const from = await tx.getIvk(fromVersion);
        if (!from || from.state !== 'ACTIVE')
          throw new KcmError('record_tampered', `ivk_versions v${fromVersion} is not ACTIVE`);
        const { mac: _m, ...fromRest } = from;
        const record = newIvkRecord(this.#o, key, from.version + 1, now);
        await tx.updateIvk({ ...fromRest, state: 'GRACE', retiredAt: now });
        await tx.insertIvk(record);
        const written = await writeIvkHead(tx);
        crashPoint('rotate:before-commit');
        return [written, record.version] as const;
      });
    } catch (err) {
      key.destroy();
      throw err;
    }
    crashPoint('rotate:after-commit');
    if (this.#wiped) {
      key.destroy();
      throw new KcmError('sealed', 'sealed while the rotation committed; it takes effect at the next unseal');
    }
    this.#records = new Map(rows.map((r) => [r.version, r]));
    this.#memory.set(nextVersion, key);
    this.#active = nextVersion;
    this.#o.events?.rotated?.({ from: fromVersion, to: nextVersion, reason });
    return this.#info(this.#records.get(nextVersion) as IvkRecord);
  }

  #info(r: IvkRecord): IvkInfo {
    const { wrapped: _w, mac: _m, ...info } = r;
    return { ...info, inMemory: this.#memory.has(r.version) };
  }

  /**
   * Applies time and volume triggers: scheduled rotation, volume rotation,
   * GRACE → DEPRECATED after graceMs (evicted from memory). Returns what it did.
   */
  tick(): Promise<string[]> {
    return this.#exclusive(async () => {
      const done: string[] = [];
      const now = this.#now();
      const active = this.#records.get(this.#active);
      if (active && now - active.createdAt >= this.#o.policy.rotationPeriodMs) {
        await this.#rotate('scheduled');
        done.push('rotated:scheduled');
      } else if (active && active.wraps >= this.#o.policy.maxWraps) {
        await this.#rotate('volume');
        done.push('rotated:volume');
      }
      for (const r of this.#records.values()) {
        if (r.state === 'GRACE' && r.retiredAt !== null && now - r.retiredAt >= this.#o.policy.graceMs) {
          await this.#setState(r, 'DEPRECATED');
          done.push(`deprecated:v${r.version}`);
          this.#o.events?.deprecated?.(r.version);
        }
      }
      return done;
    });
  }

  async #setState(r: IvkRecord, state: IvkRecord['state']): Promise<void> {
    const rows = await this.#o.store.transaction(async (tx) => {
      const stored = await tx.getIvk(r.version);
      if (!stored) throw new KcmError('store_not_found', `IVK v${r.version}`);
      const { mac: _m, ...rest } = stored;
      await tx.updateIvk({ ...rest, state });
      const written = await writeIvkHead(tx);
      crashPoint('retire:before-commit');
      return written;
    });
    this.#records = new Map(rows.map((row) => [row.version, row]));
    if (state !== 'ACTIVE' && state !== 'GRACE') {
      this.#memory.get(r.version)?.destroy();
      this.#memory.delete(r.version);
    }
  }

  /**
   * Wraps an L2 key under the ACTIVE version, counting the wrap durably in the
   * caller's transaction (`tx`); a volume rotation follows on the next tick.
   */
  async wrapL2(
    tx: IntegrityTx,
    l2: KeyHandle,
    tenant: string,
    l2Version: number,
  ): Promise<{ ivkVersion: number; wrapped: Buffer }> {
    const version = this.#active;
    const ivk = this.#memory.get(version);
    const record = await tx.getIvk(version);
    if (!ivk || !record) throw new KcmError('internal_error', 'ACTIVE IVK not in memory');
    const wrapping = ivkRef(this.#o.region, version);
    const wrapped = l2Ref(tenant, l2Version);
    const sealed = ivk.wrap(l2, wrapAad(wrapping, wrapped));
    const { mac: _m, ...rest } = record;
    await tx.updateIvk({ ...rest, wraps: record.wraps + 1 });
    // Counted in memory before the caller commits: a rollback only makes the volume rotation come earlier.
    this.#records.set(version, { ...record, wraps: record.wraps + 1 });
    return { ivkVersion: version, wrapped: encodeWrappedKey({ wrapping, wrapped, sealed }) };
  }

  /**
   * Stores a new L2 key version for `tenant`: wrapped under the ACTIVE IVK
   * (counted, see wrapL2) and inserted ACTIVE with no sovereign binding yet,
   * in the caller's transaction. Throws `store_conflict` when that version exists.
   */
  async insertL2(tx: IntegrityTx, l2: KeyHandle, tenant: string, version: number, createdAt: number): Promise<void> {
    const { ivkVersion, wrapped } = await this.wrapL2(tx, l2, tenant, version);
    await tx.insertL2({
      tenant,
      version,
      state: 'ACTIVE',
      ivkVersion,
      wrappedActive: wrapped,
      wrappedSovereign: null,
      createdAt,
    });
  }

  /** Unwraps an L2 record's active binding; DEPRECATED versions are loaded for the call and wiped. */
  async unwrapL2(r: L2Record): Promise<KeyHandle> {
    const record = this.#records.get(r.ivkVersion) ?? (await this.#o.store.getIvk(r.ivkVersion));
    if (!record) throw new KcmError('store_not_found', `IVK v${r.ivkVersion}`);
    if (record.state === 'REVOKED') throw new KcmError('key_destroyed', `IVK v${r.ivkVersion} is revoked`);
    if (this.#now() >= record.hardExpiry)
      throw new KcmError('key_destroyed', `IVK v${r.ivkVersion} is past its hard expiry`);
    const blob = decodeWrappedKey(r.wrappedActive);
    const aad = wrapAad(ivkRef(this.#o.region, r.ivkVersion), l2Ref(r.tenant, r.version));
    if (this.#wiped) throw new KcmError('sealed');
    const cached = this.#memory.get(r.ivkVersion);
    if (cached) return cached.unwrap(blob.sealed, aad);
    const ivk = this.#unwrap(record);
    try {
      return ivk.unwrap(blob.sealed, aad);
    } finally {
      ivk.destroy();
    }
  }

  /** REVOKED: never used again, even to unwrap. The ACTIVE version cannot be revoked (rotate first). */
  revoke(version: number): Promise<void> {
    return this.#exclusive(async () => {
      const r = this.#records.get(version);
      if (!r) throw new KcmError('store_not_found', `IVK v${version}`);
      if (r.state === 'ACTIVE') throw new KcmError('store_conflict', `IVK v${version} is ACTIVE: rotate first`);
      await this.#setState(r, 'REVOKED');
    });
  }

  /** Deletes a DEPRECATED or REVOKED version that no L2 key uses any more (ADR-302). */
  delete(version: number): Promise<void> {
    return this.#exclusive(async () => {
      const r = this.#records.get(version);
      if (!r) throw new KcmError('store_not_found', `IVK v${version}`);
      if (r.state === 'ACTIVE' || r.state === 'GRACE') {
        throw new KcmError(
          'store_conflict',
          `IVK v${version} is ${r.state}: only DEPRECATED or REVOKED versions can be deleted`,
        );
      }
      const rows = await this.#o.store.transaction(async (tx) => {
        const users = await tx.countL2ByIvk(version);
        if (users > 0) throw new KcmError('store_conflict', `IVK v${version} still wraps ${users} L2 key(s)`);
        await tx.deleteIvk(version);
        return writeIvkHead(tx);
      });
      this.#records = new Map(rows.map((row) => [row.version, row]));
    });
  }

  /** Zeroises every IVK in memory (seal, SIGTERM). */
  wipe(): void {
    this.#wiped = true;
    for (const key of this.#memory.values()) key.destroy();
    this.#memory.clear();
  }
}
