/**
 * Who an edge is and which tenants it may use (ADR-401/402): the edge API's
 * seam over TLS identity and authorization. Fail closed: a connection whose
 * certificate is not verified, expired or lacks EKU clientAuth has no edge id
 * (401), and a tenant not explicitly allowed for the edge is refused (403).
 */
import type { TLSSocket } from 'node:tls';
import type { Authorizer } from '../../../common/src/authz/reloadable-authz.ts';
import { KcmError } from '../../../common/src/errors.ts';
import { isTenantId } from '../../../common/src/format/ids.ts';
import { describeIdentity, type Identity } from '../../../common/src/tls/identity.ts';
import { peerIdentity } from '../../../common/src/tls/peer-check.ts';

export interface EdgeAccess {
  /** The edge id of the connection's verified client certificate, or null (→ 401 `unauthenticated`). */
  identify(socket: TLSSocket): string | null;
  /** True only when the edge may lease keys of the tenant and see its events. Deny by default. */
  mayLease(edgeId: string, tenant: string): boolean;
  /**
   * False when this access cannot judge `edgeId` (e.g. an identity-based policy
   * and an edge not connected since the Core started); absent = always true.
   */
  knows?(edgeId: string): boolean;
  /**
   * False when the caller is not an edge at all (e.g. an operator, auditor or
   * app certificate from the same CA): every edge route then answers 403
   * `forbidden`, so no other identity can follow key events or store acks.
   * Absent = every identified caller is treated as an edge.
   */
  isEdge?(edgeId: string): boolean;
}

/** The edge id of a certificate identity: its CN, else its first URI SAN, else its SHA-256 fingerprint. */
export function edgeIdOf(identity: Identity): string {
  return describeIdentity(identity);
}

/**
 * Access from a configured allow-list: edge id → tenants. An edge id absent
 * from the list, or a tenant absent from its entry, is refused. The list is
 * read through `allowed()` on every decision, so a reloaded list applies to
 * open event streams at once. Throws `invalid_config` for a malformed list.
 */
export function allowListAccess(allowed: () => Readonly<Record<string, readonly string[]>>): EdgeAccess {
  checkAllowList(allowed());
  return {
    identify(socket) {
      const who = peerIdentity(socket);
      return who ? edgeIdOf(who) : null;
    },
    mayLease(edgeId, tenant) {
      const list = Object.hasOwn(allowed(), edgeId) ? allowed()[edgeId] : undefined;
      return list?.includes(tenant) ?? false;
    },
    isEdge: (edgeId) => Object.hasOwn(allowed(), edgeId),
  };
}

/** Throws `invalid_config` naming the entry unless every value is a list of tenant ids. */
export function checkAllowList(list: unknown): Record<string, string[]> {
  if (typeof list !== 'object' || list === null || Array.isArray(list)) {
    throw new KcmError('invalid_config', 'edge.allow must map edge ids to lists of tenant ids');
  }
  for (const [id, tenants] of Object.entries(list)) {
    if (!Array.isArray(tenants) || !tenants.every((t) => typeof t === 'string' && isTenantId(t))) {
      throw new KcmError('invalid_config', `edge.allow.${id} must be a list of tenant ids`);
    }
  }
  return list as Record<string, string[]>;
}

/**
 * Access from the shared authorization engine (common/src/authz): an edge may
 * use a tenant when `authorize(identity, {action: 'lease', tenant})` allows
 * it. The identity of each edge id is remembered from its latest connection
 * (a policy may match by CN, URI SAN or fingerprint), so decisions for
 * streamed events and ack status use the full identity; an edge id not seen
 * since start is refused and reported as unknown (`knows` = false). An
 * identity the policy grants `lease` for no tenant is not an edge (`isEdge`).
 */
export function authzEdgeAccess(authz: Authorizer): EdgeAccess {
  const seen = new Map<string, Identity>();
  return {
    identify(socket) {
      const who = peerIdentity(socket);
      if (!who) return null;
      const id = edgeIdOf(who);
      seen.set(id, who);
      return id;
    },
    mayLease(edgeId, tenant) {
      const who = seen.get(edgeId);
      return who ? authz.authorize(who, { action: 'lease', tenant }).allowed : false;
    },
    knows: (edgeId) => seen.has(edgeId),
    // An edge is an identity whose role grants `lease` for some tenant (role edge; never "*").
    isEdge(edgeId) {
      const who = seen.get(edgeId);
      const tenants = who ? authz.tenantsFor(who, 'lease') : [];
      return tenants === '*' || tenants.length > 0;
    },
  };
}
