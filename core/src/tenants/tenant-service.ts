/**
 * Tenants (ADR-103/503/504): create, get, list, suspend, resume, revoke (the
 * kill switch), and the L2 key each one owns. L1 linking and probing live in
 * tenant-l1.ts; both write state through tenant-writes.ts.
 *
 * Revocation: the tenant's cached L2/L3 handles are destroyed at once (before
 * the store is written, and nothing of the tenant is cached again by this
 * process); in one transaction the tenant, its L2 versions and every L3
 * version become REVOKED, the IVK-wrapped (active) L2 binding is erased — only
 * the sovereign binding under the customer's L1 stays, so the data is
 * crypto-erased while L1 stays gone — and `tenant.revoked` is appended; after
 * the commit every edge is told through the bus. A restarted Core reads the
 * state and refuses the tenant.
 */
import { KcmError } from '../../../common/src/errors.ts';
import { assertTenantId } from '../../../common/src/format/ids.ts';
import type { KeyHandle } from '../../../native/index.ts';
import { createSovereignBinding, l1Context } from '../l1/sovereign-binding.ts';
import type { KeyMode, L1Ref, TenantRecord } from '../store/records.ts';
import { type HierarchyContext, l2Name, type OpCtx } from './hierarchy-context.ts';
import { L2Resolver, type L2Source } from './l2-resolver.ts';
import { type GraceDays, graceDays, type TenantInfo, tenantInfo, usableTenant } from './tenant-state.ts';
import { writeTenant } from './tenant-writes.ts';

export interface CreateTenantRequest {
  id: string;
  /** Default: `byok` when `l1` is given, else `managed`. */
  keyMode?: KeyMode;
  l1?: L1Ref;
}

export const TENANT_LIST_MAX = 1000;

export class TenantService {
  readonly resolver: L2Resolver;

  constructor(private readonly c: HierarchyContext) {
    this.resolver = new L2Resolver(c);
  }

  /**
   * Creates a tenant with L2 v1 (ACTIVE): wrapped under the current IVK
   * (not for `hyok`) and, with an L1, under a fresh L1 data key (sovereign
   * binding; one provider call). Throws `invalid_tenant_id`, `bad_request`
   * (mode/L1 mismatch, unknown provider), `tenant_exists` (ids are never
   * reused, revoked ones included), `l1_unavailable` / `l1_rejected`, `sealed`.
   */
  async create(req: CreateTenantRequest, ctx: OpCtx = {}): Promise<TenantInfo> {
    const id = req?.id;
    assertTenantId(id);
    const keyMode = req.keyMode ?? (req.l1 ? 'byok' : 'managed');
    return this.c.exclusive(`tenant:${id}`, () =>
      this.#audited('tenant.create', ctx, id, () => this.#create(id, keyMode, req.l1 ?? null)),
    );
  }

