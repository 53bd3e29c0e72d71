/**
 * POST /v1/edge/lease {tenant, service, versions?, ttlSeconds?} (ADR-602):
 * the active L3 version plus the decrypt-only versions asked for, each wrapped
 * for transport under a key bound to this TLS connection (SPEC.md "Edge lease
 * transport"). The edge must be allowed the tenant (403 `lease_refused`);
 * key states are the lease source's (410 `tenant_revoked`, 404 `key_not_found`,
 * 403 `tenant_grace_ended`, 503 `sealed` …).
 */
import { randomBytes } from 'node:crypto';
import { LEASE_SALT_BYTES, leaseKey, leaseWrapAad } from '../../../common/src/crypto/lease-transport.ts';
import { KcmError } from '../../../common/src/errors.ts';
import { LEASE_MAX_VERSIONS, type WireLease, type WireLeasedVersion } from '../../../common/src/format/edge-wire.ts';
import { assertKeyId, assertTenantId, isKeyVersion } from '../../../common/src/format/ids.ts';
import type { Crypto, KeyHandle } from '../../../native/index.ts';
import type { L3LeaseSource, LeasedL3Version } from '../keys/l3-lease-source.ts';
import type { EdgeAccess } from './edge-access.ts';
import type { EdgeSession } from './edge-session.ts';
import { optionalInt } from './h2-json.ts';

/** Lease TTL bounds in seconds (ADR-602: default 5 min, 5–60 min allowed). */
export interface LeaseTtlPolicy {
  defaultSeconds: number;
  minSeconds: number;
  maxSeconds: number;
}

export const DEFAULT_LEASE_TTL: LeaseTtlPolicy = { defaultSeconds: 300, minSeconds: 300, maxSeconds: 3600 };

/** Throws `invalid_config` unless 1 ≤ min ≤ default ≤ max. */
export function checkLeaseTtl(p: LeaseTtlPolicy): LeaseTtlPolicy {
  const ok =
    [p.minSeconds, p.defaultSeconds, p.maxSeconds].every((n) => Number.isSafeInteger(n) && n >= 1) &&
    p.minSeconds <= p.defaultSeconds &&
    p.defaultSeconds <= p.maxSeconds;
  if (!ok) throw new KcmError('invalid_config', 'edge lease TTL: need 1 <= minSeconds <= defaultSeconds <= maxSeconds');
  return p;
}

export interface LeaseDeps {
  crypto: Crypto;
  source: L3LeaseSource;
  access: EdgeAccess;
  ttl: LeaseTtlPolicy;
}

/** The validated request. */
export interface LeaseRequest {
  tenant: string;
  service: string;
  versions: number[];
  ttlSeconds: number;
}

/** Validates the body: tenant/service ids, at most 64 distinct versions, TTL within the policy (400 otherwise). */
export function parseLeaseRequest(body: Record<string, unknown>, ttl: LeaseTtlPolicy): LeaseRequest {
  const { tenant, service, versions } = body;
  assertTenantId(tenant);
  assertKeyId(service);
  let wanted: number[] = [];
  if (versions !== undefined) {
    if (!Array.isArray(versions) || versions.length > LEASE_MAX_VERSIONS) {
      throw new KcmError('bad_request', `versions must be an array of at most ${LEASE_MAX_VERSIONS} key versions`);
    }
    if (!versions.every((v) => typeof v === 'number' && isKeyVersion(v))) {
      throw new KcmError('invalid_key_version', 'versions must be integers from 1 to 2^32-1');
    }
    wanted = [...new Set(versions as number[])];
  }
  const ttlSeconds = optionalInt(body, 'ttlSeconds', ttl.minSeconds, ttl.maxSeconds) ?? ttl.defaultSeconds;
  return { tenant, service, versions: wanted, ttlSeconds };
}

/** Serves one lease; the caller already authenticated the session. */
export async function lease(deps: LeaseDeps, session: EdgeSession, req: LeaseRequest): Promise<WireLease> {
  if (!deps.access.mayLease(session.edgeId, req.tenant)) {
    throw new KcmError('lease_refused', `tenant ${req.tenant}`);
  }
  const set = await deps.source.leaseSet(req.tenant, req.service, req.versions);
  const salt = randomBytes(LEASE_SALT_BYTES);
  const key = leaseKey(session.transportKey(deps.crypto), salt, session.edgeId, req.tenant, req.service);
  try {
    const wrap = (v: LeasedL3Version): WireLeasedVersion => ({
      version: v.version,
      state: v.state,
      wrapped: wrapOne(key, v.handle, req.tenant, req.service, v.version),
    });
    return {
      edgeId: session.edgeId,
      tenant: req.tenant,
      service: req.service,
      ttlSeconds: req.ttlSeconds,
      salt: salt.toString('base64url'),
      tenantState: set.tenantState,
      minDecryptVersion: set.minDecryptVersion,
      activeBudgetLeft: set.activeBudgetLeft,
      active: set.active ? wrap(set.active) : null,
      decryptOnly: set.decryptOnly.map(wrap),
    };
  } finally {
    key.destroy();
  }
}

function wrapOne(key: KeyHandle, l3: KeyHandle, tenant: string, service: string, version: number): string {
  return key.wrap(l3, leaseWrapAad(tenant, service, version)).toString('base64url');
}
