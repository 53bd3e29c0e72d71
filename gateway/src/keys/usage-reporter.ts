/**
 * Batched encryption counts (SP 800-38D budget, ADR-303 volume trigger): the
 * edge adds its encryptions per L3 version locally and reports the sums every
 * `flushMs` (POST /v1/edge/usage, one request per version with encryptions).
 * A failed report keeps its counts for the next flush, so nothing is lost
 * while the Core is unreachable.
 */
import { KcmError } from '../../../common/src/errors.ts';

export interface UsageItem {
  tenant: string;
  service: string;
  version: number;
  count: number;
}

export class UsageReporter {
  readonly #pending = new Map<string, UsageItem>();
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> | null = null;
  #stopped = false;

  constructor(
    private readonly send: (u: UsageItem) => Promise<void>,
    private readonly flushMs: number,
    private readonly log: (msg: string) => void,
  ) {}

  /** Adds `count` encryptions under (tenant, service, version). */
  add(tenant: string, service: string, version: number, count: number): void {
    if (!Number.isSafeInteger(count) || count <= 0) return;
    const k = `${tenant}\0${service}\0${version}`;
    const item = this.#pending.get(k);
    if (item) item.count += count;
    else this.#pending.set(k, { tenant, service, version, count });
    if (!this.#timer && !this.#stopped) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        void this.flush();
      }, this.flushMs);
      this.#timer.unref();
    }
  }

  /** Encryptions not yet reported. */
  get pendingCount(): number {
    let n = 0;
    for (const i of this.#pending.values()) n += i.count;
    return n;
  }

  /** Sends everything pending now (one flush at a time). */
  flush(): Promise<void> {
    this.#flushing ??= this.#flush().finally(() => {
      this.#flushing = null;
    });
    return this.#flushing;
  }

  async #flush(): Promise<void> {
    const items = [...this.#pending.values()];
    this.#pending.clear();
    for (const [i, item] of items.entries()) {
      try {
        await this.send(item);
      } catch (err) {
        if (err instanceof KcmError && err.source === 'client') {
          // Refused for good (tenant revoked, edge no longer allowed): these counts can never be reported.
          this.log(`usage report of ${item.tenant}/${item.service} v${item.version} refused: ${err.code}`);
          continue;
        }
        this.log(`usage report failed (${err instanceof Error ? err.message : String(err)}); keeping the counts`);
        for (const rest of items.slice(i)) this.add(rest.tenant, rest.service, rest.version, rest.count);
        return;
      }
    }
  }

  /**
   * Stops the timer for good: later counts, and counts a failed flush keeps,
   * wait for an explicit flush() (close() makes one last attempt) instead of
   * being retried on a timer after shutdown.
   */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
