/**
 * Caller identity and tenant resolution (ADR-402: fail closed).
 *
 * - A verified client certificate (mTLS listeners) identifies the caller, and
 *   nothing else does: its address is never looked at. The tenants it may act
 *   for come from `tenantsForCertificate` (default: the certificate CN, as
 *   ADR-402's public code does; a list, or 'any' for every tenant). A
 *   certificate without exactly one CN is refused with 401 `unauthenticated`.
 * - Without a certificate, only a trusted peer (loopback, or an address the
 *   configuration lists) is accepted, and it names its tenant with the
 *   `x-okcm-tenant` header or the body field `tenant`.
 * - Anyone else is refused with 401 `unauthenticated`.
 */
import { isIP, SocketAddress } from 'node:net';
import { KcmError } from '../../../common/src/errors.ts';
import { isTenantId } from '../../../common/src/format/ids.ts';
import {
  type Caller,
  type CertificateTenants,
  isUsableCertificate,
  type PeerCertificate,
  type PeerInfo,
} from './context.ts';

export const TENANT_HEADER = 'x-okcm-tenant';

/** Which addresses count as trusted peers for header-named tenants. */
/** The peers a {@link PeerTrust} trusts, when it can say (the native front compiles them into its table). */
export interface TrustList {
  /** Addresses and CIDR blocks, read as TrustedPeers (policy/tenant-source.ts) reads them. */
  readonly entries: readonly string[];
  /** 127.0.0.0/8 and ::1 too. */
  readonly loopback: boolean;
}

export type PeerTrust = ((address: string) => boolean) & { readonly list?: TrustList };

/** IPv6 text → canonical text, per address seen (bounded: peers are few, and parsing allocates). */
const canonicalIpv6 = new Map<string, string | null>();

/**
 * The canonical text of an IP address: IPv4 dotted quad as is, IPv6 in its
 * RFC 5952 form, IPv4-mapped IPv6 (`::ffff:7f00:1`, `0000:…:ffff:7f00:0001`)
 * as the plain IPv4 address. Undefined when `address` is not an IP address.
 */
export function canonicalAddress(address: string): string | undefined {
  const family = isIP(address);
  // isIP accepts only the four-decimal dotted quad without leading zeros: already canonical.
  if (family === 4) return address;
  if (family === 0) return undefined;
  let c = canonicalIpv6.get(address);
  if (c === undefined) {
    try {
      const text = new SocketAddress({ address, family: 'ipv6' }).address;
      const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(text);
      c = mapped ? (mapped[1] as string) : text;
    } catch {
      c = null;
    }
    if (canonicalIpv6.size >= 4096) canonicalIpv6.clear();
    canonicalIpv6.set(address, c);
  }
  return c ?? undefined;
}

/** Loopback only: 127.0.0.0/8 and ::1, in any textual form (expanded, IPv4-mapped). */
export const loopbackOnly: PeerTrust = Object.assign(
  (address: string) => {
    const a = canonicalAddress(address);
    return a !== undefined && (a === '::1' || a.startsWith('127.'));
  },
  { list: { entries: [], loopback: true } },
);

/** Trusts exactly the listed addresses, compared canonically (plus loopback when `withLoopback`). */
export function trustAddresses(addresses: readonly string[], withLoopback = true): PeerTrust {
  const set = new Set(addresses.map((a) => canonicalAddress(a) ?? a));
  const list: TrustList = { entries: [...set].filter((a) => isIP(a) !== 0), loopback: withLoopback };
  return Object.assign(
    (a: string) => {
      const c = canonicalAddress(a);
      return (c !== undefined && set.has(c)) || (withLoopback && loopbackOnly(a));
    },
    { list },
  );
}

/** ADR-402 default: a certificate may act for the tenant its CN names (never 'any'). */
export function cnIsTenant(cert: PeerCertificate): readonly string[] {
  return isTenantId(cert.cn) ? [cert.cn] : [];
}

/**
 * The caller of a request, or undefined when it is neither certified nor a
 * trusted peer. A request with a client certificate is identified by it
 * alone: throws `unauthenticated` when that certificate cannot name a caller
 * (not exactly one CN; the message never quotes the subject). Its tenants
 * are what `tenantsForCertificate` returns: a set of that list, or 'any'.
 */
export function identifyCaller(
  peer: PeerInfo,
  trust: PeerTrust,
  tenantsForCertificate: (cert: PeerCertificate) => CertificateTenants,
): Caller | undefined {
  const cert = peer.certificate;
  if (cert !== undefined) {
    if (!isUsableCertificate(cert)) throw new KcmError('unauthenticated', cert.unusable);
    const tenants = tenantsForCertificate(cert);
    return { kind: 'certificate', id: cert.cn, tenants: tenants === 'any' ? 'any' : new Set(tenants) };
  }
  if (trust(peer.address)) return { kind: 'trusted-peer', id: peer.address, tenants: 'any' };
  return undefined;
}

/** Throws `forbidden` unless `caller` may act for `tenant` (a caller with tenants 'any' may act for any). */
export function assertMayActFor(caller: Caller, tenant: string): void {
  if (caller.tenants !== 'any' && !caller.tenants.has(tenant)) {
    throw new KcmError('forbidden', 'the caller may not act for this tenant');
  }
}

/**
 * The tenant a request acts for: the header and the body field must agree
 * when both are given; a certificate caller with exactly one tenant may omit
 * both, while a caller with tenants 'any' (trusted peer, or a certificate
 * listed with `"*"`) must always name it. Throws `unauthenticated` (no
 * caller), `bad_request` (missing or conflicting), `invalid_tenant_id`,
 * `forbidden` (not one of the caller's).
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
    // 'any' has no single tenant to default to, whatever the caller's kind.
    if (caller.tenants !== 'any' && caller.tenants.size === 1) [tenant] = caller.tenants;
    else throw new KcmError('bad_request', `name the tenant with ${TENANT_HEADER} or the body field tenant`);
  }
  if (!isTenantId(tenant as string)) throw new KcmError('invalid_tenant_id');
  assertMayActFor(caller, tenant as string);
  return tenant as string;
}
