/**
 * Validates and compiles one policy file (schema: policies/README.md).
 * Every mistake is reported as `file:line:column: field.path: reason`, all of
 * them in one KcmError `invalid_policy`.
 */
import { KcmError } from '../../../common/src/errors.ts';
import { fieldBinding, readReaders, readRules } from './field-rule-schema.ts';
import { JsonSyntaxError, type PositionedNode, readPositionedJson } from './json-position-reader.ts';
import {
  type BodyLimits,
  type CompiledPolicy,
  type CompiledRoute,
  DEFAULT_LIMITS,
  FIELD_BACKENDS,
  type FieldBackend,
  type FieldRule,
  LIMIT_BOUNDS,
  type Readers,
  type ResponseFieldRule,
  type Upstream,
} from './policy-types.ts';
import { parseRoutePattern, type RoutePattern } from './route-pattern.ts';
import {
  childPath,
  type ObjectReader,
  readArray,
  readEnum,
  readInteger,
  readObject,
  readString,
  readStringArray,
  SchemaErrors,
} from './schema-reader.ts';
import { type TenantSource, TrustedPeers } from './tenant-source.ts';

const ID = { pattern: /^[A-Za-z0-9._~-]+$/, max: 64, what: '1-64 characters of A-Z a-z 0-9 - . _ ~' };
const HEADER = { pattern: /^[a-z0-9!#$%&'*+.^_`|~-]+$/, max: 128, what: 'a lower-case HTTP header name' };
export const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', '*'] as const;
/** Most routes one file may declare. */
export const MAX_ROUTES = 1000;

interface Defaults {
  tenant: TenantSource | undefined;
  /** `defaults.tenant` was written (valid or not: its own errors are reported once, there). */
  tenantGiven: boolean;
  limits: BodyLimits;
  readers: Readers | undefined;
  backend: FieldBackend;
}

function readTenant(errors: SchemaErrors, node: PositionedNode, path: string): TenantSource | undefined {
  const o = readObject(errors, node, path, ['from', 'header', 'trustedPeers', 'param']);
  const fromNode = o?.get('from', true);
  const from = o && fromNode && readEnum(errors, fromNode, o.pathOf('from'), ['cert', 'header', 'pathParam'] as const);
  if (!o || !from) return undefined;
  const allowed: readonly string[] = { cert: [], header: ['header', 'trustedPeers'], pathParam: ['param'] }[from];
  for (const key of ['header', 'trustedPeers', 'param']) {
    if (o.has(key) && !allowed.includes(key)) errors.add(node.pos, o.pathOf(key), `not used with from "${from}"`);
  }
  if (from === 'cert') return { from };
  if (from === 'pathParam') {
    const p = o.get('param', true);
    const param = p && readString(errors, p, o.pathOf('param'), { max: 64 });
    return param === undefined ? undefined : { from, param };
  }
  const h = o.get('header', true);
  const header = h && readString(errors, h, o.pathOf('header'), HEADER);
  const t = o.get('trustedPeers', true);
  const peers = t && readStringArray(errors, t, o.pathOf('trustedPeers'), 1000, { max: 64 });
  if (!t || !peers) return undefined;
  if (peers.length === 0) {
    errors.add(
      t.pos,
      o.pathOf('trustedPeers'),
      'list at least one peer (a header from anyone would let callers pick their tenant)',
    );
    return undefined;
  }
  let trustedPeers: TrustedPeers;
  try {
    trustedPeers = new TrustedPeers(peers);
  } catch (err) {
    errors.add(t.pos, o.pathOf('trustedPeers'), (err as Error).message);
    return undefined;
  }
  return header === undefined ? undefined : { from, header, trustedPeers };
}

function readLimits(errors: SchemaErrors, node: PositionedNode, path: string, base: BodyLimits): BodyLimits {
  const o = readObject(errors, node, path, Object.keys(LIMIT_BOUNDS));
  const out = { ...base };
  if (!o) return out;
  for (const key of Object.keys(LIMIT_BOUNDS) as (keyof BodyLimits)[]) {
    const v = o.get(key, false);
    const [min, max] = LIMIT_BOUNDS[key];
    const n = v && readInteger(errors, v, o.pathOf(key), min, max);
    if (n !== undefined) out[key] = n;
  }
  return out;
}

function readUpstreams(errors: SchemaErrors, node: PositionedNode, path: string): Map<string, URL> {
  const out = new Map<string, URL>();
  if (node.kind !== 'object') {
    errors.add(node.pos, path, 'expected an object of name → URL');
    return out;
  }
  for (const e of node.entries) {
    const p = childPath(path, e.key);
    if (!ID.pattern.test(e.key) || e.key.length > ID.max) errors.add(e.keyPos, p, `upstream names are ${ID.what}`);
    const url = readUrl(errors, e.value, p);
    if (url) out.set(e.key, url);
  }
  return out;
}

function readUrl(errors: SchemaErrors, node: PositionedNode, path: string): URL | undefined {
  const text = readString(errors, node, path, { max: 2048 });
  if (text === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    errors.add(node.pos, path, 'not an absolute URL');
    return undefined;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') errors.add(node.pos, path, 'must be http: or https:');
  else if (url.username || url.password) errors.add(node.pos, path, 'must not hold credentials');
  else if (url.search || url.hash) errors.add(node.pos, path, 'must not have a query or fragment');
  else return url;
  return undefined;
}

function readUpstreamRef(
  errors: SchemaErrors,
  node: PositionedNode,
  path: string,
  upstreams: Map<string, URL>,
): Upstream | undefined {
  if (node.kind === 'string' && upstreams.has(node.value)) {
    return { name: node.value, url: upstreams.get(node.value) as URL };
  }
  if (node.kind === 'string' && !node.value.includes('://')) {
    errors.add(node.pos, path, `no upstream named ${JSON.stringify(node.value)} in "upstreams"`);
    return undefined;
  }
  const url = readUrl(errors, node, path);
  return url && { name: url.href, url };
}

function readRoute(
  errors: SchemaErrors,
  node: PositionedNode,
  path: string,
  ctx: { id: string; keyId: string; file: string; upstreams: Map<string, URL>; defaults: Defaults },
): CompiledRoute | undefined {
  const keys = [
    'method',
    'path',
    'upstream',
    'tenant',
    'limits',
    'readers',
    'backend',
    'request',
    'response',
    'description',
  ];
  const o = readObject(errors, node, path, keys);
  if (!o) return undefined;
  const m = o.get('method', true);
  const method = m && readEnum(errors, m, o.pathOf('method'), METHODS);
  const p = o.get('path', true);
  const pattern = p && readPattern(errors, p, o.pathOf('path'));
  const u = o.get('upstream', true);
  const upstream = u && readUpstreamRef(errors, u, o.pathOf('upstream'), ctx.upstreams);
  const t = o.get('tenant', false);
  const tenant = t ? readTenant(errors, t, o.pathOf('tenant')) : ctx.defaults.tenant;
  if (!t && !ctx.defaults.tenantGiven) errors.add(node.pos, path, 'no "tenant" here or in "defaults"');
  if (tenant?.from === 'pathParam' && pattern && !pattern.params.includes(tenant.param)) {
    errors.add((t ?? node).pos, o.pathOf('tenant'), `the route path has no :${tenant.param}`);
  }
  const l = o.get('limits', false);
  const limits = l ? readLimits(errors, l, o.pathOf('limits'), ctx.defaults.limits) : ctx.defaults.limits;
  const r = o.get('readers', false);
  const readers = r ? readReaders(errors, r, o.pathOf('readers')) : ctx.defaults.readers;
  const b = o.get('backend', false);
  const backend = b ? readEnum(errors, b, o.pathOf('backend'), FIELD_BACKENDS) : ctx.defaults.backend;
  const params = pattern?.params ?? [];
  const reqNode = o.get('request', false);
  const request = reqNode ? readRules(errors, reqNode, o.pathOf('request'), params, undefined) : [];
  const resNode = o.get('response', false);
  const response = resNode
    ? (readRules(errors, resNode, o.pathOf('response'), params, { readers }) as ResponseFieldRule[])
    : [];
  const description = o.get('description', false);
  if (description) readString(errors, description, o.pathOf('description'), { max: 1000 });
  if (!method || !pattern || !upstream || !tenant || !backend) return undefined;
  const source = `${ctx.file}:${node.pos.line}:${node.pos.column}`;
  return {
    policyId: ctx.id,
    keyId: ctx.keyId,
    source,
    method,
    pattern,
    upstream,
    tenant,
    limits,
    request,
    response,
    backend,
  };
}

function readPattern(errors: SchemaErrors, node: PositionedNode, path: string): RoutePattern | undefined {
  const text = readString(errors, node, path, { max: 1024 });
  if (text === undefined) return undefined;
  try {
    return parseRoutePattern(text);
  } catch (err) {
    errors.add(node.pos, path, `bad path pattern: ${(err as Error).message}`);
    return undefined;
  }
}

function readDefaults(errors: SchemaErrors, o: ObjectReader): Defaults {
  const node = o.get('defaults', false);
  const d = node && readObject(errors, node, o.pathOf('defaults'), ['tenant', 'limits', 'readers', 'backend']);
  const t = d?.get('tenant', false);
  const l = d?.get('limits', false);
  const r = d?.get('readers', false);
  const b = d?.get('backend', false);
  return {
    // A bad defaults.backend is reported once, there; routes then fall back to native (the file fails anyway).
    backend: (b && d ? readEnum(errors, b, d.pathOf('backend'), FIELD_BACKENDS) : undefined) ?? 'native',
    tenant: t && d ? readTenant(errors, t, d.pathOf('tenant')) : undefined,
    tenantGiven: t !== undefined,
    limits: l && d ? readLimits(errors, l, d.pathOf('limits'), DEFAULT_LIMITS) : { ...DEFAULT_LIMITS },
    readers: r && d ? readReaders(errors, r, d.pathOf('readers')) : undefined,
  };
}

/** Rules naming one logical field must bind it the same way, or its ciphertexts could never be read back. */
function checkFieldBindings(errors: SchemaErrors, routes: readonly CompiledRoute[], at: PositionedNode): void {
  const seen = new Map<string, { binding: string; where: string }>();
  for (const route of routes) {
    for (const rule of [...route.request, ...route.response] as FieldRule[]) {
      const binding = fieldBinding(rule);
      const prior = seen.get(rule.field);
      if (!prior) seen.set(rule.field, { binding, where: route.source });
      else if (prior.binding !== binding) {
        errors.add(
          at.pos,
          'routes',
          `field "${rule.field}" is bound as ${binding} at ${route.source} but as ${prior.binding} at ${prior.where}`,
        );
      }
    }
  }
}

/**
 * Compiles the text of one policy file. `file` names it in errors.
 * Throws KcmError `invalid_policy` listing every error as `file:line:column: path: reason`.
 */
export function compilePolicy(file: string, text: string): CompiledPolicy {
  const errors = new SchemaErrors(file);
  let root: PositionedNode;
  try {
    root = readPositionedJson(text);
  } catch (err) {
    if (!(err instanceof JsonSyntaxError)) throw err;
    errors.add(err.pos, '', `JSON syntax: ${err.reason}`);
    throw new KcmError('invalid_policy', errors.text());
  }
  const keys = ['id', 'description', 'key', 'upstreams', 'defaults', 'routes'];
  const o = readObject(errors, root, '', keys);
  if (!o) throw new KcmError('invalid_policy', errors.text());
  const idNode = o.get('id', true);
  const id = idNode && readString(errors, idNode, 'id', ID);
  const keyNode = o.get('key', true);
  const keyId = keyNode && readString(errors, keyNode, 'key', ID);
  const description = o.get('description', false);
  if (description) readString(errors, description, 'description', { max: 1000 });
  const up = o.get('upstreams', false);
  const upstreams = up ? readUpstreams(errors, up, 'upstreams') : new Map<string, URL>();
  const defaults = readDefaults(errors, o);
  const routesNode = o.get('routes', true);
  const items = (routesNode && readArray(errors, routesNode, 'routes', MAX_ROUTES)) ?? [];
  if (routesNode && items.length === 0) errors.add(routesNode.pos, 'routes', 'declare at least one route');
  const ctx = { id: id ?? '', keyId: keyId ?? '', file, upstreams, defaults };
  const routes = items
    .map((item, i) => readRoute(errors, item, childPath('routes', i), ctx))
    .filter((r): r is CompiledRoute => r !== undefined);
  checkFieldBindings(errors, routes, routesNode ?? root);
  if (errors.count > 0 || id === undefined || keyId === undefined) {
    throw new KcmError('invalid_policy', errors.text());
  }
  return { id, keyId, file, routes };
}
