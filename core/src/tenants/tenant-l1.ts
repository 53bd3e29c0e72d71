/**
 * A tenant's L1 (ADR-502/504): link (set the reference and create the
 * sovereign binding of every L2 version), unlink, probe, and the automatic
 * suspension when L1 cannot be reached.
 *
 * Modes: `byok` keeps both bindings (the IVK one serves hydrations; L1 is the
 * sovereign copy, used when the active binding fails); `hyok` stores no
 * active binding, so every L2 hydration past the memory cache calls the
 * customer's KMS; `managed` has no L1.
 *
 * Automatic suspension: an L1 call failing `l1_unavailable` or `l1_rejected`
 * (a cold hydration, a probe) suspends an ACTIVE tenant with reason
 * `l1_unreachable` (30-day grace). Only such a suspension is lifted
 * automatically, by a successful probe (the ticker probes those tenants on
 * every tick, and linked ACTIVE tenants every `keys.l1ProbeMs`).
 */
import { KcmError } from '../../../common/src/errors.ts';
import { assertTenantId } from '../../../common/src/format/ids.ts';
import type { KeyHandle } from '../../../native/index.ts';
import type { IvkManager } from '../ivk/ivk-manager.ts';
import { isL1Failure } from '../l1/l1-errors.ts';
import { createSovereignBinding, l1Context, openSovereignBinding } from '../l1/sovereign-binding.ts';
import type { KeyMode, L1Ref, TenantRecord } from '../store/records.ts';
import type { HierarchyContext, OpCtx } from './hierarchy-context.ts';
import { checkMode, type TenantService } from './tenant-service.ts';
import { L1_UNREACHABLE, type TenantInfo, tenantInfo } from './tenant-state.ts';

const SYSTEM: OpCtx = { actor: 'system' };

export class TenantL1 {
  readonly #lastProbe = new Map<string, number>();

  constructor(
    private readonly c: HierarchyContext,
    private readonly tenants: TenantService,
  ) {}

  /**
   * Links (or re-links) `l1` as the tenant's root key in mode `byok` or `hyok`:
   * every L2 version is resolved (through the current bindings) and wrapped
   * under a fresh data key of the new L1; HYOK erases the IVK-wrapped binding,
   * BYOK (re)creates it. Throws `bad_request`, `tenant_not_found`,
   * `tenant_revoked`, `l1_unavailable` / `l1_rejected`.
   */
  async link(
    id: string,
    req: { l1: L1Ref; keyMode: Exclude<KeyMode, 'managed'> },
    ctx: OpCtx = {},
  ): Promise<TenantInfo> {
    assertTenantId(id);
    checkMode(req?.keyMode, req?.l1 ?? null, this.c);
    return this.#rebind(id, 'tenant.l1_link', req.keyMode, req.l1, ctx);
  }

  /** Back to `managed`: the sovereign bindings are dropped, an IVK binding is made where missing (HYOK). */
  async unlink(id: string, ctx: OpCtx = {}): Promise<TenantInfo> {
    assertTenantId(id);
    return this.#rebind(id, 'tenant.l1_unlink', 'managed', null, ctx);
  }

