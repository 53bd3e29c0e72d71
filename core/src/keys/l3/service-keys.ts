/**
 * The admin API of L3 service keys per (tenant, service) (ADR-601): create,
 * rotate, revoke a version, raise the minimum decryption version, settings,
 * list/get, pre-warm, the keys for one encryption or decryption, and the
 * rotation ticker. Every call is audited (actor, tenant, outcome).
 *
 * States: PENDING (written, not used) → ACTIVE (the one encryption version)
 * → EXPIRED (decrypt-only) → REVOKED (never used again, handle destroyed).
 * Versions below `minDecryptVersion` are refused for decryption
 * (`key_version_too_old`); the minimum only goes up.
 */
import { KcmError } from '../../../../common/src/errors.ts';
import { assertKeyId, assertKeyVersion } from '../../../../common/src/format/ids.ts';
import type { KeyHandle } from '../../../../native/index.ts';
import type { KeyEventRecord, L3Record, L3ServiceRecord } from '../../store/records.ts';
import { type HierarchyContext, l3Name, type OpCtx } from '../../tenants/hierarchy-context.ts';
import type { ServiceMeta } from '../../tenants/metadata-cache.ts';
import type { TenantService } from '../../tenants/tenant-service.ts';
import { serviceSettings } from './key-settings.ts';
import { type L3Handles, type L3Info, pastRetention, type ServiceInfo, serviceInfo } from './l3-keys.ts';
import type { L3Rotation } from './l3-rotation.ts';

const SYSTEM: OpCtx = { actor: 'system' };

export class ServiceKeys {
  constructor(
    private readonly c: HierarchyContext,
    private readonly tenants: TenantService,
    private readonly rotation: L3Rotation,
    private readonly handles: L3Handles,
  ) {}

  /**
   * Creates the service key with v1 ACTIVE. `settings` (rotatePeriodMs,
   * encryptionBudget, expiredRetentionMs) override the configured defaults.
   * Throws `invalid_tenant_id`, `invalid_key_id`, `bad_request`, `key_exists`,
   * `tenant_suspended` and the tenant/L2 codes.
   */
  async create(tenant: string, service: string, settings?: unknown, ctx: OpCtx = {}): Promise<ServiceInfo> {
    assertKeyId(service);
    const s = serviceSettings(settings, this.c.d.config.service);
    const now = this.c.d.now();
    return this.rotation.exclusive(tenant, service, async () => {
      await this.rotation.rotateNow(tenant, service, 'create', ctx, {
        tenant,
        service,
        ...s,
        minDecryptVersion: 1,
        createdAt: now,
        updatedAt: now,
      });
      return this.get(tenant, service);
    });
  }

  /** Makes a new ACTIVE version (the old one becomes EXPIRED). Throws `key_not_found`, `tenant_suspended`, tenant/L2 codes. */
  async rotate(tenant: string, service: string, ctx: OpCtx = {}): Promise<L3Info> {
    assertKeyId(service);
    return this.rotation.exclusive(tenant, service, () => this.rotation.rotateNow(tenant, service, 'manual', ctx));
  }

  /** The service, its settings and every version (no key material). Throws `key_not_found`, tenant codes. */
  async get(tenant: string, service: string): Promise<ServiceInfo> {
    assertKeyId(service);
    const { svc, versions } = await this.#load(tenant, service, false);
    return serviceInfo(svc, versions);
  }

  /** Every service key of the tenant (revoked tenants included, for audit views). */
  async list(tenant: string): Promise<ServiceInfo[]> {
    await this.tenants.get(tenant);
    const out: ServiceInfo[] = [];
    for (const s of await this.c.d.store.listL3Services(tenant)) {
      out.push(serviceInfo(s, await this.c.d.store.listL3(tenant, s.service)));
    }
    return out;
  }

