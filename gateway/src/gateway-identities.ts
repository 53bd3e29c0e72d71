/**
 * The gateway's certificate identity file (config `identities`): which
 * tenants a verified client certificate may act for and which reader roles
 * it holds. Certificates are matched exactly as the Core's identity policy
 * matches them (common/src/authz/policy-file.ts): by CN, by any URI SAN or by
 * SHA-256 fingerprint; a certificate named by several entries holds the
 * union of what each grants (`"*"`, every tenant, wins over lists).
 *
 *   { "version": 1,
 *     "identities": [
 *       { "name": "billing", "match": { "cn": "billing-service" }, "tenants": ["acme", "globex"], "roles": ["billing"] },
 *       { "match": { "uri": "spiffe://example/ns/reports" }, "tenants": ["acme"] },
 *       { "name": "ops", "match": { "cn": "ops-console" }, "tenants": "*" } ] }
 *
 * Not the Core's file: its roles are a closed set (operator, auditor, edge,
 * app) with Core meanings, while reader roles here are free names the route
 * policies' `readers` use (docs/gateway.md "Identity and tenant").
 *
 * Listed mode fails closed: a certificate no entry names acts for no tenant
 * and holds no role, unless `unlisted: "cn"` keeps the default rule (its CN,
 * when a valid tenant id) for such certificates.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import {
  bindingsOf,
  CertificateIndex,
  type CertificateMatch,
  certificateMatchOf,
} from '../../common/src/authz/certificate-match.ts';
import { KcmError } from '../../common/src/errors.ts';
import { isTenantId } from '../../common/src/format/ids.ts';
import { strictObject } from '../../common/src/format/strict-object.ts';
import { type FileWatch, watchFiles } from '../../common/src/tls/watch-files.ts';
import { cnIsTenant } from './pipeline/caller.ts';
import type { CertificateTenants, PeerCertificate } from './pipeline/context.ts';

export interface CertificateBinding {
  /** For logs: the entry's name, else `<kind>:<value>`. */
  name: string;
  match: CertificateMatch;
  /** The listed tenants, or 'any' for `"*"` (every tenant, present and future). */
  tenants: CertificateTenants;
  roles: readonly string[];
}

export interface IdentityFile {
  source: string;
  bindings: CertificateBinding[];
}

/** What certificates the file does not name get: nothing (`refuse`), or their CN as tenant (`cn`). */
export type Unlisted = 'refuse' | 'cn';

/** Printable ASCII without comma: roles travel upstream as `a, b` (callerHeaders.roles). */
const ROLE = /^[\x21-\x2b\x2d-\x7e]{1,256}$/;

type Json = Record<string, unknown>;

function fail(source: string, field: string, why: string): never {
  throw new KcmError('invalid_config', `${source}: ${field}: ${why}`);
}

function object(v: unknown, source: string, field: string, keys: readonly string[]): Json {
  return strictObject(v, field, keys, (f, why) => fail(source, f, why));
}

function list(v: unknown, source: string, field: string, ok: (s: string) => boolean, what: string): string[] {
  if (!Array.isArray(v)) fail(source, field, `must be an array of ${what}s`);
  const out: string[] = [];
  for (const [i, s] of v.entries()) {
    if (typeof s !== 'string' || !ok(s)) fail(source, `${field}[${i}]`, `must be a ${what}`);
    if (out.includes(s)) fail(source, `${field}[${i}]`, `repeats ${s}`);
    out.push(s);
  }
  return out;
}

function parseBinding(v: unknown, source: string, field: string): CertificateBinding {
  const b = object(v, source, field, ['name', 'description', 'match', 'tenants', 'roles']);
  if (b.name !== undefined && (typeof b.name !== 'string' || b.name.length === 0 || b.name.length > 128)) {
    fail(source, `${field}.name`, 'must be a string of 1-128 characters');
  }
  if (b.description !== undefined && typeof b.description !== 'string') {
    fail(source, `${field}.description`, 'must be a string');
  }
  const match = certificateMatchOf(b.match, `${field}.match`, (f, why) => fail(source, f, why));
  if (b.tenants !== '*' && !Array.isArray(b.tenants)) {
    fail(source, `${field}.tenants`, 'must be "*" (every tenant) or an array of tenant ids');
  }
  const tenants: CertificateTenants =
    b.tenants === '*'
      ? 'any'
      : Object.freeze(
          list(b.tenants, source, `${field}.tenants`, isTenantId, 'tenant id (1-40 of A-Z a-z 0-9 - . _ ~)'),
        );
  const roles =
    b.roles === undefined
      ? []
      : list(b.roles, source, `${field}.roles`, (r) => ROLE.test(r), 'role name (1-256 printable ASCII, no comma)');
  if (tenants !== 'any' && tenants.length === 0 && roles.length === 0)
    fail(source, field, 'grants no tenant and no role');
  const name = typeof b.name === 'string' ? b.name : `${match.kind}:${match.value}`;
  return { name, match, tenants, roles: Object.freeze(roles) };
}

