/**
 * The Core's audit plumbing from its configuration: the tamper-evident
 * AuditLog at `config.auditLog`, an Alerter (log + optional webhook), an
 * optional OTLP shipper, and the AlertingAuditSink the services write to.
 * `close()` writes the close checkpoint (after the Core sealed, so the seal
 * record is in it), then drains and closes the alert and export clients.
 */
import { Alerter } from '../../../common/src/alerts/alerter.ts';
import { AuditLog } from '../../../common/src/audit/audit-log.ts';
import { OtlpShipper } from '../../../common/src/audit/otlp-shipper.ts';
import type { CoreConfig } from '../config.ts';
import { AlertingAuditSink } from './alerting-sink.ts';
import { auditSettings } from './audit-settings.ts';

export interface CoreAudit {
  sink: AlertingAuditSink;
  log: AuditLog;
  alerter: Alerter;
  shipper: OtlpShipper | null;
  close(): Promise<void>;
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
  const shipper = s.otlpUrl ? new OtlpShipper({ url: s.otlpUrl, log }) : null;
  let auditLog: AuditLog;
  try {
    auditLog = new AuditLog({
      path: config.auditLog,
      ...(s.keyFile ? { keyFile: s.keyFile } : {}),
      checkpointEvery: s.checkpointEvery,
      checkpointIntervalMs: s.checkpointIntervalMs,
      fsync: s.fsync,
      ...(s.rotateBytes !== undefined ? { rotateBytes: s.rotateBytes } : {}),
      ...(s.keepSegments !== undefined ? { keepSegments: s.keepSegments } : {}),
      alerter,
      ...(shipper ? { onDurable: shipper.enqueue } : {}),
    });
  } catch (err) {
    void alerter.close();
    void shipper?.close();
    throw err;
  }
  log(`audit log ${config.auditLog}; checkpoint public key ${auditLog.publicKey}`);
  return {
    sink: new AlertingAuditSink(auditLog, alerter),
    log: auditLog,
    alerter,
    shipper,
    async close() {
      try {
        auditLog.close();
      } finally {
        await shipper?.flush(2000);
        await shipper?.close();
        await alerter.close();
      }
    },
  };
}
