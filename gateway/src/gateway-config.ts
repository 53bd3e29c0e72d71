/**
 * The `kcm gateway --config FILE` configuration: a JSON file, validated once
 * with errors that name the field (KcmError `invalid_config`,
 * `fronts.uws.port: must be an integer from 0 to 65535`). Relative paths are
 * resolved against the file's directory. docs/gateway.md "Configuration"
 * shows a complete file.
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { dirname, resolve } from 'node:path';
import { KcmError } from '../../common/src/errors.ts';
import { isKeyId } from '../../common/src/format/ids.ts';
import { strictObject } from '../../common/src/format/strict-object.ts';
import type { Unlisted } from './gateway-identities.ts';
import type { H2PlainOptions, H2TlsOptions } from './http/h2-adapter.ts';
import type { UwsAdapterOptions } from './http/uws-adapter.ts';
import type { NativeFrontOptions } from './native-front/native-front.ts';
import type { CallerHeaders } from './proxy/proxy-routes.ts';
import type { UpstreamOptions } from './upstream/upstream-pools.ts';

export interface CoreLink {
  /** `https://host:port` of the Core edge API. */
  url: string;
  certFile: string;
  keyFile: string;
  caFile: string;
  /** Lease TTL to ask for (the Core bounds it; ADR-602: 5–60 min). */
  leaseTtlSeconds?: number;
  /** Name to verify in the Core's certificate when it differs from the URL host. */
  servername?: string;
}

/**
 * The PKCS#11 token of the `pkcs11` field backend (gateway/src/hsm/). The PIN
 * is never in the file: `pinEnv` names the environment variable holding it,
 * read when the gateway starts.
 */
export interface HsmFileConfig {
  /** Path of the PKCS#11 module (e.g. /usr/lib/softhsm/libsofthsm2.so). */
  module: string;
  /** The token, by label (exactly one of tokenLabel and slot). */
  tokenLabel?: string;
  /** The token, by index in the list of slots with a token present. */
  slot?: number;
  /** Name of the environment variable holding the user PIN. */
  pinEnv: string;
  /** Token worker threads, one logged-in R/W operation session each (default 2). */
  sessions: number;
  /**
   * Token calls on the event loop instead of worker threads (default false):
   * lower latency for an in-process token such as SoftHSM2, whose calls take
   * microseconds; a slow (network) token would hold every request.
   */
  inline: boolean;
  /** How long one request's token work may take before it fails with 503 and its worker is replaced (default 10,000). */
  timeoutMs: number;
  /** Key names whose direct API requests (/v1/encrypt/:key, decrypt, rewrap, datakey) run in the token. */
  keys: string[];
}

/**
 * The certificate identity file (gateway-identities.ts, policies/gateway-identities.example.json):
 * tenants and reader roles per client certificate. Absent: a certificate acts
 * for the tenant its CN names and holds no roles.
 */
export interface IdentitiesFileConfig {
  /** Absolute path of the identity file (loaded and validated at start). */
  file: string;
  /** Certificates the file does not name: `refuse` (no tenant, no role; default) or `cn` (their CN as tenant). */
  unlisted: Unlisted;
  /** Reload the file when it changes (default true). */
  watch: boolean;
}

/**
 * The gateway's tamper-evident audit log (common/src/audit/audit-log.ts,
 * docs/audit.md): one record per request of a route that uses keys, durable
 * before the answer leaves (gateway/src/audit/request-audit.ts).
 */
export interface AuditFileConfig {
  /** The log file (created 0600 with its directory). */
  file: string;
  /** The Ed25519 checkpoint key (default `<file>.key`, created when missing). */
  keyFile?: string;
  /** fdatasync each group commit (default true; false survives a process crash, not a power loss). */
  fsync: boolean;
  checkpointEvery?: number;
  checkpointIntervalMs?: number;
  /** Rotate to a new segment `<file>.NNNNNN` at this size (default 128 MiB; one record per request adds up). */
  rotateBytes: number;
  /** Rotated segments kept, the oldest removed beyond (default: all; archive or ship them first). */
  keepSegments?: number;
  /** OpenTelemetry collector (OTLP/HTTP logs) that gets a copy of every durable line: the log's off-host anchor. */
  otlpUrl?: string;
}

