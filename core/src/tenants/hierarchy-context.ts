/**
 * What the tenant (L2) and service-key (L3) layers share: dependencies, the
 * two locked-memory caches, the metadata cache (tenant records, service
 * settings and versions: metadata-cache.ts), per-key locks, audit and event
 * helpers, and the seal check. One instance per KeyHierarchy.
 *
 * Seal: every operation asks the root of trust for the IVK manager (throws
 * `sealed` while sealed). When the manager is not the one seen before, a
 * seal happened in between, and every cache is wiped before going on;
 * `KeyHierarchy.wipe()` (called at seal/shutdown and by the ticker while
 * sealed) wipes them at once.
 *
 * Metadata: reads for serving keys (leases, keyFor*, prewarm) go through
 * `tenantRecord` / `serviceMeta` and are answered from memory for up to
 * `keys.metadataCacheMs`; admin reads and every write path read the store
 * (`fresh`). Every write invalidates what it changed after its transaction
 * and before its result is released (tenant-writes.ts, tenant-l1.ts,
 * l3-rotation.ts, service-keys.ts, l3-lease.ts), so this Core's own changes
 * are seen by the very next read; another replica's within the TTL.
 */
import { KcmError } from '../../../common/src/errors.ts';
import type { Crypto } from '../../../native/index.ts';
import type { AuditSink } from '../audit/audit-sink.ts';
import type { KeyEventBus } from '../events/key-event-bus.ts';
import type { IvkManager } from '../ivk/ivk-manager.ts';
import type { KeyHierarchyConfig } from '../keys/l3/key-settings.ts';
import type { L1Registry } from '../l1/l1-registry.ts';
import type { RootOfTrust } from '../root/root-of-trust.ts';
import { SealProviderError } from '../seal/seal-provider.ts';
import type { IntegrityStore } from '../store/integrity-store.ts';
import type { KeyEventRecord, TenantRecord } from '../store/records.ts';
import { KeyCache } from './key-cache.ts';
import { MetadataCache, type ServiceMeta } from './metadata-cache.ts';

/** Who asks, for the audit record (ADR-901/902). */
export interface OpCtx {
  /** Operator or edge identity (certificate subject); 'system' for the ticker. */
  actor?: string;
  correlationId?: string;
}

export interface HierarchyDeps {
  crypto: Crypto;
  store: IntegrityStore;
  root: RootOfTrust;
  l1: L1Registry;
  bus: KeyEventBus;
  audit: AuditSink;
  now: () => number;
  config: KeyHierarchyConfig;
}

export class HierarchyContext {
  readonly l2Cache: KeyCache;
  readonly l3Cache: KeyCache;
  readonly meta: MetadataCache;
  /** Tenants revoked by this process: nothing of theirs is cached again. */
  readonly revoked = new Set<string>();
  readonly #locks = new Map<string, Promise<unknown>>();
  #ivk: IvkManager | null = null;

  constructor(readonly d: HierarchyDeps) {
    this.l2Cache = new KeyCache(d.config.l2CacheMax);
    this.l3Cache = new KeyCache(d.config.l3CacheMax);
    this.meta = new MetadataCache(d.config.metadataCacheMs, d.config.l3CacheMax);
  }

  /**
   * The verified tenant record, or undefined: from the metadata cache unless
   * `fresh` (then, like a miss, read from the store and cached). Throws
   * `sealed`, `record_tampered`.
   */
  async tenantRecord(id: string, fresh = false): Promise<TenantRecord | undefined> {
    this.ivk();
    const now = this.d.now();
    if (!fresh) {
      const hit = this.meta.tenant(id, now);
      if (hit) return hit;
    }
    return this.meta.loadTenant(id, now, () => this.d.store.getTenant(id));
  }

  /**
   * The verified service record and its versions (in version order), or
   * undefined when there is no such service; cached like tenantRecord.
   * Throws `sealed`, `record_tampered`.
   */
  async serviceMeta(tenant: string, service: string, fresh = false): Promise<ServiceMeta | undefined> {
    this.ivk();
    const now = this.d.now();
    if (!fresh) {
      const hit = this.meta.service(tenant, service, now);
      if (hit) return hit;
    }
    return this.meta.loadService(tenant, service, now, async () => {
      const svc = await this.d.store.getL3Service(tenant, service);
      return svc ? { svc, versions: await this.d.store.listL3(tenant, service) } : undefined;
    });
  }

  /** The IVK manager; throws `sealed` / `not_initialized`. Wipes the caches after a seal/unseal cycle. */
  ivk(): IvkManager {
    const ivk = this.d.root.ivk();
    if (ivk !== this.#ivk) {
      this.wipe();
      this.#ivk = ivk;
    }
    return ivk;
  }

  /** Cluster id and region bound into every L1 call. */
  cluster(): { clusterId: string; region: string } {
    const s = this.d.root.status();
    if (!s.clusterId) throw new KcmError('not_initialized');
    return { clusterId: s.clusterId, region: s.region };
  }

  /** Destroys every cached L2 and L3 handle and drops the cached metadata. */
  wipe(): void {
    this.l2Cache.clear();
    this.l3Cache.clear();
    this.meta.clear();
  }

  /** Destroys every cached handle of one tenant and drops its cached metadata; returns how many handles. */
  evictTenant(tenant: string): number {
    this.meta.invalidateTenant(tenant);
    return this.l2Cache.deletePrefix(`${tenant}\0`) + this.l3Cache.deletePrefix(`${tenant}\0`);
  }

  /** Runs `fn` after every earlier call with the same `key` settled (per tenant / per service writes). */
  exclusive<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.#locks.get(key) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.catch(() => undefined);
    this.#locks.set(key, tail);
    void tail.then(() => {
      if (this.#locks.get(key) === tail) this.#locks.delete(key);
    });
    return run;
  }

  /** Records one audit event; `err` gives the outcome `failure` and its code as reason. */
  audit(action: string, ctx: OpCtx, tenant: string, resource: string, err?: unknown, reason?: string): void {
    const why = err === undefined ? reason : reasonOf(err);
    this.d.audit.record({
      action,
      outcome: err === undefined ? 'success' : 'failure',
      actor: ctx.actor ?? 'unknown',
      tenant,
      resource,
      ...(ctx.correlationId ? { correlationId: ctx.correlationId } : {}),
      ...(why ? { reason: why } : {}),
    });
  }

  /** Hands committed events to the bus (after the transaction that appended them). */
  notify(events: readonly KeyEventRecord[]): void {
    if (events.length > 0) this.d.bus.notify(events);
  }
}

/** The audit reason of an error: its stable code (never its message, which might name paths). */
export function reasonOf(err: unknown): string {
  if (err instanceof KcmError) return err.code;
  if (err instanceof SealProviderError) return `l1_${err.kind}`;
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'internal_error';
}

/** Cache names. */
export const l2Name = (tenant: string, version: number) => `${tenant}\0${version}`;
export const l3Name = (tenant: string, service: string, version: number) => `${tenant}\0${service}\0${version}`;
