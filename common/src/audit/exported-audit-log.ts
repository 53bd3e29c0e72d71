/**
 * An AuditLog together with its alerter and, when a collector is configured,
 * the OtlpShipper that gets every durable line (`onDurable`): what the Core
 * (core/src/audit/open-core-audit.ts) and a gateway
 * (gateway/src/start-configured-gateway.ts) open from their configurations.
 * If the log cannot be opened, the alerter and shipper are closed and the
 * error is thrown. `close()` writes the log's close checkpoint, gives the
 * shipper up to 2 s to deliver what is queued (`onUndelivered` hears how
 * many lines it could not), then closes the shipper and the alerter.
 */
import type { Alerter } from '../alerts/alerter.ts';
import { AuditLog, type AuditLogOptions } from './audit-log.ts';
import { OtlpShipper, type OtlpShipperOptions } from './otlp-shipper.ts';

export interface ExportedAuditLog {
  log: AuditLog;
  shipper: OtlpShipper | null;
  close(): Promise<void>;
}

/** How long `close()` waits for the collector to take the last lines. */
const FLUSH_MS = 2000;

export function openExportedAuditLog(
  options: Omit<AuditLogOptions, 'alerter' | 'onDurable'>,
  alerter: Alerter,
  otlp?: OtlpShipperOptions,
  onUndelivered?: (lines: number) => void,
): ExportedAuditLog {
  let shipper: OtlpShipper | null = null;
  let log: AuditLog;
  try {
    if (otlp) shipper = new OtlpShipper(otlp);
    log = new AuditLog({ ...options, alerter, ...(shipper ? { onDurable: shipper.enqueue } : {}) });
  } catch (err) {
    void alerter.close();
    void shipper?.close();
    throw err;
  }
  return {
    log,
    shipper,
    async close() {
      try {
        log.close();
      } finally {
        if (shipper && !(await shipper.flush(FLUSH_MS))) onUndelivered?.(shipper.queued);
        await shipper?.close();
        await alerter.close();
      }
    },
  };
}
