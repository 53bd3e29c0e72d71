/**
 * An AuditSink that also raises the ADR-903 alerts implied by what it
 * records: seal and unseal, unauthorized attempts, revocations and integrity
 * failures. The record is written first (durable, or the operation fails);
 * the alert follows and never fails the operation. Quorum steps are alerted
 * by the approval service itself (kind `quorum.event`), and audit-log
 * failures by the AuditLog, so neither is repeated here.
 */
import type { AlertInput, AlertSink } from '../../../common/src/alerts/alert-types.ts';
import type { AuditEvent, AuditSink } from '../../../common/src/audit/audit-event.ts';

/** The alert an audit event implies, or null. Exported for tests. */
export function alertFor(e: AuditEvent): AlertInput | null {
  const who = { ...(e.tenant ? { tenant: e.tenant } : {}), ...(e.actor ? { actor: e.actor } : {}) };
  const what = `${e.action} ${e.outcome}${e.resource ? ` on ${e.resource}` : ''}${e.reason ? ` (${e.reason})` : ''}`;
  if (e.action === 'core.seal' || (e.action.startsWith('core.unseal') && e.action !== 'core.unseal.share'))
    return {
      kind: e.action === 'core.seal' ? 'core.seal' : 'core.unseal',
      severity: e.outcome === 'failure' ? 'warning' : 'info',
      summary: what,
      ...who,
    };
  if (
    e.outcome === 'failure' &&
    (e.action === 'tls.refused' || /\b(unauthenticated|forbidden|lease_refused|approval_self)\b/.test(e.reason ?? ''))
  )
    return { kind: 'auth.unauthorized', severity: 'warning', summary: what, ...who };
  if (/(^|\.)revoke(d|_version)?($|\.)/.test(e.action) && e.outcome === 'success')
    return {
      kind: e.action.startsWith('tenant.') ? 'tenant.revoked' : 'key.revoked',
      severity: 'critical',
      summary: what,
      ...who,
    };
  if (e.reason === 'record_tampered') return { kind: 'store.integrity', severity: 'critical', summary: what, ...who };
  return null;
}

export class AlertingAuditSink implements AuditSink {
  constructor(
    readonly inner: AuditSink,
    readonly alerts: AlertSink,
  ) {}

  /** Records through the inner sink (throws what it throws), then alerts if the event calls for it. */
  record(e: AuditEvent): void {
    this.inner.record(e);
    const a = alertFor(e);
    if (a) this.alerts.alert(a);
  }
}
