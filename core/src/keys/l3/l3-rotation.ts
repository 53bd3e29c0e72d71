/**
 * Creating and rotating L3 versions (ADR-601), never blocking leases:
 *   1. the new version is generated in native memory, wrapped under the
 *      tenant's newest L2 and written PENDING (durable, not yet used);
 *   2. a second transaction makes it ACTIVE (rotateAfter = now + period),
 *      the previous ACTIVE becomes EXPIRED (decrypt-only), EXPIRED versions
 *      past the service's retention become REVOKED, and the events are
 *      appended (`l3.rotated`, `l3.revoked`);
 *   3. after the commit the new handle enters the cache and the bus is told.
 * A crash between 1 and 2 leaves a PENDING row: the next rotation (or the
 * first lease that finds no ACTIVE version) promotes it instead of making
 * another. Leases see the old ACTIVE version until step 2 commits; after
 * each transaction the service's cached metadata is dropped (before the bus
 * is told), so the next lease reads the new state. Writes to one service are
 * serialised (HierarchyContext.exclusive); rotations read the store, never
 * the metadata cache.
 */
import { KcmError } from '../../../../common/src/errors.ts';
import type { KeyHandle } from '../../../../native/index.ts';
import type { Unsigned } from '../../store/integrity-store.ts';
import type { KeyEventRecord, L3Record, L3ServiceRecord, TenantRecord } from '../../store/records.ts';
import type { HierarchyContext, OpCtx } from '../../tenants/hierarchy-context.ts';
import { l3Name } from '../../tenants/hierarchy-context.ts';
import type { TenantL1 } from '../../tenants/tenant-l1.ts';
import type { TenantService } from '../../tenants/tenant-service.ts';
import { type L3Info, l3Info, pastRetention, wrapL3 } from './l3-keys.ts';

export type RotationReason = 'manual' | 'scheduled' | 'budget' | 'create' | 'recover';

export class L3Rotation {
  constructor(
    private readonly c: HierarchyContext,
    private readonly tenants: TenantService,
    private readonly l1: TenantL1,
  ) {}

  /** Serialises writes to one service key. */
  exclusive<T>(tenant: string, service: string, fn: () => Promise<T>): Promise<T> {
    return this.c.exclusive(`svc:${tenant}\0${service}`, fn);
  }

  /**
   * Rotates now (call inside `exclusive`). With `create`, the service record
   * is inserted in the PENDING transaction. Throws `tenant_suspended` (and the
   * tenant codes), `key_not_found` (no such service), `key_exists` (create of
   * an existing service), L2 resolution codes, store errors.
   */
  async rotateNow(
    tenant: string,
    service: string,
    reason: RotationReason,
    ctx: OpCtx,
    create?: Unsigned<L3ServiceRecord>,
  ): Promise<L3Info> {
    try {
      const info = await this.#rotate(tenant, service, reason, create);
      this.c.audit(create ? 'l3.create' : 'l3.rotate', ctx, tenant, `${service} v${info.version}`, undefined, reason);
      return info;
    } catch (err) {
      this.c.audit(create ? 'l3.create' : 'l3.rotate', ctx, tenant, service, err, reason);
      throw err;
    }
  }

