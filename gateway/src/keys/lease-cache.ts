/**
 * The edge's leased L3 keys (ADR-602/103): one map per tenant, each entry the
 * key set of one (tenant, service) as native handles, valid until its TTL.
 * Entries are wiped (handles destroyed) when they expire, are replaced, or a
 * key event says so: a revocation destroys every handle of the tenant at once.
 *
 * A lease that replaces another (refresh, a decrypt-only version fetched on
 * demand) adopts the handles of the versions both hold: key versions are
 * immutable, so a handle a request obtained before the replacement stays
 * valid, and a batch naming several versions does not lose the first one's
 * key while it fetches the next. Only versions the new lease lacks are wiped.
 *
 * Handles returned by the cache must still be used without delay: after an
 * `await` they may have been destroyed by a revocation or by the TTL (then
 * the native call throws `key_destroyed`, i.e. the edge fails closed).
 */
import { leaseKey, leaseWrapAad } from '../../../common/src/crypto/lease-transport.ts';
import { KcmError } from '../../../common/src/errors.ts';
import type { WireEvent, WireLease } from '../../../common/src/format/edge-wire.ts';
import type { KeyHandle } from '../../../native/index.ts';

/** Most missing versions a lease remembers. */
export const MAX_MISSING = 256;

export interface CachedVersion {
  version: number;
  state: 'ACTIVE' | 'EXPIRED';
  key: KeyHandle;
}

/** One leased key set. */
export class CachedLease {
  /** The version to encrypt with; null while the tenant is suspended. */
  active: CachedVersion | null;
  readonly versions = new Map<number, CachedVersion>();
  /** A rotation or resume was announced: the next encryption refetches first. */
  stale = false;
  suspended: boolean;
  minDecryptVersion: number;
  /**
   * Versions up to the active one that the Core did not return when asked
   * (revoked, never made, or forged in a ciphertext): not asked for again
   * while this lease and its successors live. At most MAX_MISSING, oldest
   * forgotten first.
   */
  readonly missing = new Set<number>();
  /** Client clock of the last request for a version above the active one (core-edge-client.ts). */
  futureAskedAt = 0;
  /**
   * Encryptions the active version may still make (the Core's
   * `activeBudgetLeft` less what this edge made since), or null: no budget.
   */
  budgetLeft: number | null = null;
  #timer: NodeJS.Timeout | undefined;

  constructor(
    readonly tenant: string,
    readonly service: string,
    versions: CachedVersion[],
    activeVersion: number | null,
    suspended: boolean,
    minDecryptVersion: number,
    /** Client clock (ms) after which the lease is not used. */
    readonly expiresAt: number,
    /** Client clock (ms) from which a background refresh is due. */
    readonly refreshAt: number,
  ) {
    for (const v of versions) this.versions.set(v.version, v);
    this.active = activeVersion === null ? null : (this.versions.get(activeVersion) ?? null);
    this.suspended = suspended;
    this.minDecryptVersion = minDecryptVersion;
  }

  /** Destroys the handles at `delayMs` unless destroyed earlier (keys never outlive the TTL). */
  expireAfter(delayMs: number, onExpire: () => void): void {
    this.#timer = setTimeout(onExpire, Math.max(0, delayMs));
    this.#timer.unref();
  }

  dropVersion(version: number): void {
    const v = this.versions.get(version);
    if (!v) return;
    v.key.destroy();
    this.versions.delete(version);
    if (this.active?.version === version) {
      this.active = null;
      this.stale = true;
    }
  }

  /**
   * Records which of the `asked` versions this answer lacks, on top of what
   * `old` (the lease it replaces) had recorded; versions above the active one
   * are left to the once-a-second rule instead (a rotation not heard of yet).
   */
  rememberMissing(asked: readonly number[], old: CachedLease | undefined): void {
    const top = this.active?.version ?? Number.POSITIVE_INFINITY;
    const add = (v: number) => {
      if (v > top || this.versions.has(v)) return;
      this.missing.delete(v);
      this.missing.add(v);
      if (this.missing.size > MAX_MISSING) this.missing.delete(this.missing.values().next().value as number);
    };
    for (const v of old?.missing ?? []) add(v);
    for (const v of asked) add(v);
    if (old) this.futureAskedAt = old.futureAskedAt;
  }

  /**
   * Takes over `old`'s handle of every version both leases hold (this
   * lease's own handle of it is wiped), so holders of the old handle keep a
   * live key; those versions leave `old`, whose remaining handles its
   * destroy() then wipes.
   */
  adopt(old: CachedLease): void {
    for (const [version, mine] of this.versions) {
      const theirs = old.versions.get(version);
      if (!theirs || theirs.key === mine.key) continue;
      mine.key.destroy();
      const kept: CachedVersion = { version, state: mine.state, key: theirs.key };
      this.versions.set(version, kept);
      if (this.active === mine) this.active = kept;
      old.versions.delete(version);
    }
  }

