/**
 * The keys the native front seals under (native/src/front/seal.rs): copies
 * of tenants' active L3 versions, fed from the gateway's own key cache so
 * both planes always use the same key.
 *
 * - A request whose key the front lacks waits (at most 0.5 s) and the key
 *   is asked for; {@link FrontKeys.tick} copies it in from the cache
 *   (`cachedEncryptionKey`), or leases it first (`encryptionKey`, as the
 *   pipeline would), valid for at most {@link MAX_COPY_MS} and never past
 *   the lease's end. A key that cannot be had (unknown, revoked, Core
 *   unreachable) is refused for {@link REFUSED_MS}: those requests go to
 *   the pipeline at once, which answers them.
 * - Each tick checks the copies used since the last one against the cache: a
 *   key the cache no longer gives (expired lease, Core gone past the TTL,
 *   suspension) is removed, so the front fails over to the pipeline, which
 *   fails closed; another active version is copied in. A copy past half its
 *   validity is renewed from the cache while it was used in the last
 *   {@link IDLE_MS}, so a key used now and then does not make its next
 *   request wait.
 * - A key event (GatewayKeys.onKeysChanged: revocation, rotation, …) removes
 *   the tenant's copies at once, before the next request is read.
 * - The requests it sealed are reported to the key layer as the pipeline
 *   reports its own (recordEncryptions: one L3 use per request).
 */
import { sealHeadsOf } from '../../../common/src/crypto/field-cipher.ts';
import type { NativeFrontFns, NativeFrontHandle } from '../../../native/ts/load.ts';
import type { GatewayKeys } from '../gateway-keys.ts';

/**
 * Longest a copy is valid without a refresh from the cache (never past its
 * lease's end). Key events remove copies at once; this bounds what a missed
 * change could cost, and lets a key idle for a while stay ready.
 */
export const MAX_COPY_MS = 30_000;
/** How long a key that could not be had is not asked for again. */
export const REFUSED_MS = 1000;
/** A copy not used for this long is no longer renewed (it runs out within MAX_COPY_MS). */
export const IDLE_MS = 10 * 60_000;

export class FrontKeys {
  /** Copies held, by `tenant\0keyId`: their version, until when (Date.now()) they are valid, when last used. */
  readonly #held = new Map<string, { version: number; until: number; usedAt: number }>();
  /** Leases being fetched for the front, by `tenant\0keyId`. */
  readonly #fetching = new Set<string>();
  #closed = false;
  readonly #unhook: () => void;

  constructor(
    private readonly fns: NativeFrontFns,
    private readonly front: NativeFrontHandle,
    private readonly keys: GatewayKeys,
  ) {
    this.#unhook =
      keys.onKeysChanged?.((tenant) => {
        fns.frontForget(front, Buffer.from(tenant ?? '', 'latin1'));
        for (const k of this.#held.keys())
          if (tenant === undefined || k.startsWith(`${tenant}\0`)) this.#held.delete(k);
      }) ?? (() => {});
  }

  /**
   * Reports the front's key uses; checks each key used since the last tick
   * against the cache (another version now, or no usable key: copied again or
   * removed; half its validity gone: extended); copies in the keys it asked for.
   */
  tick(): void {
    const { wanted, uses } = this.fns.frontKeyDemand(this.front);
    const now = Date.now();
    const checked = new Set<string>();
    for (const [tenant, keyId, version, count] of uses) {
      this.keys.recordEncryptions?.(tenant, keyId, version, count);
      const k = `${tenant}\0${keyId}`;
      if (checked.has(k)) continue;
      checked.add(k);
      const held = this.#held.get(k);
      if (held) held.usedAt = now;
      const key = this.keys.cachedEncryptionKey?.(tenant, keyId);
      if (!held || !key || key.version !== held.version) this.#copy(k, tenant, keyId, now);
    }
    // Renewed before half its validity is gone, while the cache has it and it was used lately:
    // a key used now and then stays ready (no wait for its first request after a pause).
    for (const [k, held] of this.#held) {
      if (held.until <= now || now - held.usedAt > IDLE_MS) this.#held.delete(k);
      else if (held.until - now < MAX_COPY_MS / 2) {
        const [tenant = '', keyId = ''] = k.split('\0');
        this.#copy(k, tenant, keyId, held.usedAt);
      }
    }
    for (const [tenant, keyId] of wanted) {
      const k = `${tenant}\0${keyId}`;
      if (!this.#copy(k, tenant, keyId, now)) this.#fetch(k, tenant, keyId);
    }
  }

  /** Leases the key as the pipeline would; copies it in, or refuses it for a while. */
  #fetch(k: string, tenant: string, keyId: string): void {
    if (this.#fetching.has(k)) return;
    this.#fetching.add(k);
    this.keys.encryptionKey(tenant, keyId).then(
      () => {
        this.#fetching.delete(k);
        if (!this.#closed && !this.#copy(k, tenant, keyId, Date.now())) this.#refuse(tenant, keyId);
      },
      () => {
        this.#fetching.delete(k);
        if (!this.#closed) this.#refuse(tenant, keyId);
      },
    );
  }

  #refuse(tenant: string, keyId: string): void {
    const t = Buffer.from(tenant, 'latin1');
    this.fns.frontKey(this.front, t, Buffer.from(keyId, 'latin1'), null, 0, REFUSED_MS, t, t, t);
  }

  /** Copies the cached key in (true), or removes the copy (false: the cache has no usable key now). */
  #copy(k: string, tenant: string, keyId: string, usedAt: number): boolean {
    const t = Buffer.from(tenant, 'latin1');
    const id = Buffer.from(keyId, 'latin1');
    const key = this.keys.cachedEncryptionKey?.(tenant, keyId);
    const handle = key?.handle.nativeHandle;
    const ttl = Math.min(MAX_COPY_MS, key?.validForMs ?? MAX_COPY_MS);
    if (!key || handle === undefined || !key.handle.live || ttl <= 0) {
      this.fns.frontKey(this.front, t, id, null, 0, 0, t, t, t);
      this.#held.delete(k);
      return false;
    }
    const h = sealHeadsOf({ tenant, keyId, keyVersion: key.version });
    this.fns.frontKey(this.front, t, id, handle, key.version, ttl, h.wrapAad, h.header, h.aadHead);
    this.#held.set(k, { version: key.version, until: Date.now() + ttl, usedAt });
    return true;
  }

  /** Stops feeding; the front's copies run out by themselves (its stop drops them at once). */
  close(): void {
    this.#closed = true;
    this.#unhook();
  }
}
