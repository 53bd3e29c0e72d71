/**
 * Where a route takes the tenant of a request from (policies/README.md
 * "tenant"), and the function that applies it. Fail closed: a source that
 * yields nothing, a header from an untrusted peer, or an invalid tenant id is
 * an error, never a fallback to another source.
 */
import { BlockList, isIP } from 'node:net';
import { KcmError } from '../../../common/src/errors.ts';
import { isTenantId } from '../../../common/src/format/ids.ts';
import { canonicalAddress } from '../pipeline/caller.ts';

export type TenantSource =
  /** The tenant the authentication stage derived from the caller's client certificate. */
  | { from: 'cert' }
  /** A request header, believed only when the TCP peer is in `trustedPeers`. */
  | { from: 'header'; header: string; trustedPeers: TrustedPeers }
  /** A `:param` of the route's path pattern. */
  | { from: 'pathParam'; param: string };

/** The facts about one request that tenant resolution reads. */
export interface TenantFacts {
  /** Remote address of the TCP peer (IPv4, IPv6 or IPv4-mapped IPv6). */
  peerAddress: string;
  /** Request headers with lower-case names, as node:http gives them. */
  headers: Readonly<Record<string, string | string[] | undefined>>;
  /** Parameters the route pattern captured. */
  params: Readonly<Record<string, string>>;
  /** Set by the authentication stage when a client certificate maps to a tenant. */
  certificateTenant?: string;
}

/** The IPv4-mapped IPv6 block (RFC 4291 §2.5.5.2): its entries are IPv4 addresses written as IPv6. */
const MAPPED = new BlockList();
MAPPED.addSubnet('::ffff:0:0', 96, 'ipv6');

/**
 * A set of addresses and CIDR blocks; built once at load. IPv4 peers match
 * IPv4 entries and IPv4-mapped entries (`::ffff:10.0.0.0/104`); IPv6 peers
 * match IPv6 entries. So `::/0` is every IPv6 peer and no IPv4 one (Node's
 * BlockList alone would let an IPv6 block that covers `::ffff:0:0/96`, such
 * as `::/0` or `::/64`, trust every IPv4 peer too).
 */
export class TrustedPeers {
  /** IPv4 entries, and IPv6 entries inside ::ffff:0:0/96 (checked for IPv4 peers). */
  private readonly v4 = new BlockList();
  /** IPv6 entries (checked for IPv6 peers). */
  private readonly v6 = new BlockList();
  /** The entries as written, for error messages and docs. */
  readonly entries: readonly string[];

  /** Throws Error naming the first entry that is neither an IP address nor CIDR block. */
  constructor(entries: readonly string[]) {
    for (const e of entries) {
      const [addr, bits, extra] = e.split('/');
      const family = isIP(addr ?? '');
      if (family === 0 || extra !== undefined)
        throw new Error(`${JSON.stringify(e)} is not an IP address or CIDR block`);
      const type = family === 4 ? 'ipv4' : 'ipv6';
      const prefix = bits === undefined ? (family === 4 ? 32 : 128) : Number(bits);
      if (bits !== undefined && (!/^[0-9]{1,3}$/.test(bits) || prefix > (family === 4 ? 32 : 128))) {
        throw new Error(`${JSON.stringify(e)} has a bad prefix length`);
      }
      const lists = family === 4 ? [this.v4] : [this.v6];
      // An IPv6 entry counts for IPv4 peers only when it lies inside the mapped block.
      if (family === 6 && prefix >= 96 && MAPPED.check(addr as string, 'ipv6')) lists.push(this.v4);
      for (const list of lists) {
        if (bits === undefined) list.addAddress(addr as string, type);
        else list.addSubnet(addr as string, prefix, type);
      }
    }
    this.entries = [...entries];
  }

  /** Answers per address already checked (bounded; peers are few, and the check allocates). */
  readonly #seen = new Map<string, boolean>();

  /** True when `address` is in the set (IPv4-mapped IPv6 addresses are checked as IPv4). */
  has(address: string): boolean {
    const known = this.#seen.get(address);
    if (known !== undefined) return known;
    const answer = this.#check(address);
    if (this.#seen.size >= 4096) this.#seen.clear();
    this.#seen.set(address, answer);
    return answer;
  }

  #check(address: string): boolean {
    // Canonical text: an IPv4-mapped peer in any spelling (`::ffff:10.1.2.3`,
    // `0000:…:ffff:0a01:0203` as uWS bound to `::` reports it) is its IPv4 address.
    const a = canonicalAddress(address);
    if (a === undefined) return false;
    const family = isIP(a);
    if (family === 4) return this.v4.check(a, 'ipv4');
    if (family === 6) return this.v6.check(a, 'ipv6');
    return false;
  }
}

/**
 * The tenant of a request. Throws KcmError:
 * `unauthenticated` (cert source, no certificate tenant), `forbidden` (header
 * sent by a peer outside trustedPeers), `tenant_unresolved` (header or path
 * parameter absent, or header repeated: sent twice, or a comma-separated
 * list), `invalid_tenant_id` (not 1–40 of `A-Z a-z 0-9 - . _ ~`). Whether the
 * caller may act for the tenant is checked by the caller of this function
 * (proxy-routes.ts), whatever the source.
 */
export function resolveTenant(source: TenantSource, facts: TenantFacts): string {
  let tenant: string | undefined;
  switch (source.from) {
    case 'cert':
      tenant = facts.certificateTenant;
      if (tenant === undefined)
        throw new KcmError('unauthenticated', 'the route takes its tenant from the certificate');
      break;
    case 'header': {
      const value = facts.headers[source.header];
      if (value === undefined) throw new KcmError('tenant_unresolved', `no ${source.header} header`);
      if (!source.trustedPeers.has(facts.peerAddress)) {
        throw new KcmError('forbidden', `${source.header} is accepted only from trusted peers`);
      }
      // Both adapters join a repeated header with ", "; a tenant id never holds a comma (ids.ts).
      if (typeof value !== 'string' || value.includes(',')) {
        throw new KcmError('tenant_unresolved', `${source.header} sent more than once`);
      }
      tenant = value;
      break;
    }
    case 'pathParam':
      tenant = facts.params[source.param];
      if (tenant === undefined) throw new KcmError('tenant_unresolved', `no :${source.param} in the path`);
      break;
  }
  if (!isTenantId(tenant)) throw new KcmError('invalid_tenant_id');
  return tenant;
}
