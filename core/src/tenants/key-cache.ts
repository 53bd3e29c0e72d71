/**
 * The locked-memory tier of the key hierarchy (ADR-302/601): unwrapped L2 and
 * L3 handles by name, least recently used evicted first. Every way out of
 * the cache — eviction, delete, a tenant's revocation, seal — destroys the
 * handle (zeroised in native memory), so a key is never held twice and never
 * outlives its entry. Names are `tenant\0…` strings (ids cannot hold NUL).
 */
import type { KeyHandle } from '../../../native/index.ts';

export class KeyCache {
  readonly #max: number;
  readonly #map = new Map<string, KeyHandle>();

  /** `max` ≥ 1 entries; throws RangeError otherwise. */
  constructor(max: number) {
    if (!Number.isSafeInteger(max) || max < 1)
      throw new RangeError(`KeyCache: max must be an integer >= 1 (got ${max})`);
    this.#max = max;
  }

  get size(): number {
    return this.#map.size;
  }

  /** The handle (marked most recently used), or undefined. */
  get(name: string): KeyHandle | undefined {
    const h = this.#map.get(name);
    if (h === undefined) return undefined;
    this.#map.delete(name);
    this.#map.set(name, h);
    return h;
  }

  has(name: string): boolean {
    return this.#map.has(name);
  }

  /** Stores `h` (taking ownership), destroying any handle it replaces and the least recently used past `max`. */
  set(name: string, h: KeyHandle): void {
    const old = this.#map.get(name);
    if (old && old !== h) old.destroy();
    this.#map.delete(name);
    this.#map.set(name, h);
    while (this.#map.size > this.#max) {
      const [oldest, key] = this.#map.entries().next().value as [string, KeyHandle];
      this.#map.delete(oldest);
      key.destroy();
    }
  }

  /** Destroys and removes one entry. */
  delete(name: string): void {
    this.#map.get(name)?.destroy();
    this.#map.delete(name);
  }

  /** Destroys and removes every entry whose name starts with `prefix`; returns how many. */
  deletePrefix(prefix: string): number {
    let n = 0;
    for (const [name, h] of this.#map) {
      if (!name.startsWith(prefix)) continue;
      h.destroy();
      this.#map.delete(name);
      n++;
    }
    return n;
  }

  /** Destroys every entry (seal, shutdown). */
  clear(): void {
    for (const h of this.#map.values()) h.destroy();
    this.#map.clear();
  }
}
