/**
 * GatewayKeys (and, through field-keys.ts, the policy FieldKeyProvider) over
 * the Core edge client (ADR-602 "lease and batch"):
 *
 * - leases are cached per tenant and service until their TTL, refreshed in
 *   the background, and fetched once for any number of concurrent misses
 *   (CoreEdgeClient);
 * - key events apply at once: a revocation destroys the tenant's handles
 *   and every later call is refused with 410 `tenant_revoked`; a rotation
 *   marks the lease stale so the next encryption uses the new version;
 * - while the Core is unreachable the cache serves until the TTL ends, then
 *   calls fail closed with 503 `core_unavailable`: the proxy never forwards a
 *   selected field in clear because a key is missing;
 * - encryption counts go to the Core through recordEncryptions (batched).
 *
 * Handles must be used synchronously after the promise resolves (a
 * revocation may destroy them at the next turn of the event loop; a
 * destroyed handle makes the native call throw `key_destroyed`, 503).
 */
import { KcmError } from '../../common/src/errors.ts';
import type { WireEvent } from '../../common/src/format/edge-wire.ts';
import type { KeyHandle } from '../../native/index.ts';
import type { EncryptionKey, GatewayKeyStats, GatewayKeys } from './gateway-keys.ts';
import { CoreEdgeClient, type CoreEdgeClientOptions, type EdgeLease } from './keys/core-edge-client.ts';
import type { Applied } from './keys/lease-cache.ts';

/** Errors of decryptionKey that mean "not this version" (→ undefined), not "refuse the request". */
const NOT_THIS_VERSION = new Set(['key_not_found', 'key_version_too_old', 'key_revoked']);

interface Seen {
  lease: EdgeLease;
  /** Client clock when this gateway first saw this lease object. */
  at: number;
}

export class CoreGatewayKeys implements GatewayKeys {
  readonly client: CoreEdgeClient;
  readonly #seen = new Map<string, Seen>();
  readonly #now: () => number;
  /** Lookups answered from the cache (no lease request). */
  #hits = 0;
  /** Lookups not answered with a cached lease: a lease request made, or failed or refused ones. */
  #misses = 0;
  #revocations = 0;
  #closed = false;

  /**
   * Builds the client (not started: call {@link start}). `onEvent` in
   * `options` is still called after this adapter's own bookkeeping. Throws
   * what the CoreEdgeClient constructor throws (`invalid_config`).
   */
  constructor(options: CoreEdgeClientOptions) {
    this.#now = options.now ?? Date.now;
    const onEvent = options.onEvent;
    this.client = new CoreEdgeClient({
      ...options,
      onEvent: (e: WireEvent, applied: Applied) => {
        this.#applied(e, applied);
        onEvent?.(e, applied);
      },
    });
  }

  /** Opens the Core event stream (revocations and rotations), reconnecting until close. */
  start(): void {
    this.client.start();
  }

