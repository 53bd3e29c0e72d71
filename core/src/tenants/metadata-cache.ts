/**
 * The metadata tier of the key hierarchy: verified tenant records and, per
 * (tenant, service), the service record with its versions — so that a warm
 * lease reads no store row (issue 4: lease p99 < 1 ms).
 *
 * Contract:
 *  - An entry is served for at most `ttlMs` after the read that produced it
 *    began (measured on the hierarchy's clock; a clock that goes back makes
 *    the entry expire). That bounds how long a change committed by another
 *    Core replica on the same database may go unseen. `ttlMs` = 0 caches
 *    nothing.
 *  - Writers of this Core call `invalidate…` after their transaction and
 *    before releasing their result. A read that was in flight while an
 *    entry was invalidated is returned to its caller but never stored, so a
 *    value read before a commit cannot outlive the invalidation.
 *  - Values are frozen (records and the version list; Buffers stay as read).
 *  - At most `max` entries per kind; the oldest loaded go first.
 * Key material is never held here (the wrapped blobs are; handles live in
 * KeyCache).
 */
import type { L3Record, L3ServiceRecord, TenantRecord } from '../store/records.ts';

/** What a lease needs of one service key: its settings and every version, in version order. */
export interface ServiceMeta {
  readonly svc: L3ServiceRecord;
  readonly versions: readonly L3Record[];
}

interface Entry<T> {
  value: T;
  loadedAt: number;
}

/** One kind of entry: string keys, TTL, FIFO bound, in-flight reads tracked by token. */
class TtlMap<T> {
  readonly #entries = new Map<string, Entry<T>>();
  readonly #loads = new Map<string, symbol>();

  constructor(
    private readonly ttlMs: number,
    private readonly max: number,
  ) {}

  get size(): number {
    return this.#entries.size;
  }

  /** The entry if loaded within the TTL before `now`; expired entries are dropped. */
  get(key: string, now: number): T | undefined {
    const e = this.#entries.get(key);
    if (e === undefined) return undefined;
    if (now >= e.loadedAt && now < e.loadedAt + this.ttlMs) return e.value;
    this.#entries.delete(key);
    return undefined;
  }

  /**
   * Runs `read` and returns its value; stores it (loaded at `now`, which the
   * caller takes before reading) unless it is undefined, caching is off, or
   * `key` was invalidated (or read again) meanwhile.
   */
  async load(key: string, now: number, read: () => Promise<T | undefined>): Promise<T | undefined> {
    const token = Symbol(key);
    this.#loads.set(key, token);
    try {
      const value = await read();
      if (value !== undefined && this.ttlMs > 0 && this.#loads.get(key) === token) {
        this.#entries.delete(key);
        this.#entries.set(key, { value, loadedAt: now });
        while (this.#entries.size > this.max) {
          const oldest = this.#entries.keys().next().value as string;
          this.#entries.delete(oldest);
        }
      }
      return value;
    } finally {
      if (this.#loads.get(key) === token) this.#loads.delete(key);
    }
  }

  delete(key: string): void {
    this.#entries.delete(key);
    this.#loads.delete(key);
  }

  deletePrefix(prefix: string): void {
    for (const k of this.#entries.keys()) if (k.startsWith(prefix)) this.#entries.delete(k);
    for (const k of this.#loads.keys()) if (k.startsWith(prefix)) this.#loads.delete(k);
  }

  clear(): void {
    this.#entries.clear();
    this.#loads.clear();
  }
}

const serviceKey = (tenant: string, service: string) => `${tenant}\0${service}`;

export class MetadataCache {
  readonly #tenants: TtlMap<TenantRecord>;
  readonly #services: TtlMap<ServiceMeta>;

  /** `ttlMs` ≥ 0 (0 = off); `max` ≥ 1 entries per kind. Throws RangeError otherwise. */
  constructor(
    readonly ttlMs: number,
    max: number,
  ) {
    if (!Number.isSafeInteger(ttlMs) || ttlMs < 0)
      throw new RangeError(`MetadataCache: ttlMs must be an integer >= 0 (got ${ttlMs})`);
    if (!Number.isSafeInteger(max) || max < 1)
      throw new RangeError(`MetadataCache: max must be an integer >= 1 (got ${max})`);
    this.#tenants = new TtlMap(ttlMs, max);
    this.#services = new TtlMap(ttlMs, max);
  }

  /** Cached entries (tests, status). */
  get sizes(): { tenants: number; services: number } {
    return { tenants: this.#tenants.size, services: this.#services.size };
  }

  tenant(id: string, now: number): TenantRecord | undefined {
    return this.#tenants.get(id, now);
  }

  /** See TtlMap.load: the record `read` returns, frozen, cached unless invalidated meanwhile. */
  loadTenant(
    id: string,
    now: number,
    read: () => Promise<TenantRecord | undefined>,
  ): Promise<TenantRecord | undefined> {
    return this.#tenants.load(id, now, async () => {
      const t = await read();
      return t === undefined ? undefined : Object.freeze(t);
    });
  }

  service(tenant: string, service: string, now: number): ServiceMeta | undefined {
    return this.#services.get(serviceKey(tenant, service), now);
  }

  /** See TtlMap.load: the service and its versions `read` returns, frozen, cached unless invalidated meanwhile. */
  loadService(
    tenant: string,
    service: string,
    now: number,
    read: () => Promise<ServiceMeta | undefined>,
  ): Promise<ServiceMeta | undefined> {
    return this.#services.load(serviceKey(tenant, service), now, async () => {
      const m = await read();
      if (m === undefined) return undefined;
      return Object.freeze({
        svc: Object.freeze(m.svc),
        versions: Object.freeze(m.versions.map((v) => Object.freeze(v))),
      });
    });
  }

  /** Drops the tenant record; with `services`, every service entry of the tenant too. */
  invalidateTenant(id: string, services = true): void {
    this.#tenants.delete(id);
    if (services) this.#services.deletePrefix(`${id}\0`);
  }

  invalidateService(tenant: string, service: string): void {
    this.#services.delete(serviceKey(tenant, service));
  }

  /** Drops everything (seal, shutdown). */
  clear(): void {
    this.#tenants.clear();
    this.#services.clear();
  }
}