  async #create(id: string, keyMode: KeyMode, l1: L1Ref | null): Promise<TenantInfo> {
    checkMode(keyMode, l1, this.c);
    const ivk = this.c.ivk();
    if (await this.c.d.store.getTenant(id)) throw new KcmError('tenant_exists', id);
    const now = this.c.d.now();
    const l2 = this.c.d.crypto.generateKey();
    try {
      const { clusterId, region } = this.c.cluster();
      const sovereign = l1 ? await createSovereignBinding(this.c.d, l1, l1Context(clusterId, region, id), l2, 1) : null;
      const record = {
        id,
        state: 'ACTIVE',
        keyMode,
        l1,
        suspendedAt: null,
        graceDays: null,
        reason: null,
        revokedAt: null,
        createdAt: now,
        updatedAt: now,
      } as const;
      await this.c.d.store.transaction(async (tx) => {
        try {
          await tx.insertTenant(record);
        } catch (err) {
          throw err instanceof KcmError && err.code === 'store_conflict' ? new KcmError('tenant_exists', id) : err;
        }
        const active =
          keyMode === 'hyok' ? { ivkVersion: 0, wrapped: Buffer.alloc(0) } : await ivk.wrapL2(tx, l2, id, 1);
        await tx.insertL2({
          tenant: id,
          version: 1,
          state: 'ACTIVE',
          ivkVersion: active.ivkVersion,
          wrappedActive: active.wrapped,
          wrappedSovereign: sovereign,
          createdAt: now,
        });
      });
      this.c.revoked.delete(id);
      this.c.meta.invalidateTenant(id);
      this.c.l2Cache.set(l2Name(id, 1), l2);
      return tenantInfo((await this.c.tenantRecord(id, true)) as TenantRecord);
    } catch (err) {
      l2.destroy();
      throw err;
    }
  }

  /** The tenant as stored now (not the cached copy); throws `invalid_tenant_id`, `tenant_not_found`, `sealed`. */
  async get(id: string): Promise<TenantInfo> {
    assertTenantId(id);
    const t = await this.c.tenantRecord(id, true);
    if (!t) throw new KcmError('tenant_not_found', id);
    return tenantInfo(t);
  }

  /** Tenants ordered by id after `afterId` ('' = from the start), at most `limit` (1..1000). */
  async list(afterId = '', limit = 100): Promise<TenantInfo[]> {
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > TENANT_LIST_MAX) {
      throw new KcmError('bad_request', `limit must be 1-${TENANT_LIST_MAX}`);
    }
    this.c.ivk();
    return (await this.c.d.store.listTenants(afterId, limit)).map(tenantInfo);
  }

  /**
   * ACTIVE → SUSPENDED: encryption refused (leases carry no active key),
   * decryption allowed for `graceDays` (30/60/90, default 30). Appends
   * `tenant.suspended`. Throws `tenant_not_found`, `tenant_revoked`,
   * `invalid_tenant_state` (already suspended), `bad_request`.
   */
  async suspend(id: string, o: { graceDays?: GraceDays; reason?: string } = {}, ctx: OpCtx = {}): Promise<TenantInfo> {
    assertTenantId(id);
    const days = graceDays(o.graceDays);
    const reason = checkReason(o.reason);
    return this.c.exclusive(`tenant:${id}`, () =>
      this.#audited('tenant.suspend', ctx, id, async () => {
        const now = this.c.d.now();
        return writeTenant(this.c, id, 'tenant.suspended', (t) => {
          if (t.state !== 'ACTIVE') throw stateError(t, 'suspend');
          return { ...t, state: 'SUSPENDED', suspendedAt: now, graceDays: days, reason, updatedAt: now };
        });
      }),
    );
  }

  /** SUSPENDED → ACTIVE; appends `tenant.resumed`. Throws `tenant_revoked`, `invalid_tenant_state` (not suspended). */
  async resume(id: string, ctx: OpCtx = {}, onlyReason?: string): Promise<TenantInfo> {
    assertTenantId(id);
    return this.c.exclusive(`tenant:${id}`, () =>
      this.#audited('tenant.resume', ctx, id, async () => {
        const now = this.c.d.now();
        return writeTenant(this.c, id, 'tenant.resumed', (t) => {
          if (t.state !== 'SUSPENDED' || (onlyReason !== undefined && t.reason !== onlyReason))
            throw stateError(t, 'resume');
          return { ...t, state: 'ACTIVE', suspendedAt: null, graceDays: null, reason: null, updatedAt: now };
        });
      }),
    );
  }

  /**
   * The kill switch (ADR-503): see the file comment. Idempotent (a revoked
   * tenant is returned as is, with no second event). Throws `tenant_not_found`.
   */
  async revoke(id: string, o: { reason?: string } = {}, ctx: OpCtx = {}): Promise<TenantInfo> {
    assertTenantId(id);
    const reason = checkReason(o.reason);
    this.c.ivk();
    // Zeroise first, and keep anything in flight from caching the tenant's keys again.
    const wasRevoked = this.c.revoked.has(id);
    this.c.revoked.add(id);
    this.c.evictTenant(id);
    return this.c.exclusive(`tenant:${id}`, () =>
      this.#audited('tenant.revoke', ctx, id, async () => {
        const now = this.c.d.now();
        try {
          return await writeTenant(this.c, id, 'tenant.revoked', (t) => {
            if (t.state === 'REVOKED') return null;
            return {
              ...t,
              state: 'REVOKED',
              suspendedAt: null,
              graceDays: null,
              reason,
              revokedAt: now,
              updatedAt: now,
            };
          });
        } catch (err) {
          // Fail closed: after any other failure this process keeps refusing the tenant.
          if (!wasRevoked && err instanceof KcmError && err.code === 'tenant_not_found') this.c.revoked.delete(id);
          throw err;
        } finally {
          this.c.evictTenant(id);
        }
      }),
    );
  }

  /**
   * A usable tenant and its latest L2 (resolved per ADR-302). Throws the codes
   * of usableTenant and L2Resolver.resolve; an L1 failure first suspends an
   * ACTIVE tenant automatically (reason `l1_unreachable`, tenant-l1.ts).
   */
  async l2Of(
    t: TenantRecord,
    version: number,
    onL1Failure: (t: TenantRecord, err: KcmError) => Promise<void>,
  ): Promise<{ handle: KeyHandle; source: L2Source }> {
    try {
      return await this.resolver.resolve(t, version);
    } catch (err) {
      if (err instanceof KcmError && (err.code === 'l1_unavailable' || err.code === 'l1_rejected'))
        await onL1Failure(t, err);
      throw err;
    }
  }

  /**
   * The tenant record if it may decrypt now; throws `tenant_not_found`,
   * `tenant_revoked`, `tenant_grace_ended`, `sealed`. The record comes from
   * the metadata cache (at most `keys.metadataCacheMs` old; this Core's own
   * writes invalidate it) unless `fresh` (write paths); the state rules are
   * evaluated against `now` on every call. Tenants revoked by this process
   * are refused before any cache.
   */
  async usable(id: string, fresh = false): Promise<{ t: TenantRecord; canEncrypt: boolean }> {
    assertTenantId(id);
    if (this.c.revoked.has(id)) throw new KcmError('tenant_revoked', id);
    const t = await this.c.tenantRecord(id, fresh);
    const { canEncrypt } = usableTenant(t, id, this.c.d.now());
    return { t: t as TenantRecord, canEncrypt };
  }

  async #audited<T>(action: string, ctx: OpCtx, tenant: string, fn: () => Promise<T>): Promise<T> {
    try {
      const out = await fn();
      this.c.audit(action, ctx, tenant, `tenant ${tenant}`);
      return out;
    } catch (err) {
      this.c.audit(action, ctx, tenant, `tenant ${tenant}`, err);
      throw err;
    }
  }
}

