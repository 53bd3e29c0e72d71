/**
 * The audit and alert sections of the Core configuration (docs/audit.md
 * "Configuration"), validated once with `invalid_config` errors naming the field:
 *
 *   "auditLog": "./data/audit.jsonl",
 *   "audit": { "keyFile": "./data/audit.jsonl.key", "checkpointEvery": 1000,
 *              "checkpointIntervalMs": 10000, "fsync": true,
 *              "rotateBytes": 134217728, "keepSegments": 30,
 *              "otlpUrl": "http://collector:4318" },
 *   "alerts": { "webhookUrl": "https://hooks.example/kcm", "perMinute": 10 }
 *
 * Environment: KCM_AUDIT_OTLP_URL, KCM_ALERT_WEBHOOK.
 */
import { resolve } from 'node:path';
import { KcmError } from '../../../common/src/errors.ts';

export interface AuditSettings {
  keyFile?: string;
  checkpointEvery: number;
  checkpointIntervalMs: number;
  fsync: boolean;
  /** Rotate at this size (default: never; the Core writes one record per key operation). */
  rotateBytes?: number;
  keepSegments?: number;
  otlpUrl?: string;
  alertWebhook?: string;
  alertsPerMinute: number;
}

function fail(field: string, rule: string): never {
  throw new KcmError('invalid_config', `${field} ${rule}`);
}

function obj(v: unknown, field: string): Record<string, unknown> {
  if (v === undefined) return {};
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(field, 'must be an object');
  return v as Record<string, unknown>;
}

function int(v: unknown, field: string, min: number, max: number, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max)
    fail(field, `must be an integer from ${min} to ${max}`);
  return v;
}

function url(v: unknown, field: string): string | undefined {
  if (v === undefined || v === '') return undefined;
  if (typeof v !== 'string' || !/^https?:\/\/\S+$/.test(v)) fail(field, 'must be an http(s) URL');
  return v;
}

/** Parses the `audit` and `alerts` sections (either may be absent). */
export function auditSettings(audit: unknown, alerts: unknown, env: NodeJS.ProcessEnv = process.env): AuditSettings {
  const a = obj(audit, 'audit');
  const al = obj(alerts, 'alerts');
  if (a.keyFile !== undefined && (typeof a.keyFile !== 'string' || a.keyFile === ''))
    fail('audit.keyFile', 'must be a path');
  if (a.fsync !== undefined && typeof a.fsync !== 'boolean') fail('audit.fsync', 'must be true or false');
  const otlpUrl = url(env.KCM_AUDIT_OTLP_URL ?? a.otlpUrl, 'audit.otlpUrl');
  const alertWebhook = url(env.KCM_ALERT_WEBHOOK ?? al.webhookUrl, 'alerts.webhookUrl');
  return {
    ...(typeof a.keyFile === 'string' ? { keyFile: resolve(a.keyFile) } : {}),
    checkpointEvery: int(a.checkpointEvery, 'audit.checkpointEvery', 1, 1_000_000, 1000),
    checkpointIntervalMs: int(a.checkpointIntervalMs, 'audit.checkpointIntervalMs', 0, 86_400_000, 10_000),
    fsync: a.fsync !== false,
    ...(a.rotateBytes !== undefined ? { rotateBytes: int(a.rotateBytes, 'audit.rotateBytes', 4096, 2 ** 40, 0) } : {}),
    ...(a.keepSegments !== undefined
      ? { keepSegments: int(a.keepSegments, 'audit.keepSegments', 1, 1_000_000, 0) }
      : {}),
    ...(otlpUrl ? { otlpUrl } : {}),
    ...(alertWebhook ? { alertWebhook } : {}),
    alertsPerMinute: int(al.perMinute, 'alerts.perMinute', 1, 10_000, 10),
  };
}