  #applied(e: WireEvent, applied: Applied): void {
    if (e.type === 'tenant.revoked' || applied.destroyed > 0) this.#revocations++;
    if (e.type === 'tenant.revoked') {
      for (const k of [...this.#seen.keys()]) if (k.startsWith(`${e.tenant}\0`)) this.#seen.delete(k);
    }
    for (const fn of this.#changed) fn(e.tenant);
  }

  readonly #changed = new Set<(tenant: string | undefined) => void>();

  onKeysChanged(fn: (tenant: string | undefined) => void): () => void {
    this.#changed.add(fn);
    return () => this.#changed.delete(fn);
  }

  async #lease(tenant: string, service: string, version?: number): Promise<EdgeLease> {
    if (this.#closed) throw new KcmError('core_unavailable', 'the gateway is shutting down');
    const before = this.client.leaseRequests;
    let lease: EdgeLease;
    try {
      lease = await (version === undefined
        ? this.client.encryptionLease(tenant, service)
        : this.client.lease(tenant, service, version));
    } catch (err) {
      this.#misses++; // not answered from the cache: it asked (or waited for) the Core, or was refused
      throw err;
    }
    const hit = this.client.leaseRequests === before;
    if (!hit) this.#misses++;
    this.#saw(tenant, service, lease, hit);
    return lease;
  }

  /** Counts a cache hit and remembers the lease a lookup found (for lease age and readiness). */
  #saw(tenant: string, service: string, lease: EdgeLease, hit: boolean): void {
    if (hit) this.#hits++;
    const k = `${tenant}\0${service}`;
    if (this.#seen.get(k)?.lease !== lease) this.#seen.set(k, { lease, at: this.#now() });
  }

  cachedEncryptionKey(tenant: string, service: string): EncryptionKey | undefined {
    if (this.#closed) return undefined;
    const l = this.client.cachedEncryptionLease(tenant, service);
    if (l === undefined || l.suspended || !l.active) return undefined;
    this.#saw(tenant, service, l, true);
    return { version: l.active.version, handle: l.active.key, validForMs: Math.max(0, l.expiresAt - this.#now()) };
  }

  cachedDecryptionKey(tenant: string, service: string, version: number): KeyHandle | undefined {
    if (this.#closed) return undefined;
    const l = this.client.cachedLease(tenant, service, version);
    if (l === undefined || version < l.minDecryptVersion) return undefined;
    const v = l.versions.get(version);
    if (!v?.key.live) return undefined;
    this.#saw(tenant, service, l, true);
    return v.key;
  }

  /**
   * The active L3 version. Throws 503 `core_unavailable` (Core unreachable
   * and no unexpired lease), 410 `tenant_revoked`, 403 `lease_refused` /
   * `tenant_suspended`, 404 `key_not_found`.
   */
  async encryptionKey(tenant: string, service: string): Promise<EncryptionKey> {
    const l = await this.#lease(tenant, service);
    if (l.suspended || !l.active) throw new KcmError('tenant_suspended', `tenant ${tenant}`);
    return { version: l.active.version, handle: l.active.key };
  }

  async decryptionKey(tenant: string, service: string, version: number): Promise<KeyHandle | undefined> {
    let l: EdgeLease;
    try {
      l = await this.#lease(tenant, service, version);
    } catch (err) {
      if (err instanceof KcmError && NOT_THIS_VERSION.has(err.code)) return undefined;
      throw err;
    }
    if (version < l.minDecryptVersion) return undefined;
    const v = l.versions.get(version);
    return v?.key.live ? v.key : undefined;
  }

  recordEncryptions(tenant: string, service: string, version: number, count: number): void {
    if (!this.#closed) this.client.recordEncryptions(tenant, service, version, count);
  }

  /** Unexpired leases this gateway holds (as far as it saw them). */
  #held(now: number): Seen[] {
    const out: Seen[] = [];
    for (const [k, s] of this.#seen) {
      if (now < s.lease.expiresAt && s.lease.versions.size > 0) out.push(s);
      else this.#seen.delete(k);
    }
    return out;
  }

  /** True while the Core event stream is open (a lease is possible) or an unexpired lease is held. */
  ready(): boolean {
    if (this.#closed) return false;
    return this.client.subscribed || this.#held(this.#now()).length > 0;
  }

  stats(): GatewayKeyStats {
    const now = this.#now();
    const held = this.#held(now);
    const oldest = held.reduce((m, s) => Math.min(m, s.at), Number.POSITIVE_INFINITY);
    return {
      cacheHits: this.#hits,
      cacheMisses: this.#misses,
      ...(held.length > 0 ? { leaseAgeSeconds: (now - oldest) / 1000 } : {}),
      revocationsApplied: this.#revocations,
    };
  }

  /** Reports pending usage (best effort), stops the event stream and wipes every leased key. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#seen.clear();
    await this.client.close();
  }
}
