/**
 * Ships durable audit lines to an OpenTelemetry collector as OTLP/HTTP JSON
 * logs (`POST <collector>/v1/logs`), in the background (ADR-901 "exported
 * over OpenTelemetry"). Appends never wait for it: `enqueue` only pushes onto
 * a bounded queue; when the queue is full the oldest lines are dropped and
 * counted. One POST is in flight at a time; a failed batch is retried with
 * exponential backoff (and goes back to the head of the queue, so the
 * collector receives lines in order, possibly a batch twice after a timeout).
 *
 * Each log record's body is the exact log line, so the collector's copy can be
 * re-verified; attributes carry the fields for search (docs/audit.md "OTLP").
 */
import { Agent, fetch } from 'undici';
import { KcmError } from '../errors.ts';
import type { DurableLine } from './audit-log.ts';

export interface OtlpShipperOptions {
  /** Collector base URL (`http://host:4318`) or the full `/v1/logs` endpoint. */
  url: string;
  headers?: Record<string, string>;
  /** Lines kept while the collector is slow or down (default 10,000); the oldest are dropped beyond it. */
  maxQueue?: number;
  /** Lines per POST (default 512). */
  batchSize?: number;
  timeoutMs?: number;
  retryBaseMs?: number;
  retryMaxMs?: number;
  serviceName?: string;
  /** Reports delivery failures (default: stderr); gets no record content. */
  log?: (line: string) => void;
}

type AnyValue = { stringValue: string } | { intValue: string };
interface KeyValue {
  key: string;
  value: AnyValue;
}

export class OtlpShipper {
  readonly stats = { shipped: 0, dropped: 0, failures: 0, batches: 0 };
  readonly endpoint: string;
  readonly #o: OtlpShipperOptions;
  readonly #agent = new Agent({ connections: 1 });
  readonly #maxQueue: number;
  readonly #batchSize: number;
  #queue: DurableLine[] = [];
  #pump: Promise<void> | null = null;
  #closed = false;
  #wake: (() => void) | null = null;

  /** Validates the options; throws KcmError `invalid_config` naming the bad one. */
  constructor(o: OtlpShipperOptions) {
    if (!/^https?:\/\/[^\s]+$/.test(o.url)) throw new KcmError('invalid_config', 'OtlpShipper: url must be http(s)');
    this.#o = o;
    this.endpoint = o.url.endsWith('/v1/logs') ? o.url : `${o.url.replace(/\/+$/, '')}/v1/logs`;
    this.#maxQueue = o.maxQueue ?? 10_000;
    this.#batchSize = o.batchSize ?? 512;
    if (!Number.isSafeInteger(this.#maxQueue) || this.#maxQueue < 1)
      throw new KcmError('invalid_config', 'OtlpShipper: maxQueue must be a positive integer');
    if (!Number.isSafeInteger(this.#batchSize) || this.#batchSize < 1)
      throw new KcmError('invalid_config', 'OtlpShipper: batchSize must be a positive integer');
  }

  /** Number of lines waiting. */
  get queued(): number {
    return this.#queue.length;
  }

  /** Queues lines for shipping; never blocks, never throws. Use as AuditLog's `onDurable`. */
  enqueue = (lines: readonly DurableLine[]): void => {
    if (this.#closed) return;
    this.#queue.push(...lines);
    const over = this.#queue.length - this.#maxQueue;
    if (over > 0) {
      this.#queue.splice(0, over);
      this.stats.dropped += over;
    }
    this.#pump ??= this.#run().finally(() => {
      this.#pump = null;
    });
  };

  /** Resolves when every queued line is delivered or `timeoutMs` passed; returns whether all were delivered. */
  async flush(timeoutMs = 5000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while ((this.#queue.length > 0 || this.#pump) && Date.now() < deadline) await sleep(10);
    return this.#queue.length === 0 && this.#pump === null;
  }

  /** Stops shipping (queued lines are given up), waits for the POST in flight and closes connections. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#wake?.();
    await this.#pump;
    await this.#agent.close();
  }

  async #run(): Promise<void> {
    let delay = this.#o.retryBaseMs ?? 500;
    while (!this.#closed && this.#queue.length > 0) {
      const batch = this.#queue.splice(0, this.#batchSize);
      try {
        await this.#post(batch);
        this.stats.shipped += batch.length;
        this.stats.batches++;
        delay = this.#o.retryBaseMs ?? 500;
      } catch (err) {
        this.stats.failures++;
        (this.#o.log ?? ((l: string) => console.error(l)))(
          `[audit] OTLP export to the collector failed (${err instanceof Error ? err.message : 'error'}); retrying in ${delay} ms`,
        );
        const room = this.#maxQueue - this.#queue.length;
        const keep = batch.slice(Math.max(0, batch.length - room));
        this.stats.dropped += batch.length - keep.length;
        this.#queue.unshift(...keep);
        await new Promise<void>((r) => {
          this.#wake = r;
          setTimeout(r, delay).unref();
        });
        this.#wake = null;
        delay = Math.min(delay * 2, this.#o.retryMaxMs ?? 30_000);
      }
    }
  }

  async #post(batch: DurableLine[]): Promise<void> {
    const res = await fetch(this.endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...this.#o.headers },
      body: JSON.stringify(otlpLogsBody(batch, this.#o.serviceName ?? 'openkcm')),
      dispatcher: this.#agent,
      signal: AbortSignal.timeout(this.#o.timeoutMs ?? 5000),
    });
    await res.arrayBuffer();
    if (!res.ok) throw new Error(`status ${res.status}`);
  }
}

/** The OTLP/HTTP JSON `ExportLogsServiceRequest` for a batch of lines. */
export function otlpLogsBody(batch: readonly DurableLine[], serviceName: string): unknown {
  return {
    resourceLogs: [
      {
        resource: { attributes: [kv('service.name', serviceName)] },
        scopeLogs: [{ scope: { name: 'openkcm.audit', version: '1' }, logRecords: batch.map(logRecord) }],
      },
    ],
  };
}

function logRecord({ line, record: r }: DurableLine): unknown {
  const ns = `${BigInt(Date.parse(r.time)) * 1_000_000n}`;
  const attrs: KeyValue[] = [kv('audit.type', r.type), { key: 'audit.seq', value: { intValue: String(r.seq) } }];
  attrs.push(kv('audit.hash', r.hash));
  let severity = 9;
  let traceId: string | undefined;
  if (r.type === 'event') {
    attrs.push(kv('audit.action', r.action), kv('audit.outcome', r.outcome));
    if (r.actor) attrs.push(kv('enduser.id', r.actor));
    if (r.resource) attrs.push(kv('audit.resource', r.resource));
    if (r.tenant) attrs.push(kv('tenant.id', r.tenant));
    if (r.reason) attrs.push(kv('audit.reason', r.reason));
    if (r.correlationId) {
      attrs.push(kv('audit.correlation_id', r.correlationId));
      if (/^[0-9a-f]{32}$/.test(r.correlationId)) traceId = r.correlationId;
    }
    if (r.outcome === 'failure') severity = 13;
  }
  return {
    timeUnixNano: ns,
    observedTimeUnixNano: ns,
    severityNumber: severity,
    severityText: severity === 13 ? 'WARN' : 'INFO',
    body: { stringValue: line },
    attributes: attrs,
    ...(traceId ? { traceId } : {}),
  };
}

function kv(key: string, v: string): KeyValue {
  return { key, value: { stringValue: v } };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