/** Default size at which the gateway's audit log rotates. */
export const AUDIT_ROTATE_BYTES = 128 * 1024 * 1024;

export interface GatewayFileConfig {
  /** In-process development keys (LocalGatewayKeys) instead of a Core; only with KCM_DEV=1. */
  dev: boolean;
  fronts: { uws?: UwsAdapterOptions; h2Tls?: H2TlsOptions; h2Plain?: H2PlainOptions; native?: NativeFrontOptions };
  /** Addresses / CIDR blocks (besides loopback) whose requests may name their tenant without a certificate. */
  trust: string[];
  /** Route policies; absent: the direct API only. */
  policies?: { dir: string; examples: boolean; watch: boolean };
  core?: CoreLink;
  upstreams: { urls: Map<string, URL>; options: Partial<UpstreamOptions> };
  callerHeaders?: CallerHeaders;
  /** Tenants and roles of client certificates; absent: CN = tenant, no roles. */
  identities?: IdentitiesFileConfig;
  limits: { maxBodyBytes?: number; maxBatchItems?: number; drainMs: number };
  /** The HSM offload backend; absent: every route and key uses the native backend. */
  hsm?: HsmFileConfig;
  /** The audit log; absent: no audit records (the gateway says so at start). */
  audit?: AuditFileConfig;
}

type Json = Record<string, unknown>;

function fail(field: string, why: string): never {
  throw new KcmError('invalid_config', `${field}: ${why}`);
}

function obj(v: unknown, field: string, keys: readonly string[]): Json {
  return strictObject(v, field, keys, fail);
}

function str(v: unknown, field: string): string {
  if (typeof v !== 'string' || v.length === 0) fail(field, 'must be a non-empty string');
  return v;
}

function int(v: unknown, field: string, lo: number, hi: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) {
    fail(field, `must be an integer from ${lo} to ${hi}`);
  }
  return v;
}

function optInt(v: unknown, field: string, lo: number, hi: number): number | undefined {
  return v === undefined ? undefined : int(v, field, lo, hi);
}

function bool(v: unknown, field: string): boolean {
  if (v === undefined) return false;
  if (typeof v !== 'boolean') fail(field, 'must be true or false');
  return v;
}

function listen(v: Json, field: string): { host: string; port: number } {
  return {
    host: v.host === undefined ? '127.0.0.1' : str(v.host, `${field}.host`),
    port: int(v.port, `${field}.port`, 0, 65535),
  };
}

function fronts(v: unknown, path: (p: string) => string): GatewayFileConfig['fronts'] {
  const f = obj(v, 'fronts', ['uws', 'h2Tls', 'h2Plain', 'native']);
  const out: GatewayFileConfig['fronts'] = {};
  if (f.uws !== undefined) {
    const u = obj(f.uws, 'fronts.uws', ['host', 'port', 'tls']);
    out.uws = listen(u, 'fronts.uws');
    if (u.tls !== undefined) {
      const t = obj(u.tls, 'fronts.uws.tls', ['certFile', 'keyFile']);
      out.uws.tls = {
        certFile: path(str(t.certFile, 'fronts.uws.tls.certFile')),
        keyFile: path(str(t.keyFile, 'fronts.uws.tls.keyFile')),
      };
    }
  }
  if (f.h2Tls !== undefined) {
    const h = obj(f.h2Tls, 'fronts.h2Tls', ['host', 'port', 'certFile', 'keyFile', 'caFile', 'crlFile']);
    out.h2Tls = {
      ...listen(h, 'fronts.h2Tls'),
      certFile: path(str(h.certFile, 'fronts.h2Tls.certFile')),
      keyFile: path(str(h.keyFile, 'fronts.h2Tls.keyFile')),
      caFile: path(str(h.caFile, 'fronts.h2Tls.caFile')),
      // Read and checked (PEM CRLs, one per CA) when the front starts: h2-adapter.ts.
      ...(h.crlFile !== undefined ? { crlFile: path(str(h.crlFile, 'fronts.h2Tls.crlFile')) } : {}),
    };
  }
  if (f.h2Plain !== undefined)
    out.h2Plain = listen(obj(f.h2Plain, 'fronts.h2Plain', ['host', 'port']), 'fronts.h2Plain');
  if (f.native !== undefined) {
    out.native = listen(obj(f.native, 'fronts.native', ['host', 'port']), 'fronts.native');
    if (isIP(out.native.host) === 0) fail('fronts.native.host', 'must be an IP address');
  }
  if (!out.uws && !out.h2Tls && !out.h2Plain && !out.native) {
    fail('fronts', 'name at least one of uws, h2Tls, h2Plain, native');
  }
  return out;
}

