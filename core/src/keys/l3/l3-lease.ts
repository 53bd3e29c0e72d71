/**
 * The L3LeaseSource the edge API calls (ADR-602): the key set of one
 * (tenant, service) for an edge, and the encryption counts edges report.
 *
 * Lazy and store-free when warm: the tenant record, the service and its
 * versions come from the metadata cache (HierarchyContext.tenantRecord /
 * serviceMeta: every change made by this Core drops them before it returns;
 * a change by another replica sharing the database is seen within
 * `keys.metadataCacheMs`), a tenant revoked by this process is refused
 * before any cache, and only keys not in the handle cache are unwrapped.
 * Time rules (grace end, retention) are evaluated against `now` on every
 * call. A suspended tenant gets no active key
 * (encryption refused) but its decrypt-only versions, the ACTIVE one
 * included, until its grace ends. The edge API authorises the edge first;
 * every lease is audited with the edge as actor.
 */
import { KcmError } from '../../../../common/src/errors.ts';
import { assertKeyId, assertKeyVersion, isKeyVersion } from '../../../../common/src/format/ids.ts';
import type { HierarchyContext, OpCtx } from '../../tenants/hierarchy-context.ts';
import type { ServiceMeta } from '../../tenants/metadata-cache.ts';
import type { TenantService } from '../../tenants/tenant-service.ts';
import type { L3LeaseSet, L3LeaseSource, LeasedL3Version } from '../l3-lease-source.ts';
import { forcedRotationAt } from './key-settings.ts';
import type { L3Handles } from './l3-keys.ts';
import type { L3Rotation } from './l3-rotation.ts';
import { decryptable } from './service-keys.ts';

/** Most decrypt-only versions one lease may ask for. */
export const MAX_WANT_VERSIONS = 256;

export class L3Lease implements L3LeaseSource {
  constructor(
    private readonly c: HierarchyContext,
    private readonly tenants: TenantService,
    private readonly rotation: L3Rotation,
    private readonly handles: L3Handles,
  ) {}

  /**
   * See L3LeaseSource.leaseSet. Also throws `invalid_tenant_id`,
   * `invalid_key_id`, `bad_request` (more than 256 wanted versions),
   * `l1_rejected`, `record_tampered`.
   */
  async leaseSet(
    tenant: string,
    service: string,
    wantVersions: readonly number[],
    ctx: OpCtx = {},
  ): Promise<L3LeaseSet> {
    try {
      const set = await this.#lease(tenant, service, wantVersions, ctx);
      const versions = [set.active?.version, ...set.decryptOnly.map((v) => v.version)].filter((v) => v !== undefined);
      this.c.audit('l3.lease', ctx, tenant, `${service} v${versions.join(',')}`);
      return set;
    } catch (err) {
      this.c.audit('l3.lease', ctx, typeof tenant === 'string' ? tenant : '', String(service), err);
      throw err;
    }
  }

  async #lease(tenant: string, service: string, want: readonly number[], ctx: OpCtx): Promise<L3LeaseSet> {
    assertKeyId(service);
    if (!Array.isArray(want) || want.length > MAX_WANT_VERSIONS) {
      throw new KcmError('bad_request', `wantVersions: at most ${MAX_WANT_VERSIONS} versions`);
    }
    this.c.ivk();
    const { t, canEncrypt } = await this.tenants.usable(tenant);
    let meta = await this.c.serviceMeta(tenant, service);
    if (!meta) throw new KcmError('key_not_found', `${tenant}/${service}`);
    const stuck = (m: ServiceMeta) =>
      !m.versions.some((v) => v.state === 'ACTIVE') && m.versions.some((v) => v.state === 'PENDING');
    if (canEncrypt && stuck(meta)) {
      // A rotation died between PENDING and ACTIVE: finish it.
      await this.rotation
        .exclusive(tenant, service, () => this.rotation.rotateNow(tenant, service, 'recover', ctx))
        .catch(() => undefined);
      meta = await this.c.serviceMeta(tenant, service, true);
      if (!meta) throw new KcmError('key_not_found', `${tenant}/${service}`);
    }
    const { svc, versions } = meta;
    const now = this.c.d.now();
    const activeRow = versions.find((v) => v.state === 'ACTIVE');
    const active: LeasedL3Version | null =
      canEncrypt && activeRow
        ? { version: activeRow.version, state: 'ACTIVE', handle: await this.handles.get(t, activeRow) }
        : null;
    const decryptOnly: LeasedL3Version[] = [];
    for (const v of new Set(want)) {
      if (!isKeyVersion(v) || v === active?.version) continue;
      const r = versions.find((x) => x.version === v);
      if (!r || !decryptable(r, svc, now)) continue;
      decryptOnly.push({ version: v, state: r.state as 'ACTIVE' | 'EXPIRED', handle: await this.handles.get(t, r) });
    }
    if (active && activeRow && activeRow.encryptions >= forcedRotationAt(svc.encryptionBudget))
      this.#rotateSoon(tenant, service, activeRow.version);
    return {
      tenant,
      service,
      active,
      decryptOnly,
      minDecryptVersion: svc.minDecryptVersion,
      tenantState: canEncrypt ? 'ACTIVE' : 'SUSPENDED',
      activeBudgetLeft: active && activeRow ? Math.max(0, svc.encryptionBudget - activeRow.encryptions) : null,
    };
  }

  /**
   * Adds `count` edge-reported encryptions to `version` (and drops the
   * service's cached metadata, so the next lease's activeBudgetLeft counts
   * them); when the ACTIVE
   * version reaches 90 % of the service's budget it is rotated before this
   * resolves (edges stop at the budget itself: activeBudgetLeft). Throws
   * `invalid_key_version`, `bad_request` (count not 1..2^32), `key_not_found`,
   * tenant codes (revoked tenants' reports are refused).
   */
  async reportEncryptions(
    tenant: string,
    service: string,
    version: number,
    count: number,
    ctx: OpCtx = {},
  ): Promise<void> {
    assertKeyId(service);
    assertKeyVersion(version);
    if (!Number.isSafeInteger(count) || count < 1 || count > 2 ** 32)
      throw new KcmError('bad_request', 'count must be 1..2^32');
    await this.rotation.exclusive(tenant, service, async () => {
      const { canEncrypt } = await this.tenants.usable(tenant, true);
      const [row, svc] = await this.c.d.store
        .transaction(async (tx) => {
          const r = await tx.getL3(tenant, service, version);
          const s = await tx.getL3Service(tenant, service);
          if (!r || !s) throw new KcmError('key_not_found', `${tenant}/${service} v${version}`);
          const { mac: _m, ...rest } = r;
          const next = { ...rest, encryptions: r.encryptions + count };
          await tx.updateL3(next);
          return [next, s] as const;
        })
        .finally(() => this.c.meta.invalidateService(tenant, service));
      if (canEncrypt && row.state === 'ACTIVE' && row.encryptions >= forcedRotationAt(svc.encryptionBudget)) {
        await this.rotation.rotateNow(tenant, service, 'budget', { ...ctx, actor: ctx.actor ?? 'system' });
      }
    });
  }

  /** Rotation in the background for a lease that found the active version at its budget (the lease is not delayed). */
  #rotateSoon(tenant: string, service: string, version: number): void {
    void this.rotation
      .exclusive(tenant, service, async () => {
        const cur = await this.c.d.store.getL3(tenant, service, version);
        if (cur?.state === 'ACTIVE') await this.rotation.rotateNow(tenant, service, 'budget', { actor: 'system' });
      })
      .catch(() => undefined);
  }
}
