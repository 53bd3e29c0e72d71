/**
 * Real-time alerts (ADR-903): unauthorized attempts, revocations, quorum
 * events, audit failures and seal/unseal. Each alert becomes one log line
 * (`[alert] {json}`) and, when a webhook is configured, one JSON POST to it,
 * in the background with a timeout: `alert()` never blocks and never throws.
 *
 * Rate limit: a token bucket per kind (default 10 a minute, burst 10). A
 * suppressed alert is counted; the next alert of that kind that gets through
 * carries `suppressed: n`, and a summary alert per kind (`<kind> alerts
 * suppressed`, severity of the worst suppressed one) goes out every
 * `summaryIntervalMs` and at close while any are pending.
 *
 * Webhook body (docs/audit.md "Alerts"):
 *   {"time":"ISO-8601","kind":"…","severity":"info|warning|critical",
 *    "summary":"…","tenant":"…","actor":"…","suppressed":n}
 */
import { Agent, fetch } from 'undici';
import { KcmError } from '../errors.ts';
import type { AlertInput, AlertSeverity, AlertSink } from './alert-types.ts';
import { TokenBucket } from './token-bucket.ts';

export interface AlerterOptions {
  /** http(s) URL that receives one POST per alert; none = log only. */
  webhookUrl?: string;
  /** Extra webhook request headers (e.g. an authorization token; never logged). */
  webhookHeaders?: Record<string, string>;
  /** Where alert lines go (default: stderr). */
  log?: (line: string) => void;
  /** Alerts per kind per minute (default 10, 1–10,000) … */
  perMinute?: number;
  /** … with this burst (default = perMinute). */
  burst?: number;
  /** Webhook timeout (default 2,000 ms). */
  timeoutMs?: number;
  /** Webhook POSTs in flight before new ones are dropped (and counted); default 64. */
  maxInFlight?: number;
  /** How often suppressed counts are summarised (default 60,000 ms; 0 = only at close). */
  summaryIntervalMs?: number;
  now?: () => number;
}

export interface AlertPayload {
  time: string;
  kind: string;
  severity: AlertSeverity;
  summary: string;
  tenant?: string;
  actor?: string;
  suppressed?: number;
}

const KIND = /^[a-z][a-z0-9._-]{0,63}$/;
const RANK: Record<AlertSeverity, number> = { info: 0, warning: 1, critical: 2 };
const SUMMARY_MAX = 500;
const FIELD_MAX = 256;

export class Alerter implements AlertSink {
  readonly stats = { emitted: 0, suppressed: 0, webhookSent: 0, webhookFailures: 0, webhookDropped: 0 };
  readonly #o: AlerterOptions;
  readonly #log: (line: string) => void;
  readonly #now: () => number;
  readonly #perMinute: number;
  readonly #burst: number;
  readonly #buckets = new Map<string, TokenBucket>();
  readonly #pending = new Map<string, { count: number; severity: AlertSeverity }>();
  readonly #inFlight = new Set<Promise<void>>();
  readonly #agent: Agent | null;
  readonly #timer: NodeJS.Timeout | undefined;
  #closed = false;

  /** Validates the options; throws KcmError `invalid_config` naming the bad one. */
  constructor(o: AlerterOptions = {}) {
    this.#o = o;
    this.#log = o.log ?? ((l) => console.error(l));
    this.#now = o.now ?? Date.now;
    this.#perMinute = int('perMinute', o.perMinute, 1, 10_000, 10);
    this.#burst = int('burst', o.burst, 1, 10_000, this.#perMinute);
    int('timeoutMs', o.timeoutMs, 1, 60_000, 2000);
    int('maxInFlight', o.maxInFlight, 1, 10_000, 64);
    const every = int('summaryIntervalMs', o.summaryIntervalMs, 0, 86_400_000, 60_000);
    if (o.webhookUrl !== undefined && !/^https?:\/\/[^\s]+$/.test(o.webhookUrl))
      throw new KcmError('invalid_config', 'Alerter: webhookUrl must be an http(s) URL');
    this.#agent = o.webhookUrl ? new Agent({ connections: 4 }) : null;
    if (every > 0) {
      this.#timer = setInterval(() => this.#summarise(), every);
      this.#timer.unref();
    }
  }

