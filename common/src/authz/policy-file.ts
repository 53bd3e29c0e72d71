/**
 * The identity policy file (policies/README.md): which certificate
 * identities hold which roles for which tenants. Validated strictly once, at
 * load: unknown fields, unknown roles, bad tenant ids, duplicate matches and
 * "*" for edge/app are `invalid_policy` errors naming the file and the field
 * (`identities[2].tenants[0]`).
 *
 *   { "version": 1,
 *     "identities": [
 *       { "name": "ops-1", "match": { "cn": "operator-1" }, "roles": ["operator"], "tenants": "*" },
 *       { "match": { "uri": "spiffe://example/edge/eu-1" }, "roles": ["edge"], "tenants": ["acme"] },
 *       { "match": { "fingerprint": "AB:CD:…" }, "roles": ["app"], "tenants": ["acme"] } ] }
 */
import { readFileSync } from 'node:fs';
import { KcmError } from '../errors.ts';
import { isTenantId } from '../format/ids.ts';
import { strictObject } from '../format/strict-object.ts';
import { bindingsOf, type CertificateMatch, certificateMatchOf } from './certificate-match.ts';
import { ALL_TENANT_ROLES, isRole, ROLES, type Role } from './permissions.ts';

export type { MatchKind } from './certificate-match.ts';

export interface Binding {
  /** For logs and audit: the policy's name, else `<kind>:<value>`. */
  name: string;
  match: CertificateMatch;
  roles: Role[];
  tenants: '*' | string[];
}

export interface Policy {
  source: string;
  bindings: Binding[];
}

type Json = Record<string, unknown>;

function fail(source: string, field: string, rule: string): never {
  throw new KcmError('invalid_policy', `${source}: ${field} ${rule}`);
}

const UNKNOWN = 'is not a known field';

function object(v: unknown, source: string, field: string, allowed: readonly string[]): Json {
  return strictObject(v, field, allowed, (f, why) => fail(source, f, why), UNKNOWN);
}

function parseBinding(v: unknown, source: string, field: string): Binding {
  const b = object(v, source, field, ['name', 'description', 'match', 'roles', 'tenants']);
  if (b.name !== undefined && (typeof b.name !== 'string' || b.name.length === 0 || b.name.length > 128)) {
    fail(source, `${field}.name`, 'must be a string of 1-128 characters');
  }
  if (b.description !== undefined && typeof b.description !== 'string')
    fail(source, `${field}.description`, 'must be a string');
  const match = certificateMatchOf(b.match, `${field}.match`, (f, why) => fail(source, f, why), UNKNOWN);
  if (!Array.isArray(b.roles) || b.roles.length === 0)
    fail(source, `${field}.roles`, `must be a non-empty array of ${ROLES.join(', ')}`);
  const roles: Role[] = [];
  b.roles.forEach((r, i) => {
    if (!isRole(r)) fail(source, `${field}.roles[${i}]`, `must be one of ${ROLES.join(', ')}`);
    if (roles.includes(r)) fail(source, `${field}.roles[${i}]`, `repeats ${r}`);
    roles.push(r);
  });
  let tenants: Binding['tenants'];
  if (b.tenants === '*') {
    const narrow = roles.filter((r) => !ALL_TENANT_ROLES.has(r));
    if (narrow.length > 0)
      fail(source, `${field}.tenants`, `"*" is only for operator and auditor, not ${narrow.join(', ')}`);
    tenants = '*';
  } else if (Array.isArray(b.tenants)) {
    tenants = [];
    for (const [i, t] of b.tenants.entries()) {
      if (typeof t !== 'string' || !isTenantId(t))
        fail(source, `${field}.tenants[${i}]`, 'must be a tenant id (1-40 of A-Z a-z 0-9 - . _ ~)');
      if (!tenants.includes(t)) tenants.push(t);
    }
    if (tenants.length === 0 && roles.some((r) => r === 'edge' || r === 'app')) {
      fail(source, `${field}.tenants`, 'must list at least one tenant for edge and app');
    }
  } else {
    fail(source, `${field}.tenants`, 'must be "*" or an array of tenant ids');
  }
  const name = typeof b.name === 'string' ? b.name : `${match.kind}:${match.value}`;
  return { name, match, roles, tenants };
}

/** Validates a parsed policy document; `source` names it in errors. Throws `invalid_policy`. */
export function parsePolicy(doc: unknown, source: string): Policy {
  const bindings = bindingsOf(
    doc,
    (f, why) => fail(source, f, why),
    (b, field) => parseBinding(b, source, field),
    { unknownWhy: UNKNOWN, repeatDetail: (b) => ` (${b.match.kind} ${b.match.value})` },
  );
  return { source, bindings };
}

/** Reads and validates a policy file; throws `invalid_policy` naming the file (and the field). */
export function loadPolicyFile(file: string): Policy {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    fail(file, '(file)', `cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    fail(file, '(file)', `is not valid JSON (${err instanceof Error ? err.message : String(err)})`);
  }
  return parsePolicy(doc, file);
}
