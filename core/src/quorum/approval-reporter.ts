/**
 * How the approval service reports its steps: one audit record per step
 * (fail closed: the sink's throw reaches the caller) and one best-effort
 * `quorum.event` alert. Caller-supplied texts (actor, id) reach the log only
 * when they fit the audit field rules; otherwise they are shown as
 * `(invalid)`.
 */
import type { AuditSink } from '../audit/audit-sink.ts';

/** One alert about a quorum step (structurally an AlertInput of common/src/alerts). */
export interface QuorumAlert {
  kind: 'quorum.event';
  severity: 'info' | 'warning' | 'critical';
  summary: string;
  actor: string;
}

const PRINTABLE = /^[^\p{Cc}\p{Cn}\p{Cs}]+$/u;

/** True when `v` has no control, unassigned or lone surrogate characters. */
export function isPrintable(v: string): boolean {
  return PRINTABLE.test(v);
}

/** An id as the audit log may show it: ids are UUIDs; anything else from a caller is not echoed. */
function safeId(id: string | null): string {
  if (id === null) return '-';
  return /^[A-Za-z0-9._-]{1,64}$/.test(id) ? id : '(invalid)';
}

export class ApprovalReporter {
  constructor(
    private readonly audit: AuditSink,
    private readonly alerts: { alert(a: QuorumAlert): void } | undefined,
    private readonly log: (msg: string) => void,
  ) {}

  /**
   * Audits `action` (throws what the sink throws), then alerts: critical for
   * an execution, warning for a proposal or a refused step, info otherwise.
   */
  report(
    action: string,
    outcome: 'success' | 'failure',
    actor: string,
    id: string | null,
    o: { correlationId?: string | undefined },
    reason?: string,
  ): void {
    const who = actor.length <= 256 && isPrintable(actor) ? actor : '(invalid)';
    this.audit.record({
      action,
      outcome,
      actor: who,
      ...(id === null ? {} : { resource: `approval ${safeId(id)}` }),
      ...(o.correlationId === undefined ? {} : { correlationId: o.correlationId }),
      ...(reason === undefined ? {} : { reason: reason.slice(0, 200) }),
    });
    if (!this.alerts) return;
    const severity =
      action === 'approval.execute'
        ? 'critical'
        : outcome === 'failure' || action === 'approval.propose'
          ? 'warning'
          : 'info';
    const why = reason === undefined ? '' : ` (${reason.slice(0, 100)})`;
    try {
      this.alerts.alert({
        kind: 'quorum.event',
        severity,
        summary: `${action} ${outcome}: approval ${safeId(id)} by ${who.slice(0, 64)}${why}`,
        actor: who,
      });
    } catch (err) {
      this.log(`alert failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
}