  /** Logs the alert and posts it to the webhook unless its kind is over the rate limit. Never throws. */
  alert(a: AlertInput): void {
    if (this.#closed) return;
    const kind = KIND.test(a.kind) ? a.kind : 'invalid-kind';
    const bucket = this.#bucket(kind);
    if (!bucket.take()) {
      this.stats.suppressed++;
      const p = this.#pending.get(kind) ?? { count: 0, severity: 'info' };
      p.count++;
      if (RANK[a.severity] > RANK[p.severity]) p.severity = a.severity;
      this.#pending.set(kind, p);
      return;
    }
    const payload: AlertPayload = {
      time: new Date(this.#now()).toISOString(),
      kind,
      severity: RANK[a.severity] === undefined ? 'critical' : a.severity,
      summary: clean(a.summary, SUMMARY_MAX),
    };
    if (a.tenant) payload.tenant = clean(a.tenant, FIELD_MAX);
    if (a.actor) payload.actor = clean(a.actor, FIELD_MAX);
    const pending = this.#pending.get(kind);
    if (pending) {
      payload.suppressed = pending.count;
      this.#pending.delete(kind);
    }
    this.#emit(payload);
  }

  /** Resolves when every webhook POST started so far has finished (delivered, failed or timed out). */
  async flush(): Promise<void> {
    while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight]);
  }

  /** Emits the pending suppressed-count summaries, waits for the webhook, closes its connections. */
  async close(): Promise<void> {
    if (this.#closed) return;
    clearInterval(this.#timer);
    this.#summarise();
    this.#closed = true;
    await this.flush();
    await this.#agent?.close();
  }

  #bucket(kind: string): TokenBucket {
    let b = this.#buckets.get(kind);
    if (!b) {
      b = new TokenBucket(this.#burst, this.#perMinute, this.#now);
      this.#buckets.set(kind, b);
    }
    return b;
  }

  #summarise(): void {
    for (const [kind, p] of this.#pending) {
      this.#emit({
        time: new Date(this.#now()).toISOString(),
        kind,
        severity: p.severity,
        summary: `${p.count} ${kind} alert(s) suppressed by the rate limit`,
        suppressed: p.count,
      });
    }
    this.#pending.clear();
  }

  #emit(payload: AlertPayload): void {
    this.stats.emitted++;
    this.#log(`[alert] ${JSON.stringify(payload)}`);
    if (!this.#agent || !this.#o.webhookUrl) return;
    if (this.#inFlight.size >= (this.#o.maxInFlight ?? 64)) {
      this.stats.webhookDropped++;
      return;
    }
    const p = this.#post(this.#o.webhookUrl, this.#agent, payload);
    this.#inFlight.add(p);
    void p.finally(() => this.#inFlight.delete(p));
  }

  async #post(url: string, agent: Agent, payload: AlertPayload): Promise<void> {
    try {
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...this.#o.webhookHeaders },
        body: JSON.stringify(payload),
        dispatcher: agent,
        signal: AbortSignal.timeout(this.#o.timeoutMs ?? 2000),
      });
      await res.arrayBuffer();
      if (!res.ok) throw new Error(`status ${res.status}`);
      this.stats.webhookSent++;
    } catch (err) {
      this.stats.webhookFailures++;
      const why = err instanceof Error ? (err.name === 'TimeoutError' ? 'timeout' : err.message) : 'error';
      this.#log(`[alert] webhook delivery failed for ${payload.kind} (${clean(why, 200)})`);
    }
  }
}

/** One line, bounded: control characters become spaces. */
function clean(s: string, max: number): string {
  let out = '';
  for (const ch of String(s).slice(0, max)) out += ch < ' ' || ch === '\u007f' ? ' ' : ch;
  return out;
}

function int(name: string, v: number | undefined, min: number, max: number, dflt: number): number {
  if (v === undefined) return dflt;
  if (!Number.isSafeInteger(v) || v < min || v > max)
    throw new KcmError('invalid_config', `Alerter: ${name} must be an integer from ${min} to ${max}`);
  return v;
}
