/**
 * The Core's key events (ADR-101/602): revocations, suspensions, rotations,
 * fanned out to every connected edge. An event is appended to the store in
 * the same transaction as the state change it announces (so a restarted Core
 * still knows it, and an edge that reconnects replays what it missed); after
 * that transaction commits, the writer calls `notify` and every subscriber
 * (the edge API streams) sees it at once. Revocations are never queued behind
 * other work: `notify` calls listeners synchronously.
 */
import type { KeyEventRecord } from '../store/records.ts';

export type KeyEventListener = (e: KeyEventRecord) => void;

export class KeyEventBus {
  readonly #listeners = new Set<KeyEventListener>();

  /** Adds a listener; returns the function that removes it. */
  subscribe(listener: KeyEventListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Calls every listener with committed events, in seq order; a throwing listener does not stop the others. */
  notify(events: readonly KeyEventRecord[]): void {
    const sorted = [...events].sort((a, b) => a.seq - b.seq);
    for (const e of sorted) {
      for (const l of this.#listeners) {
        try {
          l(e);
        } catch {
          // A listener's failure is its own (the edge stream drops that connection).
        }
      }
    }
  }

  get listenerCount(): number {
    return this.#listeners.size;
  }
}