  /** Wipes every handle; idempotent. */
  destroy(): void {
    clearTimeout(this.#timer);
    for (const v of this.versions.values()) v.key.destroy();
    this.versions.clear();
    this.active = null;
  }
}

/**
 * Unwraps a lease answer with the per-lease key derived from the session
 * transport key. Throws KcmError `bad_request` when the answer names another
 * tenant/service, `decryption_failed` when a key does not unwrap (answer
 * replayed from another connection or altered); no handle survives a throw.
 */
export function unwrapLease(
  transport: KeyHandle,
  wire: WireLease,
  tenant: string,
  service: string,
  times: { expiresAt: number; refreshAt: number },
): CachedLease {
  if (wire.tenant !== tenant || wire.service !== service) {
    throw new KcmError('bad_request', 'lease answer names another tenant or service');
  }
  const salt = Buffer.from(wire.salt, 'base64url');
  const key = leaseKey(transport, salt, wire.edgeId, tenant, service);
  const made: CachedVersion[] = [];
  try {
    for (const w of wire.active ? [wire.active, ...wire.decryptOnly] : wire.decryptOnly) {
      if (made.some((m) => m.version === w.version)) continue;
      let handle: KeyHandle;
      try {
        handle = key.unwrap(Buffer.from(w.wrapped, 'base64url'), leaseWrapAad(tenant, service, w.version));
      } catch {
        throw new KcmError('decryption_failed', 'lease transport: a key did not unwrap');
      }
      made.push({ version: w.version, state: w.state, key: handle });
    }
  } catch (err) {
    for (const m of made) m.key.destroy();
    throw err;
  } finally {
    key.destroy();
  }
  const lease = new CachedLease(
    tenant,
    service,
    made,
    wire.active?.version ?? null,
    wire.tenantState === 'SUSPENDED',
    wire.minDecryptVersion,
    times.expiresAt,
    times.refreshAt,
  );
  lease.budgetLeft = wire.activeBudgetLeft;
  return lease;
}

/** What applying an event did. */
export interface Applied {
  /** Handles destroyed by it. */
  destroyed: number;
}

/** Per-tenant maps of cached leases, with the tenant tombstones and change counters. */
export class TenantLeaseMaps {
  readonly #tenants = new Map<string, Map<string, CachedLease>>();
  readonly #revoked = new Set<string>();
  readonly #generation = new Map<string, number>();

  get(tenant: string, service: string): CachedLease | undefined {
    return this.#tenants.get(tenant)?.get(service);
  }

  /** True once a revocation of the tenant was applied (tenant ids are never reused, ADR-103). */
  isRevoked(tenant: string): boolean {
    return this.#revoked.has(tenant);
  }

  /** Changes whenever an event touches the tenant: a lease fetched across a change is discarded. */
  generation(tenant: string): number {
    return this.#generation.get(tenant) ?? 0;
  }

  /** Installs a lease; it adopts the shared versions' handles of the unexpired lease it replaces, which is then wiped. */
  put(lease: CachedLease, now: number): void {
    let m = this.#tenants.get(lease.tenant);
    if (!m) {
      m = new Map();
      this.#tenants.set(lease.tenant, m);
    }
    const old = m.get(lease.service);
    if (old && old !== lease) {
      // An expired lease's handles are not adopted: nobody may be holding them, and they are wiped.
      if (now < old.expiresAt) lease.adopt(old);
      old.destroy();
    }
    m.set(lease.service, lease);
    lease.expireAfter(lease.expiresAt - now, () => this.remove(lease));
  }

  /** Wipes and forgets one lease if it is still the cached one. */
  remove(lease: CachedLease): void {
    lease.destroy();
    const m = this.#tenants.get(lease.tenant);
    if (m?.get(lease.service) === lease) m.delete(lease.service);
    if (m?.size === 0) this.#tenants.delete(lease.tenant);
  }

  /** Wipes every lease of the tenant; returns the number of handles destroyed. */
  dropTenant(tenant: string): number {
    const m = this.#tenants.get(tenant);
    if (!m) return 0;
    let n = 0;
    for (const l of m.values()) {
      n += l.versions.size;
      l.destroy();
    }
    this.#tenants.delete(tenant);
    return n;
  }

  /**
   * Drops the leases of `tenant` (every tenant when undefined) without
   * revoking it: the next call leases again. A lease in flight for it is
   * discarded (the change counter moves).
   */
  forget(tenant: string | undefined): void {
    const tenants = tenant === undefined ? [...this.#tenants.keys()] : [tenant];
    for (const t of tenants) {
      this.#generation.set(t, this.generation(t) + 1);
      this.dropTenant(t);
    }
  }

  /** Applies one key event to the cache (docs/core.md "Edge API", events). */
  apply(e: WireEvent): Applied {
    this.#generation.set(e.tenant, this.generation(e.tenant) + 1);
    const m = this.#tenants.get(e.tenant);
    const lease = e.service === null ? undefined : m?.get(e.service);
    let destroyed = 0;
    switch (e.type) {
      case 'tenant.revoked':
        this.#revoked.add(e.tenant);
        destroyed = this.dropTenant(e.tenant);
        break;
      case 'tenant.suspended':
        // Encryption stops now; decryption goes on within the grace period.
        for (const l of m?.values() ?? []) {
          l.suspended = true;
          l.active = null;
        }
        break;
      case 'tenant.resumed':
        for (const l of m?.values() ?? []) l.stale = true;
        break;
      case 'l3.rotated':
        if (lease) lease.stale = true;
        break;
      case 'l3.revoked':
        if (lease && e.version !== null) {
          destroyed = lease.versions.has(e.version) ? 1 : 0;
          lease.dropVersion(e.version);
        }
        break;
      case 'l3.min_decrypt':
        if (lease && e.version !== null) {
          const min = e.version;
          lease.minDecryptVersion = Math.max(lease.minDecryptVersion, min);
          for (const v of [...lease.versions.keys()]) {
            if (v < min) {
              destroyed++;
              lease.dropVersion(v);
            }
          }
        }
        break;
    }
    return { destroyed };
  }

  /** Wipes everything (client close). */
  clear(): void {
    for (const t of [...this.#tenants.keys()]) this.dropTenant(t);
  }
}
