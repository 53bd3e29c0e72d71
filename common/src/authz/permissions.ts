/**
 * Roles and what each may do (ADR-401/402). Fixed in code, not in policy
 * files: a policy says who holds which role for which tenants; this table
 * says what a role means, so a policy typo cannot grant a new power.
 *
 * | Action             | operator | auditor | edge | app | tenant-scoped |
 * |--------------------|:--------:|:-------:|:----:|:---:|:-------------:|
 * | sys.read           | ✓        | ✓       |      |     |               |
 * | sys.write          | ✓        |         |      |     |               |
 * | tenant.read        | ✓        | ✓       |      |     | ✓             |
 * | tenant.write       | ✓        |         |      |     | ✓             |
 * | key.read           | ✓        | ✓       |      |     | ✓             |
 * | key.write          | ✓        |         |      |     | ✓             |
 * | lease              |          |         | ✓    |     | ✓             |
 * | audit.read         | ✓        | ✓       |      |     | ✓             |
 * | approval.read      | ✓        | ✓       |      |     |               |
 * | approval.propose   | ✓        |         |      |     |               |
 * | approval.approve   | ✓        |         |      |     |               |
 * | approval.cancel    | ✓        |         |      |     |               |
 * | crypto.encrypt     |          |         |      | ✓   | ✓             |
 * | crypto.decrypt     |          |         |      | ✓   | ✓             |
 *
 * sys.* covers the root of trust (status, init, unseal, seal, IVK); lease
 * covers leasing L3 keys and the revocation stream. Operators govern keys
 * but never use them (no crypto.*, no lease); edges and apps never govern.
 * A tenant-scoped action asked without a tenant means "all tenants" and is
 * allowed only to a binding with tenants "*".
 */

export const ROLES = ['operator', 'auditor', 'edge', 'app'] as const;
export type Role = (typeof ROLES)[number];

export const ACTIONS = [
  'sys.read',
  'sys.write',
  'tenant.read',
  'tenant.write',
  'key.read',
  'key.write',
  'lease',
  'audit.read',
  'approval.read',
  'approval.propose',
  'approval.approve',
  'approval.cancel',
  'crypto.encrypt',
  'crypto.decrypt',
] as const;
export type Action = (typeof ACTIONS)[number];

export const ROLE_PERMISSIONS: Readonly<Record<Role, readonly Action[]>> = Object.freeze({
  operator: [
    'sys.read',
    'sys.write',
    'tenant.read',
    'tenant.write',
    'key.read',
    'key.write',
    'audit.read',
    'approval.read',
    'approval.propose',
    'approval.approve',
    'approval.cancel',
  ],
  auditor: ['sys.read', 'tenant.read', 'key.read', 'audit.read', 'approval.read'],
  edge: ['lease'],
  app: ['crypto.encrypt', 'crypto.decrypt'],
});

/** Actions whose requests name a tenant (the binding must list it, or be "*"). */
export const TENANT_SCOPED: ReadonlySet<Action> = new Set<Action>([
  'tenant.read',
  'tenant.write',
  'key.read',
  'key.write',
  'lease',
  'audit.read',
  'crypto.encrypt',
  'crypto.decrypt',
]);

/** Roles that may hold tenants "*" (all tenants, present and future). */
export const ALL_TENANT_ROLES: ReadonlySet<Role> = new Set<Role>(['operator', 'auditor']);

export function isRole(v: unknown): v is Role {
  return typeof v === 'string' && (ROLES as readonly string[]).includes(v);
}

export function isAction(v: unknown): v is Action {
  return typeof v === 'string' && (ACTIONS as readonly string[]).includes(v);
}
