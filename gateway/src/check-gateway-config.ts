/**
 * `kcm gateway --config FILE --check`: what the gateway would refuse at
 * start-up, without starting it (no port, no Core link, no token, no audit
 * log, no upstream connection), as `nginx -t` does. It runs the same checks
 * (gateway-preflight.ts) and, when they pass, describes what would run:
 * fronts, keys, every policy route (what it encrypts or decrypts, for whom,
 * where the tenant comes from), the HSM and the audit log, and says what
 * only a start can check. For deploy pipelines: exit status 0 or 1.
 */
import { existsSync } from 'node:fs';
import { KcmError } from '../../common/src/errors.ts';
import { defaultCrypto } from '../../native/index.ts';
import { loadNative } from '../../native/ts/load.ts';
import type { GatewayFileConfig } from './gateway-config.ts';
import { preflight } from './gateway-preflight.ts';
import { notServed } from './native-front/front-table.ts';
import type { CompiledRoute, Readers } from './policy/policy-types.ts';

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

function frontsOf(f: GatewayFileConfig['fronts']): string {
  const out: string[] = [];
  if (f.uws) out.push(`uws ${f.uws.host}:${f.uws.port}${f.uws.tls ? ' (HTTPS)' : ''}`);
  if (f.h2Tls) out.push(`h2Tls ${f.h2Tls.host}:${f.h2Tls.port} (mTLS${f.h2Tls.crlFile ? ', CRL' : ''})`);
  if (f.h2Plain) out.push(`h2Plain ${f.h2Plain.host}:${f.h2Plain.port}`);
  if (f.native) out.push(`native ${f.native.host}:${f.native.port} (its routes below; the rest via the pipeline)`);
  return out.join('; ');
}

function tenantOf(r: CompiledRoute): string {
  const t = r.tenant;
  switch (t.from) {
    case 'cert':
      return 'tenant from the client certificate';
    case 'header':
      return `tenant from header ${t.header} (trusted peers: ${t.trustedPeers.entries.join(', ') || 'none'})`;
    case 'pathParam':
      return `tenant from :${t.param}`;
  }
}

function readersOf(readers: Readers): string {
  const who = [...[...readers.identities].map((i) => `identity ${i}`), ...[...readers.roles].map((r) => `role ${r}`)];
  const others = readers.others === 'mask' ? 'the mask' : 'the ciphertext';
  return `plaintext for ${who.length ? who.join(', ') : 'nobody'}, others get ${others}`;
}

/**
 * Which AES-GCM backend a start would use (native/ts/load.ts): the native
 * module, or node:crypto when it does not load (a start warns, and keys are
 * then not in locked memory). Throws `native_unavailable` when
 * KCM_CRYPTO_BACKEND asks for one that cannot be had, as a start would fail.
 */
function cryptoLine(): string {
  let backend: string;
  try {
    backend = defaultCrypto().backend.name;
  } catch (err) {
    throw new KcmError('native_unavailable', err instanceof Error ? err.message : String(err));
  }
  const native = loadNative();
  return backend === 'native'
    ? `crypto: native module ${native.path}`
    : `crypto: node:crypto${native.backend ? ' (KCM_CRYPTO_BACKEND=node)' : `, the native module not loading (${native.error}): keys would NOT be in locked memory`}`;
}

function routeLine(r: CompiledRoute, urls: ReadonlyMap<string, URL>, native?: { audit: boolean }): string {
  const does: string[] = [];
  if (r.request.length > 0) does.push(`encrypts ${plural(r.request.length, 'field')} of the request`);
  if (r.response.length > 0) {
    // Readers are per rule; a route usually gives them once in its defaults.
    const kinds = [...new Set(r.response.map((x) => readersOf(x.readers)))];
    does.push(`decrypts ${plural(r.response.length, 'field')} of the response (${kinds.join('; ')})`);
  }
  const what = does.length ? does.join(', ') : 'passes through (no field rules)';
  const key = does.length ? ` under key ${r.keyId}${r.backend === 'pkcs11' ? ' in the HSM' : ''}` : '';
  // The config's upstreams.urls replaces a policy's URL by name, as at start.
  const url = urls.get(r.upstream.name) ?? r.upstream.url;
  const named = r.upstream.name === r.upstream.url.href ? '' : `${r.upstream.name} `;
  // Both key layers a start makes (dev and Core) report key events.
  const why = native && notServed(r, url, { audit: native.audit, keyEvents: true });
  const front = native ? (why ? `; native front: the pipeline serves it (${why})` : '; native front: serves it') : '';
  return `  ${r.method} ${r.pattern.text} → ${named}${url.href}: ${what}${key}; ${tenantOf(r)}${front} [${r.source}]`;
}

/**
 * Checks `c` as start-up would before opening anything; returns the lines
 * describing what would run, with what loading the CRL and identity files
 * said (a CRL out of date refuses every client under its CA) and the
 * crypto backend a start would use. Throws what start-up throws
 * (preflight; `native_unavailable` for a KCM_CRYPTO_BACKEND that cannot be
 * had), and `invalid_config` for an `hsm.module` that does not exist.
 */
export function checkGatewayConfig(c: GatewayFileConfig): string[] {
  const notes: string[] = [];
  const p = preflight(
    c,
    (m) => notes.push(m),
    (m) => notes.push(m),
  );
  p.identities?.close();
  // The backend every key of the gateway would use (a start makes its keys with it first).
  const crypto = cryptoLine();
  // The config load checked that hsm.pinEnv is set; the module is loaded only by a start.
  if (c.hsm && !existsSync(c.hsm.module)) {
    throw new KcmError('invalid_config', `hsm.module: ${c.hsm.module} does not exist`);
  }
  const lines = [`fronts: ${frontsOf(c.fronts)}`, ...notes.map((m) => `  ${m}`), crypto];
  lines.push(
    c.dev
      ? 'keys: development keys made in the process (dev: true, KCM_DEV=1)'
      : `keys: leased from the Core at ${c.core?.url} (mTLS client certificate checked)`,
  );
  if (p.policies) {
    const files = p.policies.policies.length;
    lines.push(
      `policies: ${c.policies?.dir}: ${plural(files, 'file')}, ${plural(p.policies.routes.length, 'route')}, fingerprint ${p.policies.fingerprint.slice(0, 16)}`,
    );
    const native = c.fronts.native ? { audit: c.audit !== undefined } : undefined;
    for (const r of p.policies.routes) lines.push(routeLine(r, c.upstreams.urls, native));
  } else lines.push('policies: none (the direct API only)');
  if (c.identities) lines.push(`identities: ${c.identities.file} (unlisted certificates: ${c.identities.unlisted})`);
  if (c.hsm) {
    const how = c.hsm.inline ? 'inline' : `${plural(c.hsm.sessions, 'worker')}`;
    lines.push(`hsm: ${c.hsm.module} (${how}; token not opened)`);
  }
  lines.push(
    c.audit
      ? `audit: ${c.audit.file} (fsync ${c.audit.fsync ? 'on' : 'off'}; not opened)`
      : 'audit: none: key accesses through this gateway would not be recorded',
  );
  lines.push(
    'not checked (a start does): the ports are free, the Core answers, the token logs in, the audit log opens, the upstreams answer',
  );
  return lines;
}
