/**
 * The keys the gateway's direct API and field transforms use, behind one
 * interface. In production an adapter over the Core edge client (L3 leases
 * with a TTL, gateway/src/keys/) implements it; {@link LocalGatewayKeys} is a
 * development and test implementation whose keys are made in-process and
 * never leave it.
 */

import { KcmError } from '../../common/src/errors.ts';
import { assertKeyId, assertTenantId } from '../../common/src/format/ids.ts';
import { type Crypto, defaultCrypto, type KeyHandle } from '../../native/index.ts';
import { noteKeys } from './audit/request-audit.ts';
import type { RequestContext } from './pipeline/context.ts';

/** The L3 version new ciphertexts use, and its handle. */
export interface EncryptionKey {
  version: number;
  handle: KeyHandle;
  /** How much longer (ms) it may be used without asking again (its lease's end); absent: no end. */
  validForMs?: number;
}

/** Key cache figures for /metrics; an implementation reports what it knows. */
export interface GatewayKeyStats {
  cacheHits: number;
  cacheMisses: number;
  /** Age in seconds of the oldest lease held, or undefined when none is held. */
  leaseAgeSeconds?: number;
  revocationsApplied: number;
}

export interface GatewayKeys {
  /**
   * The current L3 version of `service` in `tenant`. Throws KcmError: a client
   * error (`key_not_found`, `key_revoked`, `tenant_suspended`, `forbidden`, …)
   * when the caller cannot encrypt under it, `not_ready`/`store_unavailable`
   * (503) when no lease can be obtained now.
   */
  encryptionKey(tenant: string, service: string): Promise<EncryptionKey>;
  /**
   * The given L3 version, or undefined when this gateway may not decrypt with
   * it (unknown, revoked, below the minimum version): the API reports that as
   * the opaque `decryption_failed`. Throws when the key service cannot be
   * reached (503 class), or refuses the whole tenant (`tenant_revoked` 410,
   * `lease_refused` 403, `tenant_grace_ended` 403); either aborts the whole
   * request.
   */
  decryptionKey(tenant: string, service: string, version: number): Promise<KeyHandle | undefined>;
  /**
   * What {@link encryptionKey} would resolve to now, when the cache settles
   * it at once (a hit); undefined otherwise: then call encryptionKey, which
   * fetches or throws. Never throws, never waits; counts as a cache hit.
   * Lets the hot path skip the promise (use {@link encryptionKeyOf}).
   */
  cachedEncryptionKey?(tenant: string, service: string): EncryptionKey | undefined;
  /**
   * The live handle {@link decryptionKey} would resolve to now, when the
   * cache settles it at once; undefined otherwise (not cached, or not
   * usable): then call decryptionKey, which decides. Never throws, never waits.
   */
  cachedDecryptionKey?(tenant: string, service: string, version: number): KeyHandle | undefined;
  /** False while no Core lease is possible and the cache is empty (/readyz answers 503). */
  ready(): boolean;
  /**
   * Calls `fn` whenever the keys of a tenant change (a revocation, a
   * rotation, a suspension: any key event), with that tenant, or with
   * undefined when every tenant's may have (readiness lost). Called after
   * the change applied, before the next request sees it. Returns the unhook.
   * Copies of keys (the native front's) are dropped on it.
   */
  onKeysChanged?(fn: (tenant: string | undefined) => void): () => void;
  /** Cache figures for /metrics. */
  stats(): GatewayKeyStats;
  /**
   * Counts `count` encryptions made under an L3 version (the Core enforces
   * each version's encryption budget, SP 800-38D). Best effort, never throws.
   */
  recordEncryptions?(tenant: string, service: string, version: number, count: number): void;
}

/**
 * Reports one L3 use for a request (one fresh L4 wraps every field of it: the
 * Core's encryption budget, ADR-601) and notes the version for the request's
 * audit record.
 */
export function recordEncryption(
  ctx: RequestContext,
  keys: GatewayKeys,
  tenant: string,
  keyId: string,
  keyVersion: number,
): void {
  keys.recordEncryptions?.(tenant, keyId, keyVersion, 1);
  noteKeys(ctx, [{ keyId, keyVersion }]);
}

/** The encryption key from the cache when it is there (no promise), else `keys.encryptionKey`'s promise. */
export function encryptionKeyOf(
  keys: GatewayKeys,
  tenant: string,
  service: string,
): EncryptionKey | Promise<EncryptionKey> {
  return keys.cachedEncryptionKey?.(tenant, service) ?? keys.encryptionKey(tenant, service);
}