function core(v: unknown, path: (p: string) => string): CoreLink {
  const c = obj(v, 'core', ['url', 'certFile', 'keyFile', 'caFile', 'leaseTtlSeconds', 'servername']);
  const url = str(c.url, 'core.url');
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    fail('core.url', 'must be an https:// URL');
  }
  if (u.protocol !== 'https:') fail('core.url', 'must be an https:// URL (the edge API is mTLS only)');
  const ttl = optInt(c.leaseTtlSeconds, 'core.leaseTtlSeconds', 1, 86_400);
  return {
    url: u.origin,
    certFile: path(str(c.certFile, 'core.certFile')),
    keyFile: path(str(c.keyFile, 'core.keyFile')),
    caFile: path(str(c.caFile, 'core.caFile')),
    ...(ttl !== undefined ? { leaseTtlSeconds: ttl } : {}),
    ...(c.servername !== undefined ? { servername: str(c.servername, 'core.servername') } : {}),
  };
}

const UPSTREAM_NUMBERS = [
  'connectTimeoutMs',
  'headersTimeoutMs',
  'bodyTimeoutMs',
  'keepAliveTimeoutMs',
  'connections',
  'maxQueue',
  'queueTimeoutMs',
  'maxResponseBytes',
] as const;

function upstreams(v: unknown, path: (p: string) => string): GatewayFileConfig['upstreams'] {
  const out: GatewayFileConfig['upstreams'] = { urls: new Map(), options: {} };
  if (v === undefined) return out;
  const u = obj(v, 'upstreams', ['urls', 'caFile', ...UPSTREAM_NUMBERS]);
  if (u.urls !== undefined) {
    const urls = obj(u.urls, 'upstreams.urls', Object.keys(u.urls as object));
    for (const [name, raw] of Object.entries(urls)) {
      const field = `upstreams.urls.${name}`;
      let url: URL;
      try {
        url = new URL(str(raw, field));
      } catch {
        fail(field, 'must be an absolute http:// or https:// URL');
      }
      if (url.protocol !== 'http:' && url.protocol !== 'https:') fail(field, 'must be http:// or https://');
      if (url.username || url.password || url.search || url.hash) fail(field, 'no credentials, query or fragment');
      out.urls.set(name, url);
    }
  }
  for (const k of UPSTREAM_NUMBERS) {
    // maxQueue 0: no request waits for a busy upstream (503 upstream_busy at once).
    const n = optInt(u[k], `upstreams.${k}`, k === 'maxQueue' ? 0 : 1, k === 'maxResponseBytes' ? 1 << 30 : 3_600_000);
    if (n !== undefined) out.options[k] = n;
  }
  if (u.caFile !== undefined) out.options.caFile = path(str(u.caFile, 'upstreams.caFile'));
  return out;
}

function headerName(v: unknown, field: string): string {
  const s = str(v, field);
  if (!/^[a-z0-9-]{1,64}$/.test(s)) fail(field, 'must be a lower-case header name');
  return s;
}