  /**
   * REVOKED: never leased or used again; its cached handle is destroyed;
   * `l3.revoked` is appended. The ACTIVE version cannot be revoked (rotate
   * first: `invalid_key_state`); revoking a revoked version is a no-op.
   * Throws `key_not_found`, tenant codes.
   */
  async revokeVersion(tenant: string, service: string, version: number, ctx: OpCtx = {}): Promise<L3Info> {
    assertKeyId(service);
    assertKeyVersion(version);
    return this.#write('l3.revoke_version', tenant, service, ctx, `v${version}`, async (tx, _svc, now) => {
      const r = await tx.getL3(tenant, service, version);
      if (!r) throw new KcmError('key_not_found', `${tenant}/${service} v${version}`);
      if (r.state === 'ACTIVE' || r.state === 'PENDING')
        throw new KcmError('invalid_key_state', `v${version} is ${r.state}: rotate first`);
      if (r.state === 'REVOKED') return { events: [], info: r };
      const { mac: _m, ...row } = r;
      const next = { ...row, state: 'REVOKED' as const, revokedAt: now };
      await tx.updateL3(next);
      const e = await tx.appendEvent({ type: 'l3.revoked', tenant, service, version, createdAt: now });
      return { events: [e], info: { ...next, mac: r.mac }, evict: [version] };
    });
  }

  /**
   * Raises the minimum decryption version to `version` (≤ the ACTIVE version);
   * handles below it are destroyed; appends `l3.min_decrypt`. Lowering is
   * refused (`invalid_key_state`): edges have dropped those versions.
   */
  async setMinDecrypt(tenant: string, service: string, version: number, ctx: OpCtx = {}): Promise<ServiceInfo> {
    assertKeyId(service);
    assertKeyVersion(version);
    return this.#write('l3.set_min_decrypt', tenant, service, ctx, `min v${version}`, async (tx, svc, now) => {
      const versions = await tx.listL3(tenant, service);
      const active = versions.find((v) => v.state === 'ACTIVE');
      if (!active || version > active.version)
        throw new KcmError('invalid_key_state', `v${version} is above the ACTIVE version`);
      if (version < svc.minDecryptVersion)
        throw new KcmError('invalid_key_state', `the minimum is v${svc.minDecryptVersion}; it only goes up`);
      if (version === svc.minDecryptVersion) return { events: [], info: svc };
      const { mac: _m, ...row } = svc;
      await tx.updateL3Service({ ...row, minDecryptVersion: version, updatedAt: now });
      const e = await tx.appendEvent({ type: 'l3.min_decrypt', tenant, service, version, createdAt: now });
      return { events: [e], info: svc, evict: versions.filter((v) => v.version < version).map((v) => v.version) };
    }).then(() => this.get(tenant, service));
  }

  /** Changes rotatePeriodMs / encryptionBudget / expiredRetentionMs (applies from the next rotation / report). */
  async updateSettings(tenant: string, service: string, settings: unknown, ctx: OpCtx = {}): Promise<ServiceInfo> {
    assertKeyId(service);
    return this.#write('l3.update_settings', tenant, service, ctx, 'settings', async (tx, svc, now) => {
      const { mac: _m, ...row } = svc;
      const s = serviceSettings(settings, row);
      await tx.updateL3Service({ ...row, ...s, updatedAt: now });
      return { events: [], info: svc };
    }).then(() => this.get(tenant, service));
  }

  /**
   * Pre-warm (ADR-601): hydrates the tenant's L2 and the ACTIVE and
   * decrypt-allowed versions of `services` (default: all of the tenant's).
   * Returns how many L3 handles are now cached for them. Throws tenant codes.
   */
  async prewarm(
    tenant: string,
    services?: readonly string[],
    ctx: OpCtx = {},
  ): Promise<{ services: number; versions: number }> {
    try {
      const { t } = await this.tenants.usable(tenant);
      const names = services ?? (await this.c.d.store.listL3Services(tenant)).map((s) => s.service);
      let versions = 0;
      for (const name of names) {
        const { svc, versions: rows } = await this.#load(tenant, name, true);
        for (const r of rows) {
          if (!decryptable(r, svc, this.c.d.now())) continue;
          await this.handles.get(t, r);
          versions++;
        }
      }
      this.c.audit('l3.prewarm', ctx, tenant, `${names.length} services`);
      return { services: names.length, versions };
    } catch (err) {
      this.c.audit('l3.prewarm', ctx, tenant, 'services', err);
      throw err;
    }
  }

  /**
   * The key to decrypt a ciphertext of `version`, with a clear error when it
   * may not be used: `key_not_found`, `key_revoked` (revoked or past
   * retention), `key_version_too_old` (below the minimum), tenant codes
   * (a suspended tenant still decrypts within its grace).
   */
  async keyForDecrypt(tenant: string, service: string, version: number, ctx: OpCtx = {}): Promise<KeyHandle> {
    assertKeyId(service);
    assertKeyVersion(version);
    try {
      const { t } = await this.tenants.usable(tenant);
      const { svc, versions } = await this.#load(tenant, service, true);
      const r = versions.find((v) => v.version === version);
      if (!r || r.state === 'PENDING') throw new KcmError('key_not_found', `${tenant}/${service} v${version}`);
      if (r.state === 'REVOKED' || pastRetention(r, svc, this.c.d.now()))
        throw new KcmError('key_revoked', `${service} v${version}`);
      if (version < svc.minDecryptVersion)
        throw new KcmError('key_version_too_old', `${service} v${version} < v${svc.minDecryptVersion}`);
      const h = await this.handles.get(t, r);
      this.c.audit('l3.use_decrypt', ctx, tenant, `${service} v${version}`);
      return h;
    } catch (err) {
      this.c.audit('l3.use_decrypt', ctx, tenant, `${service} v${version}`, err);
      throw err;
    }
  }

  /** The ACTIVE version and its key, for one encryption. Throws `tenant_suspended`, `key_not_found`, tenant codes. */
  async keyForEncrypt(
    tenant: string,
    service: string,
    ctx: OpCtx = {},
  ): Promise<{ version: number; handle: KeyHandle }> {
    assertKeyId(service);
    try {
      const { t, canEncrypt } = await this.tenants.usable(tenant);
      if (!canEncrypt) throw new KcmError('tenant_suspended', tenant);
      const { versions } = await this.#load(tenant, service, true);
      const r = versions.find((v) => v.state === 'ACTIVE');
      if (!r) throw new KcmError('key_not_found', `${tenant}/${service} has no ACTIVE version`);
      const handle = await this.handles.get(t, r);
      this.c.audit('l3.use_encrypt', ctx, tenant, `${service} v${r.version}`);
      return { version: r.version, handle };
    } catch (err) {
      this.c.audit('l3.use_encrypt', ctx, tenant, service, err);
      throw err;
    }
  }

  /** Ticker: rotates ACTIVE versions past rotateAfter (at most `keys.rotationBatch`), skipping tenants that may not encrypt. */
  async tick(): Promise<string[]> {
    this.c.ivk();
    const done: string[] = [];
    for (const r of await this.c.d.store.listL3DueForRotation(this.c.d.now(), this.c.d.config.rotationBatch)) {
      const usable = await this.tenants.usable(r.tenant, true).catch(() => ({ canEncrypt: false }));
      if (!usable.canEncrypt) continue;
      try {
        const info = await this.rotation.exclusive(r.tenant, r.service, async () => {
          const cur = await this.c.d.store.getL3(r.tenant, r.service, r.version);
          if (cur?.state !== 'ACTIVE' || cur.rotateAfter === null || cur.rotateAfter > this.c.d.now()) return null;
          return this.rotation.rotateNow(r.tenant, r.service, 'scheduled', SYSTEM);
        });
        if (info) done.push(`rotated:${r.tenant}/${r.service}:v${info.version}`);
      } catch (err) {
        done.push(`rotate-failed:${r.tenant}/${r.service}:${(err as KcmError).code ?? 'internal_error'}`);
      }
    }
    return done;
  }

  /**
   * The service and its versions. `usable` (key use: keyFor*, prewarm): the
   * tenant must be usable, and both come from the metadata cache; otherwise
   * (admin views) the tenant may be in any state and both are read from the
   * store. Throws `key_not_found`, tenant codes.
   */
  async #load(tenant: string, service: string, usable: boolean): Promise<ServiceMeta> {
    this.c.ivk();
    if (usable) await this.tenants.usable(tenant);
    else await this.tenants.get(tenant);
    const meta = await this.c.serviceMeta(tenant, service, !usable);
    if (!meta) throw new KcmError('key_not_found', `${tenant}/${service}`);
    return meta;
  }

  /**
   * One audited write transaction on a service; drops the service's cached
   * metadata after it (whatever its outcome), evicts the versions it names,
   * then notifies.
   */
  #write<T>(
    action: string,
    tenant: string,
    service: string,
    ctx: OpCtx,
    resource: string,
    fn: (
      tx: Parameters<Parameters<HierarchyContext['d']['store']['transaction']>[0]>[0],
      svc: L3ServiceRecord,
      now: number,
    ) => Promise<{ events: KeyEventRecord[]; info: T; evict?: number[] }>,
  ): Promise<T> {
    return this.rotation.exclusive(tenant, service, async () => {
      try {
        await this.tenants.get(tenant);
        const out = await this.c.d.store
          .transaction(async (tx) => {
            const svc = await tx.getL3Service(tenant, service);
            if (!svc) throw new KcmError('key_not_found', `${tenant}/${service}`);
            return fn(tx, svc, this.c.d.now());
          })
          .finally(() => this.c.meta.invalidateService(tenant, service));
        for (const v of out.evict ?? []) this.c.l3Cache.delete(l3Name(tenant, service, v));
        this.c.notify(out.events);
        this.c.audit(action, ctx, tenant, `${service} ${resource}`);
        return out.info;
      } catch (err) {
        this.c.audit(action, ctx, tenant, `${service} ${resource}`, err);
        throw err;
      }
    });
  }
}

/** ACTIVE or EXPIRED, at or above the minimum, not past retention. */
export function decryptable(r: L3Record, svc: L3ServiceRecord, now: number): boolean {
  return (
    (r.state === 'ACTIVE' || r.state === 'EXPIRED') && r.version >= svc.minDecryptVersion && !pastRetention(r, svc, now)
  );
}
