/**
 * The tenant key hierarchy of a Core (ADR-102/302/503/601): tenants and their
 * L2 keys, their L1 links, L3 service keys, edge leases, and the ticker —
 * one object the Core constructs after unseal and exposes as `core.keys`.
 *
 *   const keys = new KeyHierarchy({ crypto, store, root, l1, bus, audit });
 *   await keys.tenants.create({ id: 'acme' });
 *   await keys.services.create('acme', 'orders');
 *   const set = await keys.leaseSet('acme', 'orders', []);   // L3LeaseSource
 *
 * Every method throws `sealed` while the Core is sealed; the caches are wiped
 * by `wipe()` (seal, shutdown) and on the first call after a seal/unseal.
 */
import type { Crypto } from '../../../native/index.ts';
import type { AuditSink } from '../audit/audit-sink.ts';
import type { KeyEventBus } from '../events/key-event-bus.ts';
import { DEFAULT_KEY_HIERARCHY_CONFIG, type KeyHierarchyConfig } from '../keys/l3/key-settings.ts';
import { L3Handles } from '../keys/l3/l3-keys.ts';
import { L3Lease } from '../keys/l3/l3-lease.ts';
import { L3Rotation } from '../keys/l3/l3-rotation.ts';
import { ServiceKeys } from '../keys/l3/service-keys.ts';
import type { L3LeaseSet, L3LeaseSource } from '../keys/l3-lease-source.ts';
import type { L1Registry } from '../l1/l1-registry.ts';
import type { RootOfTrust } from '../root/root-of-trust.ts';
import type { IntegrityStore } from '../store/integrity-store.ts';
import { HierarchyContext, type OpCtx } from './hierarchy-context.ts';
import { TenantL1 } from './tenant-l1.ts';
import { TenantService } from './tenant-service.ts';

export interface KeyHierarchyOptions {
  crypto: Crypto;
  /** The integrity layer (records verified on read, MAC'd on write). */
  store: IntegrityStore;
  /** For the IVK manager, the cluster id and the region; must be unsealed before any call. */
  root: RootOfTrust;
  l1: L1Registry;
  bus: KeyEventBus;
  audit: AuditSink;
  now?: () => number;
  /** The `keys` config section (keyHierarchyConfig); defaults otherwise. */
  config?: KeyHierarchyConfig;
}

export class KeyHierarchy implements L3LeaseSource {
  readonly tenants: TenantService;
  /** L1 link, unlink, probe. */
  readonly l1: TenantL1;
  readonly services: ServiceKeys;
  readonly #lease: L3Lease;
  readonly #c: HierarchyContext;
  #ticking = false;

  constructor(o: KeyHierarchyOptions) {
    const c = new HierarchyContext({
      crypto: o.crypto,
      store: o.store,
      root: o.root,
      l1: o.l1,
      bus: o.bus,
      audit: o.audit,
      now: o.now ?? Date.now,
      config: o.config ?? DEFAULT_KEY_HIERARCHY_CONFIG,
    });
    this.#c = c;
    this.tenants = new TenantService(c);
    this.l1 = new TenantL1(c, this.tenants);
    const rotation = new L3Rotation(c, this.tenants, this.l1);
    const handles = new L3Handles(c, this.tenants, this.l1);
    this.services = new ServiceKeys(c, this.tenants, rotation, handles);
    this.#lease = new L3Lease(c, this.tenants, rotation, handles);
  }

  /** L3LeaseSource.leaseSet (see l3-lease.ts); `ctx.actor` = the edge identity, for the audit. */
  leaseSet(tenant: string, service: string, wantVersions: readonly number[], ctx: OpCtx = {}): Promise<L3LeaseSet> {
    return this.#lease.leaseSet(tenant, service, wantVersions, ctx);
  }

  /** L3LeaseSource.reportEncryptions (see l3-lease.ts). */
  reportEncryptions(tenant: string, service: string, version: number, count: number, ctx: OpCtx = {}): Promise<void> {
    return this.#lease.reportEncryptions(tenant, service, version, count, ctx);
  }

  /**
   * One ticker round: due L3 rotations, then L1 probes. Wipes the caches and
   * does nothing while sealed; a round still running makes the next a no-op.
   * Returns what it did (for the Core's log).
   */
  async tick(): Promise<string[]> {
    if (this.#c.d.root.state !== 'active') {
      this.wipe();
      return [];
    }
    if (this.#ticking) return [];
    this.#ticking = true;
    try {
      return [...(await this.services.tick()), ...(await this.l1.tick())];
    } finally {
      this.#ticking = false;
    }
  }

  /** Destroys every cached L2/L3 handle (seal, shutdown). */
  wipe(): void {
    this.#c.wipe();
  }

  /** Cached handles (status, tests). */
  cacheSizes(): { l2: number; l3: number } {
    return { l2: this.#c.l2Cache.size, l3: this.#c.l3Cache.size };
  }
}