function hsm(v: unknown, path: (p: string) => string, env: NodeJS.ProcessEnv): HsmFileConfig {
  const h = obj(v, 'hsm', ['module', 'tokenLabel', 'slot', 'pinEnv', 'sessions', 'inline', 'timeoutMs', 'keys']);
  if ((h.tokenLabel === undefined) === (h.slot === undefined)) fail('hsm', 'give exactly one of tokenLabel and slot');
  const pinEnv = str(h.pinEnv, 'hsm.pinEnv');
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,127}$/.test(pinEnv)) fail('hsm.pinEnv', 'must be an environment variable name');
  // Only whether it is set: the value is a secret and appears in no message.
  if (!env[pinEnv]) fail('hsm.pinEnv', `environment variable ${pinEnv} is not set or empty`);
  const keys: string[] = [];
  if (h.keys !== undefined) {
    if (!Array.isArray(h.keys)) fail('hsm.keys', 'must be an array of key names');
    for (const [i, k] of h.keys.entries()) {
      if (typeof k !== 'string' || !isKeyId(k)) fail(`hsm.keys[${i}]`, 'must be a key id');
      if (keys.includes(k)) fail(`hsm.keys[${i}]`, `repeats ${k}`);
      keys.push(k);
    }
  }
  return {
    module: path(str(h.module, 'hsm.module')),
    ...(h.tokenLabel !== undefined ? { tokenLabel: str(h.tokenLabel, 'hsm.tokenLabel') } : {}),
    ...(h.slot !== undefined ? { slot: int(h.slot, 'hsm.slot', 0, 1 << 20) } : {}),
    pinEnv,
    sessions: optInt(h.sessions, 'hsm.sessions', 1, 64) ?? 2,
    inline: h.inline === undefined ? false : bool(h.inline, 'hsm.inline'),
    timeoutMs: optInt(h.timeoutMs, 'hsm.timeoutMs', 100, 600_000) ?? 10_000,
    keys,
  };
}

function audit(v: unknown, path: (p: string) => string): AuditFileConfig {
  const a =
    typeof v === 'string'
      ? { file: v }
      : obj(v, 'audit', [
          'file',
          'keyFile',
          'fsync',
          'checkpointEvery',
          'checkpointIntervalMs',
          'rotateBytes',
          'keepSegments',
          'otlpUrl',
        ]);
  const every = optInt(a.checkpointEvery, 'audit.checkpointEvery', 1, 1_000_000);
  const interval = optInt(a.checkpointIntervalMs, 'audit.checkpointIntervalMs', 0, 86_400_000);
  const keep = optInt(a.keepSegments, 'audit.keepSegments', 1, 1_000_000);
  return {
    file: path(str(a.file, 'audit.file')),
    ...(a.keyFile !== undefined ? { keyFile: path(str(a.keyFile, 'audit.keyFile')) } : {}),
    fsync: a.fsync === undefined ? true : bool(a.fsync, 'audit.fsync'),
    ...(every !== undefined ? { checkpointEvery: every } : {}),
    ...(interval !== undefined ? { checkpointIntervalMs: interval } : {}),
    rotateBytes: optInt(a.rotateBytes, 'audit.rotateBytes', 4096, 2 ** 40) ?? AUDIT_ROTATE_BYTES,
    ...(keep !== undefined ? { keepSegments: keep } : {}),
    ...(a.otlpUrl !== undefined ? { otlpUrl: httpUrl(a.otlpUrl, 'audit.otlpUrl') } : {}),
  };
}

/** An http(s) URL without credentials (they would end up in logs), query or fragment (a path is appended); normalised. */
function httpUrl(v: unknown, field: string): string {
  const text = str(v, field);
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    fail(field, 'must be an http(s) URL');
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') fail(field, 'must be an http(s) URL');
  if (u.username || u.password) fail(field, 'no credentials in the URL');
  if (u.search || u.hash) fail(field, 'no query or fragment in the URL');
  return u.href;
}

function identities(v: unknown, path: (p: string) => string): IdentitiesFileConfig {
  const i = typeof v === 'string' ? { file: v } : obj(v, 'identities', ['file', 'unlisted', 'watch']);
  let unlisted: Unlisted = 'refuse';
  if (i.unlisted !== undefined) {
    if (i.unlisted !== 'refuse' && i.unlisted !== 'cn') fail('identities.unlisted', 'must be "refuse" or "cn"');
    unlisted = i.unlisted;
  }
  return {
    file: path(str(i.file, 'identities.file')),
    unlisted,
    watch: i.watch === undefined ? true : bool(i.watch, 'identities.watch'),
  };
}