  async #rotate(
    tenant: string,
    service: string,
    reason: RotationReason,
    create?: Unsigned<L3ServiceRecord>,
  ): Promise<L3Info> {
    this.c.ivk();
    const { t, canEncrypt } = await this.tenants.usable(tenant, true);
    if (!canEncrypt) throw new KcmError('tenant_suspended', tenant);
    const svc = create ? undefined : await this.c.d.store.getL3Service(tenant, service);
    if (!create && !svc) throw new KcmError('key_not_found', `${tenant}/${service}`);
    const versions = create ? [] : await this.c.d.store.listL3(tenant, service);
    let pending = versions.filter((v) => v.state === 'PENDING').at(-1);
    let fresh: KeyHandle | null = null;
    if (!pending) {
      const next = (versions.at(-1)?.version ?? 0) + 1;
      [pending, fresh] = await this.#insertPending(t, service, next, create);
    }
    try {
      const { active, events, revoked } = await this.#promote(tenant, service, pending.version).finally(() =>
        this.c.meta.invalidateService(tenant, service),
      );
      for (const v of revoked) this.c.l3Cache.delete(l3Name(tenant, service, v));
      if (fresh && !this.c.revoked.has(tenant)) this.c.l3Cache.set(l3Name(tenant, service, pending.version), fresh);
      else fresh?.destroy();
      fresh = null;
      this.c.notify(events);
      void reason;
      return active;
    } finally {
      fresh?.destroy();
    }
  }

  /** Step 1: a new key wrapped under the newest L2, stored PENDING. Returns the row and the handle. */
  async #insertPending(
    t: TenantRecord,
    service: string,
    version: number,
    create?: Unsigned<L3ServiceRecord>,
  ): Promise<[L3Record, KeyHandle]> {
    const l2Record = await this.c.d.store.getLatestL2(t.id);
    if (!l2Record) throw new KcmError('key_not_found', `${t.id} has no L2`);
    const { handle: l2 } = await this.tenants.l2Of(t, l2Record.version, (tt, e) => this.l1.onL1Failure(tt, e));
    const key = this.c.d.crypto.generateKey();
    try {
      const row: Unsigned<L3Record> = {
        tenant: t.id,
        service,
        version,
        state: 'PENDING',
        l2Version: l2Record.version,
        wrapped: wrapL3(l2, t.id, l2Record.version, service, version, key),
        createdAt: this.c.d.now(),
        activatedAt: null,
        rotateAfter: null,
        expiredAt: null,
        revokedAt: null,
        encryptions: 0,
      };
      const insert = this.c.d.store.transaction(async (tx) => {
        if (create) {
          try {
            await tx.insertL3Service(create);
          } catch (err) {
            throw err instanceof KcmError && err.code === 'store_conflict'
              ? new KcmError('key_exists', `${t.id}/${service}`)
              : err;
          }
        }
        await tx.insertL3(row);
      });
      await insert.finally(() => this.c.meta.invalidateService(t.id, service));
      return [{ ...row, mac: Buffer.alloc(0) }, key];
    } catch (err) {
      key.destroy();
      throw err;
    }
  }

  /** Step 2: PENDING → ACTIVE, ACTIVE → EXPIRED, retention sweep, events; one transaction. */
  async #promote(
    tenant: string,
    service: string,
    version: number,
  ): Promise<{ active: L3Info; events: KeyEventRecord[]; revoked: number[] }> {
    const now = this.c.d.now();
    return this.c.d.store.transaction(async (tx) => {
      const svc = await tx.getL3Service(tenant, service);
      const pending = await tx.getL3(tenant, service, version);
      if (!svc || !pending || pending.state !== 'PENDING') {
        throw new KcmError('invalid_key_state', `${tenant}/${service} v${version} is not PENDING`);
      }
      const events: KeyEventRecord[] = [];
      const revoked: number[] = [];
      for (const r of await tx.listL3(tenant, service)) {
        const { mac: _m, ...row } = r;
        if (r.state === 'ACTIVE') await tx.updateL3({ ...row, state: 'EXPIRED', expiredAt: now, rotateAfter: null });
        else if (pastRetention(r, svc, now)) {
          await tx.updateL3({ ...row, state: 'REVOKED', revokedAt: now });
          events.push(
            await tx.appendEvent({ type: 'l3.revoked', tenant, service, version: r.version, createdAt: now }),
          );
          revoked.push(r.version);
        }
      }
      const { mac: _p, ...row } = pending;
      const active = { ...row, state: 'ACTIVE' as const, activatedAt: now, rotateAfter: now + svc.rotatePeriodMs };
      await tx.updateL3(active);
      events.push(await tx.appendEvent({ type: 'l3.rotated', tenant, service, version, createdAt: now }));
      return { active: l3Info({ ...active, mac: Buffer.alloc(0) }), events, revoked };
    });
  }
}
