/**
 * Collapses concurrent calls with the same key into one: while a call for
 * `key` is in flight, later callers get the same promise (ADR-602: N cache
 * misses for one key cost one lease request).
 */
export class Singleflight<T> {
  readonly #flights = new Map<string, Promise<T>>();

  /** Runs `fn` unless a call for `key` is in flight; every caller gets its result or error. */
  run(key: string, fn: () => Promise<T>): Promise<T> {
    const inFlight = this.#flights.get(key);
    if (inFlight) return inFlight;
    const p = fn().finally(() => this.#flights.delete(key));
    this.#flights.set(key, p);
    return p;
  }

  /** Number of calls in flight. */
  get size(): number {
    return this.#flights.size;
  }
}
