/**
 * What callers report to the audit log (ADR-901/902): the typed fields of one
 * key access or admin action. This is the only input the record builder takes;
 * a record never holds key material, share values or plaintext, and every
 * field has a bounded length and character set (docs/audit.md "Fields").
 */

/** One key access or admin action, as a caller reports it. */
export interface AuditEvent {
  /** Dotted lower-case name, e.g. `core.unseal`, `key.decrypt` (1–64 of `a-z 0-9 . _ -`). */
  action: string;
  outcome: 'success' | 'failure';
  /** The caller's identity (certificate subject, operator name); at most 256 printable characters. */
  actor?: string;
  /** What was acted on (cluster id, `tenant/key vN`, …); at most 256 printable characters. */
  resource?: string;
  /** Tenant id (ADR-103 syntax). */
  tenant?: string;
  /** Links the record to the request and the customer's KMS logs (ADR-902); see correlationIdFrom(). */
  correlationId?: string;
  /** Why it failed or why it happened: an error code or a short reason; at most 200 printable characters. */
  reason?: string;
}

/**
 * Where services report what they did. `record` is synchronous and durable
 * before it returns; it throws (KcmError `audit_unavailable`) when the record
 * cannot be written, and the caller fails the operation (fail closed).
 */
export interface AuditSink {
  record(e: AuditEvent): void;
}