/** Throws `bad_request` unless mode and L1 agree and the L1 is configured. */
export function checkMode(keyMode: KeyMode, l1: L1Ref | null, c: HierarchyContext): void {
  if (keyMode !== 'managed' && keyMode !== 'byok' && keyMode !== 'hyok') {
    throw new KcmError('bad_request', 'keyMode must be managed, byok or hyok');
  }
  if ((keyMode === 'managed') !== (l1 === null)) {
    throw new KcmError(
      'bad_request',
      keyMode === 'managed' ? 'a managed tenant has no l1' : `${keyMode} needs an l1 reference`,
    );
  }
  if (l1) c.d.l1.checkRef(l1);
}

/** Operator text of a suspension/revocation: at most 200 printable characters, never a secret. */
function checkReason(r: unknown): string | null {
  if (r === undefined || r === null) return null;
  if (typeof r !== 'string' || r.length > 200 || !/^[\x20-\x7e]*$/.test(r)) {
    throw new KcmError('bad_request', 'reason must be at most 200 printable ASCII characters');
  }
  return r;
}

function stateError(t: Pick<TenantRecord, 'id' | 'state'>, op: string): KcmError {
  if (t.state === 'REVOKED') return new KcmError('tenant_revoked', t.id);
  return new KcmError('invalid_tenant_state', `cannot ${op} a ${t.state} tenant`);
}
