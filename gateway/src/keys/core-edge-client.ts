/**
 * The edge's client of the Core edge API (ADR-602), used by the gateway:
 *
 *   const core = new CoreEdgeClient({ url, tls: { cert, key, ca }, crypto });
 *   core.start();                                        // event subscription
 *   const { version, key } = await core.encryptionKey(tenant, service);
 *   const key = await core.decryptionKey(tenant, service, version);
 *   core.recordEncryptions(tenant, service, version, n);  // batched usage reports
 *   await core.close();
 *
 * Leases are cached per tenant (ADR-103) until their TTL, refreshed in the
 * background from `refreshFraction` of it. One lease request per (tenant,
 * service) is in flight at a time: concurrent misses it covers share it
 * (singleflight), a miss for a version it did not ask for waits for it and
 * then asks again with every version cached so far, so each lease holds what
 * the one before held and adopts its handles (lease-cache.ts): a request that
 * needs several versions keeps the first one's key while fetching the next.
 *
 * Versions the Core did not return when asked (revoked, never made, forged)
 * are remembered per lease and not asked for again; a version above the
 * active one (a rotation this edge has not heard of yet) is asked for at most
 * once a second per service. So made-up versions in ciphertexts cost no Core
 * round trip beyond that. At most {@link MAX_VERSIONS_ASKED} versions are
 * asked for (the edge API's limit), the wanted one first, then the newest.
 *
 * While the Core is unreachable, or answers with something this edge cannot
 * use, the cache keeps serving until the TTL ends; then calls fail closed with
 * KcmError `core_unavailable` (503), whose message says nothing about the
 * network (the detail goes to the log) — never plaintext passthrough. Key
 * events apply at once: a revocation destroys the tenant's handles, then is
 * acknowledged.
 *
 * Handles must be used without delay: a revocation or the TTL destroys them.
 */
import { KcmError } from '../../../common/src/errors.ts';
import { EDGE_PATHS, parseWireLease, type WireEvent } from '../../../common/src/format/edge-wire.ts';
import type { Crypto, KeyHandle } from '../../../native/index.ts';
import { type BackoffPolicy, DEFAULT_BACKOFF } from './backoff.ts';
import { CoreSession, type EdgeClientTls } from './core-session.ts';
import { EventSubscription } from './event-subscription.ts';
import { type Applied, type CachedLease, TenantLeaseMaps, unwrapLease } from './lease-cache.ts';
import { UsageReporter } from './usage-reporter.ts';

export type { EdgeClientTls } from './core-session.ts';
export type { CachedLease as EdgeLease } from './lease-cache.ts';

export interface CoreEdgeClientOptions {
  /** `https://core-host:port` of the Core edge API. */
  url: string;
  tls: EdgeClientTls;
  crypto: Crypto;
  /** Lease TTL to ask for (seconds); the Core's default when omitted. */
  ttlSeconds?: number;
  /** Fraction of the TTL after which a lease is refreshed in the background (default 0.8). */
  refreshFraction?: number;
  backoff?: BackoffPolicy;
  connectTimeoutMs?: number;
  requestTimeoutMs?: number;
  usageFlushMs?: number;
  /** Event seq to resume after (default 0: replay every stored event once). */
  afterSeq?: number;
  now?: () => number;
  log?: (msg: string) => void;
  random?: () => number;
  /** Called after each key event is applied. */
  onEvent?: (e: WireEvent, applied: Applied) => void;
  /** Called after the Core accepted an ack. */
  onAck?: (seq: number) => void;
}

/** Most versions one lease request names (the edge API refuses more). */
export const MAX_VERSIONS_ASKED = 64;
/** A version above the active one is asked for at most this often per (tenant, service). */
const FUTURE_VERSION_INTERVAL_MS = 1_000;

/** The active version to encrypt with. */
export interface EncryptionKey {
  version: number;
  key: KeyHandle;
}

export class CoreEdgeClient {
  readonly #session: CoreSession;
  readonly #maps = new TenantLeaseMaps();
  /** The lease request in flight per (tenant, service), and the versions it asked for. */
  readonly #flights = new Map<string, { asked: ReadonlySet<number>; done: Promise<CachedLease> }>();
  readonly #events: EventSubscription;
  readonly #usage: UsageReporter;
  readonly #now: () => number;
  readonly #log: (msg: string) => void;
  readonly #refreshFraction: number;
  readonly #retryAt = new Map<string, number>();
  #closed = false;
  /** Lease requests sent to the Core (observability and tests). */
  leaseRequests = 0;

