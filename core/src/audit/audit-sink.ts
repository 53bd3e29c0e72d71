/**
 * Where the Core reports what it did (ADR-901). The interface lives in
 * common/src/audit/audit-event.ts; the tamper-evident implementation is
 * AuditLog (common/src/audit/audit-log.ts), opened for the Core by
 * open-core-audit.ts. A record is written before the result it describes is
 * released; a sink that cannot write throws, and the caller fails the
 * operation (fail closed). Records never hold key material, share values or
 * plaintext.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { AuditEvent, AuditSink } from '../../../common/src/audit/audit-event.ts';

export type { AuditEvent, AuditSink };

/** Appends one plain JSON line per event, synchronously; no chain or signatures (tests and tools only). */
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
