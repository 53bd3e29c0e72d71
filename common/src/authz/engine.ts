/**
 * The one authorization engine (ADR-401/402), used by the Core admin API,
 * the Core edge API and the gateway. Deny by default: no identity, an
 * identity no binding names, a role without the permission, or a tenant the
 * binding does not list → denied. An identity named by several bindings (its
 * CN in one, a URI SAN in another) holds the union of what each grants, each
 * with that binding's own tenants.
 */
import { isTenantId } from '../format/ids.ts';
import type { Identity } from '../tls/identity.ts';
import { CertificateIndex } from './certificate-match.ts';
import { type Action, isAction, ROLE_PERMISSIONS, type Role, TENANT_SCOPED } from './permissions.ts';
import type { Binding, Policy } from './policy-file.ts';

export interface AuthzRequest {
  action: Action;
  /** The tenant the request concerns; omitted for a tenant-scoped action = all tenants. */
  tenant?: string;
}

export interface Decision {
  allowed: boolean;
  /** Why, for logs and the audit record (never shown to the caller beyond "forbidden"). */
  reason: string;
  /** Roles the identity holds (from every matching binding); empty when unknown. */
  roles: Role[];
  /** The binding that granted the request, when allowed. */
  binding?: string;
}

export interface EngineOptions {
  /**
   * Development mode only: the plain-HTTP loopback caller (DEV_LOOPBACK_IDENTITY)
   * is an operator for all tenants. Never set when TLS is configured.
   */
  devLoopbackOperator?: boolean;
}

const DEV_BINDING: Binding = {
  name: 'dev-loopback (development mode)',
  match: { kind: 'cn', value: 'local-operator' },
  roles: ['operator'],
  tenants: '*',
};

export class AuthzEngine {
  readonly policy: Policy;
  readonly #devLoopback: boolean;
  readonly #index: CertificateIndex<Binding>;

  constructor(policy: Policy, o: EngineOptions = {}) {
    this.policy = policy;
    this.#devLoopback = o.devLoopbackOperator === true;
    this.#index = new CertificateIndex(policy.bindings);
  }

  /** The bindings naming `identity` (by CN, any URI SAN, or fingerprint). */
  bindingsOf(identity: Identity | null): Binding[] {
    if (!identity) return [];
    if (identity.source === 'dev-loopback') return this.#devLoopback ? [DEV_BINDING] : [];
    if (identity.source !== 'certificate') return [];
    return this.#index.bindingsOf(identity);
  }

  /** Decides `request` for `identity` (null = no verified certificate). Never throws. */
  authorize(identity: Identity | null, request: AuthzRequest): Decision {
    if (!identity) return { allowed: false, reason: 'no verified client identity', roles: [] };
    const bindings = this.bindingsOf(identity);
    const roles = [...new Set(bindings.flatMap((b) => b.roles))];
    if (bindings.length === 0) return { allowed: false, reason: 'identity not in the policy', roles };
    const { action, tenant } = request;
    if (!isAction(action)) return { allowed: false, reason: `unknown action ${String(action)}`, roles };
    if (tenant !== undefined && !isTenantId(tenant)) return { allowed: false, reason: 'invalid tenant id', roles };
    let roleGrants = false;
    for (const b of bindings) {
      const role = b.roles.find((r) => ROLE_PERMISSIONS[r].includes(action));
      if (!role) continue;
      roleGrants = true;
      if (!TENANT_SCOPED.has(action) || b.tenants === '*' || (tenant !== undefined && b.tenants.includes(tenant))) {
        return { allowed: true, reason: `${action} granted to ${role} by ${b.name}`, roles, binding: b.name };
      }
    }
    if (!roleGrants) return { allowed: false, reason: `roles ${roles.join(', ')} do not grant ${action}`, roles };
    return {
      allowed: false,
      reason: tenant === undefined ? `${action} for all tenants needs tenants "*"` : `tenant ${tenant} not granted`,
      roles,
    };
  }

  /** Tenants `identity` may act on with `action`: '*' or a list (empty = none). For listings and lease filters. */
  tenantsFor(identity: Identity | null, action: Action): '*' | string[] {
    const out = new Set<string>();
    for (const b of this.bindingsOf(identity)) {
      if (!b.roles.some((r) => ROLE_PERMISSIONS[r].includes(action))) continue;
      if (b.tenants === '*') return '*';
      for (const t of b.tenants) out.add(t);
    }
    return [...out];
  }
}
