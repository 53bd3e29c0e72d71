/**
 * L2 resolution (ADR-302), in this order:
 *   1. the locked-memory cache;
 *   2. the active binding (the IVK version named in the record);
 *   3. the sovereign binding through the tenant's L1 (a KMS/HSM call);
 *   4. self-healing: a key obtained through L1, or through a non-current IVK
 *      version, is wrapped again under the current IVK and stored
 *      (not for HYOK tenants, which keep no active binding).
 * Lazy: nothing is loaded until asked for; concurrent misses of the same key
 * share one hydration (one KMS call for HYOK). The cache owns the handles.
 */
import { KcmError } from '../../../common/src/errors.ts';
import type { KeyHandle } from '../../../native/index.ts';
import type { IvkManager } from '../ivk/ivk-manager.ts';
import { l1Context, openSovereignBinding } from '../l1/sovereign-binding.ts';
import type { L2Record, TenantRecord } from '../store/records.ts';
import { type HierarchyContext, l2Name } from './hierarchy-context.ts';

/** Where a resolved L2 came from (audit, benchmarks). */
export type L2Source = 'cache' | 'ivk' | 'l1';

export class L2Resolver {
  readonly #inflight = new Map<string, Promise<{ handle: KeyHandle; source: L2Source }>>();

  constructor(private readonly c: HierarchyContext) {}

  /**
   * L2 version `version` of tenant `t` (a verified, usable record). Throws
   * `sealed`, `key_not_found` (no such L2 version), `tenant_revoked`,
   * `l1_unavailable` / `l1_rejected` (sovereign path), `record_tampered`
   * (no binding opens), `key_destroyed` (IVK revoked or past expiry, no L1).
   */
  resolve(t: TenantRecord, version: number): Promise<{ handle: KeyHandle; source: L2Source }> {
    const ivk = this.c.ivk();
    const name = l2Name(t.id, version);
    const hit = this.c.l2Cache.get(name);
    if (hit) return Promise.resolve({ handle: hit, source: 'cache' });
    let p = this.#inflight.get(name);
    if (!p) {
      p = this.#hydrate(t, version, ivk).finally(() => this.#inflight.delete(name));
      this.#inflight.set(name, p);
    }
    return p;
  }

  async #hydrate(t: TenantRecord, version: number, ivk: IvkManager): Promise<{ handle: KeyHandle; source: L2Source }> {
    const r = await this.c.d.store.getL2(t.id, version);
    if (!r) throw new KcmError('key_not_found', `${t.id} L2 v${version}`);
    if (r.state === 'REVOKED') throw new KcmError('tenant_revoked', t.id);
    const { handle, source } = await this.#unwrap(t, r, ivk);
    const stale = source === 'l1' || r.ivkVersion !== ivk.activeVersion;
    if (stale && t.keyMode !== 'hyok') await this.#rewrap(t, r, handle, ivk, source);
    if (this.c.revoked.has(t.id) || this.c.ivk() !== ivk) {
      handle.destroy();
      throw new KcmError(this.c.revoked.has(t.id) ? 'tenant_revoked' : 'sealed', t.id);
    }
    this.c.l2Cache.set(l2Name(t.id, version), handle);
    return { handle, source };
  }

  /** Active binding first; the sovereign one when the active is missing or fails and the tenant has an L1. */
  async #unwrap(t: TenantRecord, r: L2Record, ivk: IvkManager): Promise<{ handle: KeyHandle; source: 'ivk' | 'l1' }> {
    const sovereign = t.l1 !== null && r.wrappedSovereign !== null && r.wrappedSovereign.length > 0;
    if (r.wrappedActive.length > 0) {
      try {
        return { handle: await ivk.unwrapL2(r), source: 'ivk' };
      } catch (err) {
        if (!sovereign || (err instanceof KcmError && err.code === 'sealed')) throw err;
        this.c.audit('l2.active_binding', { actor: 'system' }, t.id, `l2 v${r.version}`, err);
      }
    } else if (!sovereign) {
      throw new KcmError('record_tampered', `${t.id} L2 v${r.version} has no binding`);
    }
    const { clusterId, region } = this.c.cluster();
    const handle = await openSovereignBinding(
      this.c.d,
      t.l1 as NonNullable<TenantRecord['l1']>,
      l1Context(clusterId, region, t.id),
      r.wrappedSovereign as Buffer,
      r.version,
    );
    return { handle, source: 'l1' };
  }

  /** Stores the L2 wrapped under the current IVK (best effort: a failure is audited, the key is still served). */
  async #rewrap(t: TenantRecord, r: L2Record, handle: KeyHandle, ivk: IvkManager, source: L2Source): Promise<void> {
    try {
      await this.c.d.store.transaction(async (tx) => {
        const cur = await tx.getL2(t.id, r.version);
        if (!cur || cur.state === 'REVOKED' || cur.ivkVersion === ivk.activeVersion) return;
        const { ivkVersion, wrapped } = await ivk.wrapL2(tx, handle, t.id, r.version);
        const { mac: _m, ...rest } = cur;
        await tx.updateL2({ ...rest, ivkVersion, wrappedActive: wrapped });
      });
      this.c.audit(
        'l2.rewrap',
        { actor: 'system' },
        t.id,
        `l2 v${r.version}`,
        undefined,
        source === 'l1' ? 'self_heal' : 'ivk_rotation',
      );
    } catch (err) {
      this.c.audit('l2.rewrap', { actor: 'system' }, t.id, `l2 v${r.version}`, err);
    }
  }
}
