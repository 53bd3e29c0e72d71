/**
 * The `edge` section of the Core configuration (docs/core.md "Edge API"):
 *
 *   "edge": {
 *     "host": "0.0.0.0", "port": 8443,
 *     "tls": { "certFile": "core.pem", "keyFile": "core.key", "caFile": "edge-ca.pem" },
 *     "leaseTtl": { "defaultSeconds": 300, "minSeconds": 300, "maxSeconds": 3600 },
 *     "heartbeatMs": 5000
 *   }
 *
 * Absent = the edge API is not served. TLS with a client CA is mandatory
 * (mTLS only); lease TTLs stay within ADR-602's 5–60 minutes. Which edge may
 * lease which tenant comes from the authorization policy (`authzPolicy`,
 * role `edge`). Errors: `invalid_config` naming the field.
 */
import { KcmError } from '../../../common/src/errors.ts';
import { checkLeaseTtl, DEFAULT_LEASE_TTL, type LeaseTtlPolicy } from './lease-route.ts';

export interface EdgeConfig {
  host: string;
  port: number;
  tls: { certFile: string; keyFile: string; caFile: string };
  leaseTtl: LeaseTtlPolicy;
  heartbeatMs: number;
}

function fail(field: string, rule: string): never {
  throw new KcmError('invalid_config', `edge.${field} ${rule}`);
}

function int(v: unknown, field: string, min: number, max: number, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
    fail(field, `must be an integer from ${min} to ${max}`);
  }
  return v;
}

function rec(v: unknown, field: string): Record<string, unknown> {
  if (v === undefined) return {};
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(field, 'must be an object');
  return v as Record<string, unknown>;
}

/** Parses and validates the section; undefined when absent. */
export function edgeConfig(v: unknown): EdgeConfig | undefined {
  if (v === undefined) return undefined;
  const e = rec(v, '');
  const tls = rec(e.tls, 'tls');
  for (const f of ['certFile', 'keyFile', 'caFile'] as const) {
    if (typeof tls[f] !== 'string' || tls[f] === '') fail(`tls.${f}`, 'is required (the edge API is mTLS only)');
  }
  const t = rec(e.leaseTtl, 'leaseTtl');
  const bound = (name: keyof LeaseTtlPolicy) => int(t[name], `leaseTtl.${name}`, 300, 3600, DEFAULT_LEASE_TTL[name]);
  let leaseTtl: LeaseTtlPolicy;
  try {
    leaseTtl = checkLeaseTtl({
      defaultSeconds: bound('defaultSeconds'),
      minSeconds: bound('minSeconds'),
      maxSeconds: bound('maxSeconds'),
    });
  } catch {
    fail('leaseTtl', 'needs minSeconds <= defaultSeconds <= maxSeconds');
  }
  if (e.host !== undefined && (typeof e.host !== 'string' || e.host === ''))
    fail('host', 'must be a host name or address');
  return {
    host: (e.host as string | undefined) ?? '127.0.0.1',
    port: int(e.port, 'port', 0, 65535, 8443),
    tls: tls as EdgeConfig['tls'],
    leaseTtl,
    heartbeatMs: int(e.heartbeatMs, 'heartbeatMs', 100, 60_000, 5_000),
  };
}