/** The decryption handle from the cache when it is there (no promise), else `keys.decryptionKey`'s promise. */
export function decryptionKeyOf(
  keys: GatewayKeys,
  tenant: string,
  service: string,
  version: number,
): KeyHandle | Promise<KeyHandle | undefined> {
  return keys.cachedDecryptionKey?.(tenant, service, version) ?? keys.decryptionKey(tenant, service, version);
}

interface LocalKeyRing {
  versions: KeyHandle[];
}

function currentKey(ring: LocalKeyRing): EncryptionKey {
  const version = ring.versions.length;
  return { version, handle: ring.versions[version - 1] as KeyHandle };
}

/** Version `version` of `ring` when it exists and is not destroyed. */
function liveVersion(ring: LocalKeyRing | undefined, version: number): KeyHandle | undefined {
  const handle = ring?.versions[version - 1];
  return handle?.live ? handle : undefined;
}

/**
 * In-process keys for development (`kcm gateway --dev`) and tests: NOT leased
 * from a Core, not persisted, lost at exit. Each (tenant, service) gets a
 * fresh random L3 key on first use; {@link rotate} adds a version.
 */
export class LocalGatewayKeys implements GatewayKeys {
  readonly #rings = new Map<string, LocalKeyRing>();
  readonly #crypto: Crypto;
  #ready = true;
  #hits = 0;
  #misses = 0;
  #revocations = 0;

  constructor(crypto: Crypto = defaultCrypto()) {
    this.#crypto = crypto;
  }

  #ring(tenant: string, service: string, create: boolean): LocalKeyRing | undefined {
    assertTenantId(tenant);
    assertKeyId(service);
    const id = `${tenant}\0${service}`;
    let ring = this.#rings.get(id);
    if (ring) {
      this.#hits++;
      return ring;
    }
    this.#misses++;
    if (!create) return undefined;
    ring = { versions: [this.#crypto.generateKey()] };
    this.#rings.set(id, ring);
    return ring;
  }

  async encryptionKey(tenant: string, service: string): Promise<EncryptionKey> {
    if (!this.#ready) throw new KcmError('not_ready');
    return currentKey(this.#ring(tenant, service, true) as LocalKeyRing);
  }

  async decryptionKey(tenant: string, service: string, version: number): Promise<KeyHandle | undefined> {
    if (!this.#ready) throw new KcmError('not_ready');
    return liveVersion(this.#ring(tenant, service, false), version);
  }

  readonly #changed = new Set<(tenant: string | undefined) => void>();

  onKeysChanged(fn: (tenant: string | undefined) => void): () => void {
    this.#changed.add(fn);
    return () => this.#changed.delete(fn);
  }

  #change(tenant: string | undefined): void {
    for (const fn of this.#changed) fn(tenant);
  }

  cachedEncryptionKey(tenant: string, service: string): EncryptionKey | undefined {
    if (!this.#ready) return undefined;
    const ring = this.#rings.get(`${tenant}\0${service}`);
    if (ring === undefined) return undefined;
    this.#hits++;
    return currentKey(ring);
  }

  cachedDecryptionKey(tenant: string, service: string, version: number): KeyHandle | undefined {
    if (!this.#ready) return undefined;
    const handle = liveVersion(this.#rings.get(`${tenant}\0${service}`), version);
    if (handle) this.#hits++;
    return handle;
  }

  /** Adds a new current version; returns its number. */
  rotate(tenant: string, service: string): number {
    const ring = this.#ring(tenant, service, true) as LocalKeyRing;
    ring.versions.push(this.#crypto.generateKey());
    this.#change(tenant);
    return ring.versions.length;
  }

  /** Destroys one version (a revocation): its ciphertexts no longer decrypt. */
  revoke(tenant: string, service: string, version: number): void {
    const handle = this.#ring(tenant, service, false)?.versions[version - 1];
    if (!handle) throw new KcmError('key_not_found');
    handle.destroy();
    this.#revocations++;
    this.#change(tenant);
  }

  /** Simulates a gateway that cannot lease keys (tests of /readyz). */
  setReady(ready: boolean): void {
    this.#ready = ready;
    this.#change(undefined);
  }

  ready(): boolean {
    return this.#ready;
  }

  stats(): GatewayKeyStats {
    return { cacheHits: this.#hits, cacheMisses: this.#misses, revocationsApplied: this.#revocations };
  }

  /** Wipes every key. */
  close(): void {
    for (const ring of this.#rings.values()) for (const k of ring.versions) k.destroy();
    this.#rings.clear();
  }
}
