/**
 * Identity-bound authorization: one engine for the Core admin API, the Core
 * edge API and the gateway (ADR-401/402). Deny by default.
 *
 *   const authz = new ReloadableAuthz('policies/authz.json', { log, sighup: true }); // or new AuthzEngine(parsePolicy(doc, 'name'))
 *   const who = peerIdentity(socket);                        // common/src/tls: null without a verified certificate
 *   const d = authz.authorize(who, { action: 'lease', tenant: 'acme' });
 *   // d: { allowed, reason, roles, binding? } — !who → 401 unauthenticated; !d.allowed → 403 forbidden (audit d.reason)
 *   authz.tenantsFor(who, 'lease');                          // '*' | string[] (filters for listings)
 *   authz.close();
 *
 * Actions and roles: permissions.ts (the role → permission table). Policy
 * schema: policy-file.ts and policies/README.md. Tests: testPolicyDocument(pki)
 * / writeTestPolicy(file, pki) for makeTestPki's identities.
 * Errors: `invalid_policy` (load only; reloads keep the old policy and log).
 */
export { AuthzEngine, type AuthzRequest, type Decision, type EngineOptions } from './engine.ts';
export {
  ACTIONS,
  type Action,
  ALL_TENANT_ROLES,
  isAction,
  isRole,
  ROLE_PERMISSIONS,
  ROLES,
  type Role,
  TENANT_SCOPED,
} from './permissions.ts';
export { type Binding, loadPolicyFile, type MatchKind, type Policy, parsePolicy } from './policy-file.ts';
export { type Authorizer, ReloadableAuthz, type ReloadableAuthzOptions } from './reloadable-authz.ts';
export { testPolicyDocument, writeTestPolicy } from './test-policy.ts';
