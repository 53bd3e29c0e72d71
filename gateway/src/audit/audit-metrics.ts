/**
 * The gateway's audit log in /metrics, read at scrape time from AuditLog's
 * counters: records made durable, failed writes and syncs (each one a 503
 * `audit_unavailable` for the requests waiting on it), records still waiting
 * for their fdatasync, failed updates of the head file, rotations, fields the redaction guard replaced, and
 * with an OTLP collector the lines it accepted and those dropped from the
 * export queue. Operators alert on failures here as well as through the
 * alert webhook.
 */
import type { AuditLog } from '../../../common/src/audit/audit-log.ts';
import type { OtlpShipper } from '../../../common/src/audit/otlp-shipper.ts';
import type { GatewayMetrics } from '../metrics/gateway-metrics.ts';
import { CallbackMetric } from '../metrics/registry.ts';

export function registerAuditMetrics(metrics: GatewayMetrics, log: AuditLog, shipper: OtlpShipper | null): void {
  const series: [name: string, help: string, type: 'counter' | 'gauge', read: () => number][] = [
    [
      'okcm_gateway_audit_lines_total',
      'Audit log lines made durable (records and checkpoints).',
      'counter',
      () => log.stats.lines,
    ],
    [
      'okcm_gateway_audit_failures_total',
      'Audit log writes or fdatasyncs that failed (their requests answered 503 audit_unavailable).',
      'counter',
      () => log.stats.writeFailures,
    ],
    [
      'okcm_gateway_audit_pending_records',
      'Audit records written and waiting for their fdatasync.',
      'gauge',
      () => log.pendingSync,
    ],
    [
      'okcm_gateway_audit_head_failures_total',
      'Updates of the signed head file that failed (the records are durable; truncation detection lags until one succeeds).',
      'counter',
      () => log.stats.headFailures,
    ],
    [
      'okcm_gateway_audit_rotations_total',
      'Audit log rotations to a new segment.',
      'counter',
      () => log.stats.rotations,
    ],
    [
      'okcm_gateway_audit_redacted_fields_total',
      'Audit record fields the redaction guard replaced (a bug upstream of the log).',
      'counter',
      () => log.stats.redacted,
    ],
  ];
  if (shipper) {
    series.push(
      [
        'okcm_gateway_audit_exported_lines_total',
        'Audit lines the OTLP collector accepted.',
        'counter',
        () => shipper.stats.shipped,
      ],
      [
        'okcm_gateway_audit_export_dropped_lines_total',
        'Audit lines dropped from the OTLP queue while the collector was slow or down (the log keeps them).',
        'counter',
        () => shipper.stats.dropped,
      ],
      [
        'okcm_gateway_audit_export_failures_total',
        'OTLP export attempts that failed (retried with backoff).',
        'counter',
        () => shipper.stats.failures,
      ],
      [
        'okcm_gateway_audit_export_queued_lines',
        'Audit lines waiting to be sent to the OTLP collector.',
        'gauge',
        () => shipper.queued,
      ],
    );
  }
  for (const [name, help, type, read] of series) metrics.registry.register(new CallbackMetric(name, help, type, read));
}