/**
 * Validates a parsed identity file; `source` (the file) starts every error.
 * Throws KcmError `invalid_config` naming the field (`identities[1].tenants[0]`).
 */
export function parseIdentityFile(doc: unknown, source: string): IdentityFile {
  const bindings = bindingsOf(
    doc,
    (f, why) => fail(source, f, why),
    (b, field) => parseBinding(b, source, field),
  );
  return { source, bindings };
}

function readIdentityFile(file: string): { parsed: IdentityFile; digest: string } {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (err) {
    fail(file, '(file)', `cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString('utf8'));
  } catch {
    fail(file, '(file)', 'is not valid JSON');
  }
  return { parsed: parseIdentityFile(doc, file), digest: createHash('sha256').update(bytes).digest('hex') };
}

/** Lookup tables of one identity file, immutable (a reload builds new ones). */
class IdentityTable extends CertificateIndex<CertificateBinding> {
  constructor(readonly file: IdentityFile) {
    super(file.bindings);
  }
}

/** The union of what `pick` gives for each entry (one entry: its list as is, nothing allocated). */
function union(bindings: readonly CertificateBinding[], pick: (b: CertificateBinding) => readonly string[]) {
  if (bindings.length === 1) return pick(bindings[0] as CertificateBinding);
  return [...new Set(bindings.flatMap(pick))];
}

/** The union of the entries' tenants; 'any' when one of them says `"*"`. */
function tenantsOf(bindings: readonly CertificateBinding[]): CertificateTenants {
  if (bindings.length === 1) return (bindings[0] as CertificateBinding).tenants;
  if (bindings.some((b) => b.tenants === 'any')) return 'any';
  return union(bindings, (b) => b.tenants as readonly string[]);
}

export interface CertificateIdentitiesOptions {
  /** See {@link Unlisted}; default `refuse`. */
  unlisted?: Unlisted;
  log?: (msg: string) => void;
}

/**
 * The gateway's `tenantsForCertificate` and `rolesForCertificate` from an
 * identity file. The file is loaded by the constructor (throws
 * `invalid_config` naming the file and field: the gateway refuses to start;
 * nothing is left open). {@link reload} (and {@link watch}, which calls it
 * when the file changes) swaps in a valid new file whole, so a request sees
 * either the old or the new mapping; a bad one is logged and the old one
 * stays in force.
 */
export class CertificateIdentities {
  readonly file: string;
  readonly unlisted: Unlisted;
  readonly #log: (msg: string) => void;
  #table: IdentityTable;
  #digest: string;
  #version = 1;
  #watch: FileWatch | undefined;

  constructor(file: string, o: CertificateIdentitiesOptions = {}) {
    this.file = file;
    this.unlisted = o.unlisted ?? 'refuse';
    this.#log = o.log ?? ((m) => console.error(m));
    const { parsed, digest } = readIdentityFile(file);
    this.#table = new IdentityTable(parsed);
    this.#digest = digest;
  }

  /** Reloads the file when it changes (its directory watched, events debounced) until {@link close}. Idempotent. */
  watch(debounceMs = 200): void {
    this.#watch ??= watchFiles([this.file], () => this.reload('file change'), {
      debounceMs,
      log: (m) => this.#log(`identities: ${m}`),
    });
  }

  /** 1 at start, +1 per applied reload. */
  get version(): number {
    return this.#version;
  }

  /** The entries naming `cert` (by CN, any URI SAN, or fingerprint). */
  bindingsOf(cert: PeerCertificate): CertificateBinding[] {
    return this.#table.bindingsOf(cert);
  }

  /**
   * Tenants `cert` may act for: the union of its entries, or 'any' when one
   * of them says `"*"`; unlisted: none, or its CN with `unlisted: "cn"`.
   */
  readonly tenantsFor = (cert: PeerCertificate): CertificateTenants => {
    const bindings = this.#table.bindingsOf(cert);
    if (bindings.length === 0) return this.unlisted === 'cn' ? cnIsTenant(cert) : [];
    return tenantsOf(bindings);
  };

  /** Reader roles of `cert`: the union of its entries' roles (none when unlisted). */
  readonly rolesFor = (cert: PeerCertificate): readonly string[] => {
    const bindings = this.#table.bindingsOf(cert);
    return bindings.length === 0 ? [] : union(bindings, (b) => b.roles);
  };

  /** Re-reads the file. True when a changed, valid file was applied; false when unchanged or refused (logged). Never throws. */
  reload(reason = 'manual'): boolean {
    let next: { parsed: IdentityFile; digest: string };
    try {
      next = readIdentityFile(this.file);
    } catch (err) {
      this.#log(`identities: kept the current file (${reason}): ${err instanceof Error ? err.message : String(err)}`);
      return false;
    }
    if (next.digest === this.#digest) return false;
    this.#table = new IdentityTable(next.parsed);
    this.#digest = next.digest;
    this.#version++;
    this.#log(`identities: loaded ${this.file} (${reason}): ${next.parsed.bindings.length} identities`);
    return true;
  }

  /** Stops watching. */
  close(): void {
    this.#watch?.close();
    this.#watch = undefined;
  }
}
