/**
 * Where the Core reports what it did (ADR-901). This is the narrow interface
 * the root of trust needs; the tamper-evident log with signed checkpoints
 * (security-plane issue) implements it too. A record is written before the
 * result it describes is released; a sink that cannot write throws, and the
 * caller fails the operation (fail closed). Records never hold key material,
 * share values or plaintext.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

export interface AuditEvent {
  action: string;
  outcome: 'success' | 'failure';
  actor?: string;
  resource?: string;
  tenant?: string;
  correlationId?: string;
  reason?: string;
}

export interface AuditSink {
  record(e: AuditEvent): void;
}

/** Appends one JSON line per event, synchronously (durable before the caller goes on). */
export class JsonlAuditSink implements AuditSink {
  constructor(readonly path: string) {
    mkdirSync(dirname(path), { recursive: true });
  }

  record(e: AuditEvent): void {
    appendFileSync(this.path, `${JSON.stringify({ time: new Date().toISOString(), ...e })}\n`, { mode: 0o600 });
  }
}

/** Keeps events in memory (tests, and `kcm dev` before a log path is set). */
export class MemoryAuditSink implements AuditSink {
  readonly events: (AuditEvent & { time: number })[] = [];
  record(e: AuditEvent): void {
    this.events.push({ time: Date.now(), ...e });
  }
}