/**
 * Validates a parsed configuration object. `baseDir` resolves relative file
 * paths; `env.KCM_DEV === '1'` is required for `dev: true`. Throws KcmError
 * `invalid_config` naming the first bad field.
 */
export function gatewayConfig(doc: unknown, baseDir: string, env: NodeJS.ProcessEnv = process.env): GatewayFileConfig {
  const c = obj(doc, 'config', [
    'dev',
    'fronts',
    'trust',
    'policies',
    'core',
    'upstreams',
    'callerHeaders',
    'identities',
    'limits',
    'hsm',
    'audit',
  ]);
  const path = (p: string) => resolve(baseDir, p);
  const dev = bool(c.dev, 'dev');
  if (dev && env.KCM_DEV !== '1')
    fail('dev', 'in-process development keys are refused outside development mode (KCM_DEV=1)');
  if (dev && c.core !== undefined) fail('core', 'give either core or dev: true, not both');
  if (!dev && c.core === undefined)
    fail('core', 'required (the Core edge API the gateway leases keys from), unless dev: true');
  const trust: string[] = [];
  if (c.trust !== undefined) {
    if (!Array.isArray(c.trust)) fail('trust', 'must be an array of IP addresses or CIDR blocks');
    for (const [i, t] of c.trust.entries()) trust.push(str(t, `trust[${i}]`));
  }
  let policies: GatewayFileConfig['policies'];
  if (c.policies !== undefined) {
    const p =
      typeof c.policies === 'string' ? { dir: c.policies } : obj(c.policies, 'policies', ['dir', 'examples', 'watch']);
    policies = {
      dir: path(str(p.dir, 'policies.dir')),
      examples: bool(p.examples, 'policies.examples'),
      watch: p.watch === undefined ? true : bool(p.watch, 'policies.watch'),
    };
  }
  let callerHeaders: CallerHeaders | undefined;
  if (c.callerHeaders !== undefined) {
    const h = obj(c.callerHeaders, 'callerHeaders', ['identity', 'roles']);
    callerHeaders = {
      ...(h.identity !== undefined ? { identity: headerName(h.identity, 'callerHeaders.identity') } : {}),
      ...(h.roles !== undefined ? { roles: headerName(h.roles, 'callerHeaders.roles') } : {}),
    };
  }
  const l = c.limits === undefined ? {} : obj(c.limits, 'limits', ['maxBodyBytes', 'maxBatchItems', 'drainMs']);
  const maxBodyBytes = optInt(l.maxBodyBytes, 'limits.maxBodyBytes', 1, 64 << 20);
  const maxBatchItems = optInt(l.maxBatchItems, 'limits.maxBatchItems', 1, 100_000);
  return {
    dev,
    fronts: fronts(c.fronts, path),
    trust,
    ...(policies ? { policies } : {}),
    ...(c.core !== undefined ? { core: core(c.core, path) } : {}),
    upstreams: upstreams(c.upstreams, path),
    ...(callerHeaders ? { callerHeaders } : {}),
    ...(c.identities !== undefined ? { identities: identities(c.identities, path) } : {}),
    limits: {
      ...(maxBodyBytes !== undefined ? { maxBodyBytes } : {}),
      ...(maxBatchItems !== undefined ? { maxBatchItems } : {}),
      drainMs: optInt(l.drainMs, 'limits.drainMs', 0, 600_000) ?? 10_000,
    },
    ...(c.hsm !== undefined ? { hsm: hsm(c.hsm, path, env) } : {}),
    ...(c.audit !== undefined ? { audit: audit(c.audit, path) } : {}),
  };
}

/** Reads and validates `file`. Throws `invalid_config` (unreadable, not JSON, or a bad field). */
export function loadGatewayConfig(file: string, env: NodeJS.ProcessEnv = process.env): GatewayFileConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new KcmError('invalid_config', `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new KcmError('invalid_config', `${file} is not valid JSON`);
  }
  return gatewayConfig(doc, dirname(resolve(file)), env);
}
