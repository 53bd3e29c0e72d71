/**
 * The Core's audit plumbing from its configuration: the tamper-evident
 * AuditLog at `config.auditLog`, an Alerter (log + optional webhook), an
 * optional OTLP shipper, and the AlertingAuditSink the services write to.
 * `close()` writes the close checkpoint (after the Core sealed, so the seal
 * record is in it), then drains and closes the alert and export clients.
 */
import { Alerter } from '../../../common/src/alerts/alerter.ts';
import { type ExportedAuditLog, openExportedAuditLog } from '../../../common/src/audit/exported-audit-log.ts';
import type { CoreConfig } from '../config.ts';
import { AlertingAuditSink } from './alerting-sink.ts';
import { auditSettings } from './audit-settings.ts';

/** The log, its OTLP shipper and `close` (exported-audit-log.ts), the alerter and the sink the services write to. */
export interface CoreAudit extends ExportedAuditLog {
  sink: AlertingAuditSink;
  alerter: Alerter;
}

/**
 * Opens the log (creating it and its signing key on first start). Throws
 * KcmError `audit_unavailable` / `audit_tampered` from AuditLog: the Core
 * must not start without a writable, intact audit log.
 */
export function openCoreAudit(config: CoreConfig, log: (m: string) => void): CoreAudit {
  const s = config.audit ?? auditSettings(undefined, undefined, {});
  const alerter = new Alerter({
    log,
    perMinute: s.alertsPerMinute,
    ...(s.alertWebhook ? { webhookUrl: s.alertWebhook } : {}),
  });
  const audit = openExportedAuditLog(
    {
      path: config.auditLog,
      ...(s.keyFile ? { keyFile: s.keyFile } : {}),
      checkpointEvery: s.checkpointEvery,
      checkpointIntervalMs: s.checkpointIntervalMs,
      fsync: s.fsync,
      ...(s.rotateBytes !== undefined ? { rotateBytes: s.rotateBytes } : {}),
      ...(s.keepSegments !== undefined ? { keepSegments: s.keepSegments } : {}),
    },
    alerter,
    s.otlpUrl ? { url: s.otlpUrl, log } : undefined,
  );
  log(`audit log ${config.auditLog}; checkpoint public key ${audit.log.publicKey}`);
  return { sink: new AlertingAuditSink(audit.log, alerter), alerter, ...audit };
}
