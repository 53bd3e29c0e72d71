/**
 * Caller identity and tenant resolution (ADR-402: fail closed).
 *
 * - A verified client certificate (mTLS listeners) identifies the caller; the
 *   tenants it may act for come from `tenantsForCertificate` (default: the
 *   certificate CN, as ADR-402's public code does).
 * - Without a certificate, only a trusted peer (loopback, or an address the
 *   configuration lists) is accepted, and it names its tenant with the
 *   `x-okcm-tenant` header or the body field `tenant`.
 * - Anyone else is refused with 401 `unauthenticated`.
 */
import { KcmError } from '../../../common/src/errors.ts';
import { isTenantId } from '../../../common/src/format/ids.ts';
import type { Caller, PeerCertificate, PeerInfo } from './context.ts';

export const TENANT_HEADER = 'x-okcm-tenant';

/** Which addresses count as trusted peers for header-named tenants. */
export type PeerTrust = (address: string) => boolean;

/** Loopback only: 127.0.0.0/8, ::1 and IPv4-mapped loopback. */
export const loopbackOnly: PeerTrust = (address) =>
  address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.');

/** Trusts exactly the listed addresses (plus loopback when `withLoopback`). */
export function trustAddresses(addresses: readonly string[], withLoopback = true): PeerTrust {
  const set = new Set(addresses);
  return (a) => set.has(a) || (withLoopback && loopbackOnly(a));
}

/** ADR-402 default: a certificate may act for the tenant its CN names. */
export function cnIsTenant(cert: PeerCertificate): readonly string[] {
  return isTenantId(cert.cn) ? [cert.cn] : [];
}

/** The caller of a request, or undefined when it is neither certified nor a trusted peer. */
export function identifyCaller(
  peer: PeerInfo,
  trust: PeerTrust,
  tenantsForCertificate: (cert: PeerCertificate) => readonly string[],
): Caller | undefined {
  if (peer.certificate) {
    return { kind: 'certificate', id: peer.certificate.cn, tenants: new Set(tenantsForCertificate(peer.certificate)) };
  }
  if (trust(peer.address)) return { kind: 'trusted-peer', id: peer.address, tenants: 'any' };
  return undefined;
}

/**
 * The tenant a request acts for: the header and the body field must agree
 * when both are given; a certificate caller with exactly one tenant may omit
 * both. Throws `unauthenticated` (no caller), `bad_request` (missing or
 * conflicting), `invalid_tenant_id`, `forbidden` (not one of the caller's).
 */
export function resolveTenant(caller: Caller | undefined, header: string | undefined, bodyField: unknown): string {
  if (!caller) throw new KcmError('unauthenticated');
  if (bodyField !== undefined && typeof bodyField !== 'string') {
    throw new KcmError('invalid_tenant_id', 'tenant must be a string');
  }
  if (header !== undefined && bodyField !== undefined && header !== bodyField) {
    throw new KcmError('bad_request', `${TENANT_HEADER} and the body field tenant differ`);
  }
  let tenant = header ?? bodyField;
  if (tenant === undefined) {
    if (caller.tenants !== 'any' && caller.tenants.size === 1) [tenant] = caller.tenants;
    else throw new KcmError('bad_request', `name the tenant with ${TENANT_HEADER} or the body field tenant`);
  }
  if (!isTenantId(tenant as string)) throw new KcmError('invalid_tenant_id');
  if (caller.tenants !== 'any' && !caller.tenants.has(tenant as string)) {
    throw new KcmError('forbidden', 'the caller may not act for this tenant');
  }
  return tenant as string;
}