  constructor(private readonly o: CoreEdgeClientOptions) {
    this.#now = o.now ?? Date.now;
    this.#log = o.log ?? ((m) => console.error(`[edge-client] ${m}`));
    this.#refreshFraction = o.refreshFraction ?? 0.8;
    if (!(this.#refreshFraction > 0 && this.#refreshFraction <= 1)) {
      throw new KcmError('invalid_config', 'CoreEdgeClient: refreshFraction must be in (0, 1]');
    }
    this.#session = new CoreSession({
      url: o.url,
      tls: o.tls,
      crypto: o.crypto,
      connectTimeoutMs: o.connectTimeoutMs ?? 2_000,
      requestTimeoutMs: o.requestTimeoutMs ?? 5_000,
      log: this.#log,
    });
    this.#events = new EventSubscription({
      session: this.#session,
      backoff: o.backoff ?? DEFAULT_BACKOFF,
      afterSeq: o.afterSeq ?? 0,
      apply: (e) => {
        const applied = this.#maps.apply(e);
        o.onEvent?.(e, applied);
      },
      forget: (tenant) => this.#maps.forget(tenant),
      log: this.#log,
      ...(o.onAck ? { onAck: o.onAck } : {}),
      ...(o.random ? { random: o.random } : {}),
    });
    this.#usage = new UsageReporter(
      async (u) => {
        await this.#session.json('POST', EDGE_PATHS.usage, u);
      },
      o.usageFlushMs ?? 1_000,
      this.#log,
    );
  }

  /** Starts the key event subscription (reconnecting until close). */
  start(): void {
    this.#events.start();
  }

  /** True while the event stream is open. */
  get subscribed(): boolean {
    return this.#events.connected;
  }

  /** Highest key event seq applied / acknowledged by the Core. */
  get eventSeq(): { applied: number; acked: number } {
    return { applied: this.#events.lastSeq, acked: this.#events.ackedSeq };
  }

  /**
   * The cached lease of (tenant, service), leasing it on a miss, after its TTL,
   * or when `version` is not in it (decrypt-only versions on demand). Throws
   * the Core's KcmError (`lease_refused` 403, `tenant_revoked` 410,
   * `key_not_found` 404, …) or `core_unavailable` when the Core cannot be
   * reached and no unexpired lease is cached.
   */
  async lease(tenant: string, service: string, version?: number): Promise<CachedLease> {
    if (this.#closed) throw new KcmError('core_unavailable', 'client closed');
    if (this.#maps.isRevoked(tenant)) throw new KcmError('tenant_revoked', `tenant ${tenant}`);
    const cached = this.#maps.get(tenant, service);
    const now = this.#now();
    if (cached && fresh(cached, now) && this.#answers(cached, version, now)) {
      if (now >= cached.refreshAt) this.#refreshSoon(tenant, service, now);
      return cached;
    }
    try {
      return await this.#fetch(tenant, service, version);
    } catch (err) {
      // Core unreachable: a cached, unexpired lease goes on serving (ADR-602 "ride out Core outages").
      const still = this.#maps.get(tenant, service);
      if (isUnavailable(err) && still && this.#now() < still.expiresAt) {
        if (version === undefined || still.versions.has(version)) return still;
      }
      if (err instanceof KcmError && err.code === 'core_unavailable') {
        this.#log(`no lease for ${tenant}/${service}: ${err.detail ?? err.message}`);
        throw new KcmError('core_unavailable', 'the key service cannot be reached and no unexpired lease is cached');
      }
      throw err;
    }
  }

  /**
   * The cached lease of (tenant, service) when {@link lease} would return it
   * at once (unexpired, not stale, holding `version` when one is given), else
   * undefined: then call lease(), which decides (fetches, throws, or settles
   * a version the lease does not hold). Refreshes ahead of expiry as lease()
   * does; never throws, never waits, never asks the Core for a version.
   */
  cachedLease(tenant: string, service: string, version?: number): CachedLease | undefined {
    if (this.#closed || this.#maps.isRevoked(tenant)) return undefined;
    const cached = this.#maps.get(tenant, service);
    if (cached === undefined) return undefined;
    const now = this.#now();
    if (!fresh(cached, now) || (version !== undefined && !cached.versions.has(version))) return undefined;
    if (now >= cached.refreshAt) this.#refreshSoon(tenant, service, now);
    return cached;
  }

  /** {@link cachedLease} for encrypting: undefined as well when the active version's budget is used up ({@link encryptionLease} decides then). */
  cachedEncryptionLease(tenant: string, service: string): CachedLease | undefined {
    const l = this.cachedLease(tenant, service);
    return l && !exhausted(l) ? l : undefined;
  }

  /**
   * True when `lease` settles a lookup of `version` without asking the Core:
   * it holds the version, or the version is below the minimum, or the Core
   * already said it has no such version, or it is above the active version
   * and was asked for less than a second ago (the callers then find no key).
   */
  #answers(lease: CachedLease, version: number | undefined, now: number): boolean {
    if (version === undefined || lease.versions.has(version)) return true;
    if (version < lease.minDecryptVersion || lease.missing.has(version)) return true;
    if (lease.active && version > lease.active.version) {
      if (now - lease.futureAskedAt < FUTURE_VERSION_INTERVAL_MS) return true;
      lease.futureAskedAt = now;
    }
    return false;
  }

  /** Leases (tenant, service) from the Core now, replacing the cached lease; same errors as lease(). */
  refresh(tenant: string, service: string): Promise<CachedLease> {
    if (this.#closed) return Promise.reject(new KcmError('core_unavailable', 'client closed'));
    return this.#fetch(tenant, service, undefined);
  }

  /**
   * The active L3 version of (tenant, service); throws `tenant_suspended`
   * (403) while suspended, `key_usage_exhausted` (503) when the active
   * version has used its encryption budget (the lease's `activeBudgetLeft`
   * less the encryptions recorded here since) and a fresh lease brings no
   * other (the Core rotates at 90 % of the budget, so normally it does).
   */
  async encryptionKey(tenant: string, service: string): Promise<EncryptionKey> {
    const l = await this.encryptionLease(tenant, service);
    if (l.suspended || !l.active) throw new KcmError('tenant_suspended', `tenant ${tenant}`);
    return { version: l.active.version, key: l.active.key };
  }

  /** The lease to encrypt with: {@link lease}, after the budget rule of {@link encryptionKey}. */
  async encryptionLease(tenant: string, service: string): Promise<CachedLease> {
    let l = await this.lease(tenant, service);
    if (exhausted(l)) {
      l.stale = true;
      l = await this.lease(tenant, service);
      if (exhausted(l) && l.active) {
        throw new KcmError('key_usage_exhausted', `${tenant}/${service} v${l.active.version}`);
      }
    }
    return l;
  }

  /**
   * The handle of an L3 version for decryption; throws `key_version_too_old`
   * (403) below the minimum decryption version, `key_not_found` (404) when
   * the Core does not hand it out (unknown or revoked).
   */
  async decryptionKey(tenant: string, service: string, version: number): Promise<KeyHandle> {
    const l = await this.lease(tenant, service, version);
    if (version < l.minDecryptVersion) throw new KcmError('key_version_too_old', `version ${version}`);
    const v = l.versions.get(version);
    if (!v) throw new KcmError('key_not_found', `${tenant}/${service} v${version}`);
    return v.key;
  }

  /** Counts encryptions made under a version; reported to the Core in batches. */
  recordEncryptions(tenant: string, service: string, version: number, count: number): void {
    const l = this.#maps.get(tenant, service);
    if (l?.active?.version === version && l.budgetLeft !== null) l.budgetLeft -= count;
    this.#usage.add(tenant, service, version, count);
  }

  /** Sends pending usage counts now. */
  flushUsage(): Promise<void> {
    return this.#usage.flush();
  }

  /** Stops the subscription, reports pending usage (best effort), wipes every cached key, closes the session. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#usage.stop();
    await this.#usage.flush().catch(() => {});
    // Close the session while the subscription stops: a stream opening at this moment ends with it.
    const stopped = this.#events.stop();
    this.#session.close();
    await stopped;
    this.#maps.clear();
  }

  #refreshSoon(tenant: string, service: string, now: number): void {
    const k = `${tenant}\0${service}`;
    if ((this.#retryAt.get(k) ?? 0) > now) return;
    this.#fetch(tenant, service, undefined).then(
      () => this.#retryAt.delete(k),
      (err: unknown) => {
        this.#retryAt.set(k, this.#now() + 1_000);
        if (!isUnavailable(err)) this.#log(`lease refresh of ${tenant}/${service} refused: ${(err as Error).message}`);
      },
    );
  }

  /**
   * The versions a lease request names: `version` first, then the cached
   * ones newest first (not the active one, which always comes back), at most
   * MAX_VERSIONS_ASKED.
   */
  #versionsToAsk(tenant: string, service: string, version: number | undefined): number[] {
    const old = this.#maps.get(tenant, service);
    const out: number[] = version === undefined ? [] : [version];
    const cached = old ? [...old.versions.keys()].sort((a, b) => b - a) : [];
    for (const v of cached) {
      if (out.length >= MAX_VERSIONS_ASKED) break;
      if (v !== version && v !== old?.active?.version) out.push(v);
    }
    return out;
  }

  /**
   * One lease request per (tenant, service) at a time. A caller the request
   * in flight covers shares its result; any other waits for it, then asks
   * again (the cache may answer by then).
   */
  #fetch(tenant: string, service: string, version: number | undefined): Promise<CachedLease> {
    const k = `${tenant}\0${service}`;
    const flying = this.#flights.get(k);
    if (flying) {
      if (version === undefined || flying.asked.has(version)) return flying.done;
      return flying.done.then(
        (l) => (l.versions.has(version) || l.missing.has(version) ? l : this.#fetch(tenant, service, version)),
        () => this.#fetch(tenant, service, version),
      );
    }
    const asked = new Set(this.#versionsToAsk(tenant, service, version));
    const done = this.#leaseNow(tenant, service, version).finally(() => {
      if (this.#flights.get(k)?.done === done) this.#flights.delete(k);
    });
    this.#flights.set(k, { asked, done });
    return done;
  }

  /** Asks the Core for a lease of (tenant, service) naming `version`; installs and returns it. */
  async #leaseNow(tenant: string, service: string, version: number | undefined): Promise<CachedLease> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const old = this.#maps.get(tenant, service);
      const versions = this.#versionsToAsk(tenant, service, version);
      const generation = this.#maps.generation(tenant);
      const sentAt = this.#now();
      let reply: Awaited<ReturnType<CoreSession['json']>>;
      this.leaseRequests++;
      try {
        reply = await this.#session.json('POST', EDGE_PATHS.lease, {
          tenant,
          service,
          ...(versions.length > 0 ? { versions } : {}),
          ...(this.o.ttlSeconds ? { ttlSeconds: this.o.ttlSeconds } : {}),
        });
      } catch (err) {
        this.#refused(tenant, service, err);
        throw err;
      }
      let lease: CachedLease;
      try {
        const wire = parseWireLease(reply.body);
        const ttlMs = wire.ttlSeconds * 1000;
        lease = unwrapLease(reply.live.transportKey(), wire, tenant, service, {
          expiresAt: sentAt + ttlMs,
          refreshAt: sentAt + ttlMs * this.#refreshFraction,
        });
      } catch (err) {
        // The Core's answer is not one this edge can use: like an outage, not the caller's fault.
        const why = err instanceof KcmError ? `${err.code}: ${err.message}` : 'unreadable';
        throw new KcmError('core_unavailable', `lease answer for ${tenant}/${service} unusable (${why})`);
      }
      lease.rememberMissing(versions, old);
      if (this.#maps.isRevoked(tenant) || this.#closed) {
        lease.destroy();
        throw new KcmError(this.#closed ? 'core_unavailable' : 'tenant_revoked', `tenant ${tenant}`);
      }
      if (generation !== this.#maps.generation(tenant)) {
        // A key event for the tenant arrived while this lease was in flight: it may predate it.
        lease.destroy();
        continue;
      }
      this.#maps.put(lease, this.#now());
      return lease;
    }
    throw new KcmError('core_unavailable', `tenant ${tenant}: key events kept changing the lease`);
  }

  /** A definite refusal from the Core wipes what is cached for it (fail closed). */
  #refused(tenant: string, service: string, err: unknown): void {
    if (!(err instanceof KcmError) || isUnavailable(err)) return;
    if (err.code === 'tenant_revoked' || err.code === 'lease_refused' || err.code === 'tenant_grace_ended') {
      this.#maps.dropTenant(tenant);
    } else if (err.code === 'key_not_found') {
      const l = this.#maps.get(tenant, service);
      if (l) this.#maps.remove(l);
    }
  }
}

/** True while `lease` may serve: unexpired and not marked stale (rotation, budget). */
function fresh(lease: CachedLease, now: number): boolean {
  return now < lease.expiresAt && !lease.stale;
}

/** True when the lease's active version has used up its encryption budget. */
function exhausted(lease: CachedLease): boolean {
  return lease.active !== null && lease.budgetLeft !== null && lease.budgetLeft <= 0;
}

/** Errors that mean "the Core could not answer" (served from cache until the TTL), not "the Core said no". */
function isUnavailable(err: unknown): boolean {
  return err instanceof KcmError && (err.code === 'core_unavailable' || err.source === 'keys' || err.status >= 500);
}