  #rebind(id: string, action: string, keyMode: KeyMode, l1: L1Ref | null, ctx: OpCtx): Promise<TenantInfo> {
    return this.c.exclusive(`tenant:${id}`, async () => {
      try {
        const out = await this.#rebindNow(id, keyMode, l1);
        this.c.audit(action, ctx, id, l1 ? `l1 ${l1.provider}` : `tenant ${id}`);
        return out;
      } catch (err) {
        this.c.audit(action, ctx, id, l1 ? `l1 ${l1.provider}` : `tenant ${id}`, err);
        throw err;
      }
    });
  }

  async #rebindNow(id: string, keyMode: KeyMode, l1: L1Ref | null): Promise<TenantInfo> {
    const ivk = this.c.ivk();
    const t = await this.c.d.store.getTenant(id);
    if (!t) throw new KcmError('tenant_not_found', id);
    if (t.state === 'REVOKED') throw new KcmError('tenant_revoked', id);
    const { clusterId, region } = this.c.cluster();
    const versions = await this.c.d.store.listL2(id);
    const bindings = new Map<number, { handle: KeyHandle; sovereign: Buffer | null }>();
    for (const r of versions) {
      const { handle } = await this.tenants.resolver.resolve(t, r.version);
      const sovereign = l1
        ? await createSovereignBinding(this.c.d, l1, l1Context(clusterId, region, id), handle, r.version)
        : null;
      bindings.set(r.version, { handle, sovereign });
    }
    const now = this.c.d.now();
    // The cached tenant record (keyMode, l1) is dropped after the commit, whatever its outcome.
    await this.#rebindTx(id, keyMode, l1, ivk, bindings, now).finally(() => this.c.meta.invalidateTenant(id, false));
    return tenantInfo((await this.c.tenantRecord(id, true)) as TenantRecord);
  }

  #rebindTx(
    id: string,
    keyMode: KeyMode,
    l1: L1Ref | null,
    ivk: IvkManager,
    bindings: Map<number, { handle: KeyHandle; sovereign: Buffer | null }>,
    now: number,
  ): Promise<void> {
    return this.c.d.store.transaction(async (tx) => {
      const cur = await tx.getTenant(id);
      if (!cur || cur.state === 'REVOKED') throw new KcmError('tenant_revoked', id);
      const { mac: _m, ...rest } = cur;
      await tx.updateTenant({ ...rest, keyMode, l1, updatedAt: now });
      for (const l2 of await tx.listL2(id)) {
        const b = bindings.get(l2.version);
        if (!b) throw new KcmError('store_conflict', `${id} L2 v${l2.version} appeared during the link`);
        const { mac: _l, ...row } = l2;
        const active =
          keyMode === 'hyok'
            ? { ivkVersion: 0, wrapped: Buffer.alloc(0) }
            : row.wrappedActive.length > 0
              ? { ivkVersion: row.ivkVersion, wrapped: row.wrappedActive }
              : await ivk.wrapL2(tx, b.handle, id, l2.version);
        await tx.updateL2({
          ...row,
          ivkVersion: active.ivkVersion,
          wrappedActive: active.wrapped,
          wrappedSovereign: b.sovereign,
        });
      }
    });
  }

  /**
   * Opens the sovereign binding of the tenant's newest L2 through L1 (one
   * provider call) and destroys the result. Success lifts an `l1_unreachable`
   * suspension; failure suspends an ACTIVE tenant. Returns the outcome; throws
   * only `tenant_not_found`, `bad_request` (no L1 linked), `sealed`.
   */
  async probe(id: string, ctx: OpCtx = SYSTEM): Promise<{ ok: boolean; error?: string; state: TenantRecord['state'] }> {
    assertTenantId(id);
    this.c.ivk();
    const t = await this.c.d.store.getTenant(id);
    if (!t) throw new KcmError('tenant_not_found', id);
    const l2 = await this.c.d.store.getLatestL2(id);
    if (!t.l1 || !l2?.wrappedSovereign) throw new KcmError('bad_request', `tenant ${id} has no L1 linked`);
    this.#lastProbe.set(id, this.c.d.now());
    const { clusterId, region } = this.c.cluster();
    try {
      const h = await openSovereignBinding(
        this.c.d,
        t.l1,
        l1Context(clusterId, region, id),
        l2.wrappedSovereign,
        l2.version,
      );
      h.destroy();
    } catch (err) {
      this.c.audit('tenant.l1_probe', ctx, id, `l1 ${t.l1.provider}`, err);
      if (!isL1Failure(err)) throw err;
      await this.onL1Failure(t, err);
      return { ok: false, error: err.code, state: (await this.c.d.store.getTenant(id))?.state ?? t.state };
    }
    this.c.audit('tenant.l1_probe', ctx, id, `l1 ${t.l1.provider}`);
    if (t.state === 'SUSPENDED' && t.reason === L1_UNREACHABLE) {
      await this.tenants.resume(id, SYSTEM, L1_UNREACHABLE).catch(() => undefined);
    }
    return { ok: true, state: (await this.c.d.store.getTenant(id))?.state ?? t.state };
  }

  /** Suspends an ACTIVE tenant after an L1 failure (reason `l1_unreachable`); never throws. */
  async onL1Failure(t: TenantRecord, err: KcmError): Promise<void> {
    if (t.state !== 'ACTIVE') return;
    try {
      await this.tenants.suspend(t.id, { graceDays: 30, reason: L1_UNREACHABLE }, { actor: 'system' });
    } catch {
      // Already suspended or revoked by someone else: the state in the store stands.
    }
    void err;
  }

  /**
   * Ticker part: probes tenants suspended for `l1_unreachable` and linked
   * ACTIVE tenants whose last probe is older than `keys.l1ProbeMs`, at most
   * `keys.l1ProbeBatch` per call. Returns what it did.
   */
  async tick(): Promise<string[]> {
    const done: string[] = [];
    const { l1ProbeMs, l1ProbeBatch } = this.c.d.config;
    const now = this.c.d.now();
    let after = '';
    for (;;) {
      const page = await this.c.d.store.listTenants(after, 500);
      for (const t of page) {
        if (done.length >= l1ProbeBatch) return done;
        if (!t.l1) continue;
        const due =
          (t.state === 'SUSPENDED' && t.reason === L1_UNREACHABLE) ||
          (t.state === 'ACTIVE' && l1ProbeMs > 0 && now - (this.#lastProbe.get(t.id) ?? 0) >= l1ProbeMs);
        if (!due) continue;
        const r = await this.probe(t.id).catch((e: unknown) => ({
          ok: false,
          error: String((e as KcmError).code),
          state: t.state,
        }));
        done.push(`probe:${t.id}:${r.ok ? 'ok' : r.error}`);
      }
      if (page.length < 500) return done;
      after = (page[page.length - 1] as TenantRecord).id;
    }
  }
}
