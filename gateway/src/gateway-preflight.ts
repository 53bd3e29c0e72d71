/**
 * What `kcm gateway` checks and loads from its configuration before it opens
 * anything (no port, Core link, token or audit log): the trusted peers, the
 * route policies (and that the upstream names of the config are used, and a
 * `pkcs11` route has an `hsm` section), the TLS files of the fronts and of
 * the Core link, the identity file. startConfiguredGateway runs it first;
 * `kcm gateway --check` runs only it (check-gateway-config.ts), so both
 * refuse a configuration with the same errors.
 */
import { KcmError } from '../../common/src/errors.ts';
import { loadTlsFiles } from '../../common/src/tls/cert-files.ts';
import type { GatewayFileConfig } from './gateway-config.ts';
import { CertificateIdentities } from './gateway-identities.ts';
import { checkH2TlsFiles } from './http/h2-adapter.ts';
import { requireNativeUws } from './http/uws-adapter.ts';
import { loopbackOnly, type PeerTrust } from './pipeline/caller.ts';
import { loadPolicies, type PolicySet } from './policy/policy-loader.ts';
import { TrustedPeers } from './policy/tenant-source.ts';
import { unusedUpstreamNames } from './proxy/proxy-routes.ts';

export interface Preflight {
  trust: PeerTrust;
  policies?: PolicySet;
  /** Loaded, not watched: the caller watches it once serving, or closes it. */
  identities?: CertificateIdentities;
  /** The Core link's client certificate, key and CA (absent with `dev`). */
  coreTls?: { cert: Buffer; key: Buffer; ca: Buffer; servername?: string };
}

function trustOf(entries: readonly string[]): PeerTrust {
  if (entries.length === 0) return loopbackOnly;
  let peers: TrustedPeers;
  try {
    peers = new TrustedPeers(entries);
  } catch (err) {
    throw new KcmError('invalid_config', `trust: ${(err as Error).message}`);
  }
  return Object.assign((a: string) => loopbackOnly(a) || peers.has(a), { list: { entries, loopback: true } });
}

/**
 * The Core link's TLS files, checked as the Core checks its own: readable,
 * within validity, `clientAuth` usage, key matching, CA entries CAs.
 * Throws `invalid_certificate` naming the file.
 */
function coreTlsOf(core: NonNullable<GatewayFileConfig['core']>): NonNullable<Preflight['coreTls']> {
  const t = loadTlsFiles({ certFile: core.certFile, keyFile: core.keyFile, caFile: core.caFile }, 'client');
  return { cert: t.cert, key: t.key, ca: t.ca as Buffer, ...(core.servername ? { servername: core.servername } : {}) };
}

/**
 * Runs the checks of the file comment. Throws `invalid_config` (a bad trust
 * entry, no policy file, an unused upstream name, a `pkcs11` route without
 * `hsm`, `dev` outside KCM_DEV=1, no `core` without `dev`, a bad identity
 * or CRL file), `invalid_policy` (every error of every policy file, naming
 * file, line and field), `invalid_certificate` (a TLS file unreadable,
 * outside its validity, without the usage its role needs, a key not
 * matching, a CA entry that is not a CA: naming the file) or
 * `native_unavailable` (the uWS front's native binary does not load). `log`
 * gets what loading the identity file says, `crlLog` what loading the CRL
 * file says (by default nothing: a start's front loads it again and says it
 * then).
 */
export function preflight(
  c: GatewayFileConfig,
  log: (m: string) => void,
  crlLog: (m: string) => void = () => {},
): Preflight {
  const trust = trustOf(c.trust);
  const policies = c.policies ? loadPolicies(c.policies.dir, { examples: c.policies.examples }) : undefined;
  if (policies) {
    const tokenRoute = policies.routes.find((r) => r.backend === 'pkcs11');
    if (tokenRoute && !c.hsm) {
      throw new KcmError('invalid_config', `hsm: required by ${tokenRoute.source} (backend "pkcs11")`);
    }
    const unused = unusedUpstreamNames(policies, c.upstreams.urls);
    if (unused.length > 0) {
      throw new KcmError('invalid_config', `upstreams.urls.${unused[0]}: no policy route uses this upstream name`);
    }
  }
  if (c.dev && process.env.KCM_DEV !== '1') throw new KcmError('invalid_config', 'dev: refused outside KCM_DEV=1');
  if (!c.dev && !c.core) throw new KcmError('invalid_config', 'core: required unless dev: true');
  const coreTls = !c.dev && c.core ? coreTlsOf(c.core) : undefined;
  // The fronts' certificates: refused here, naming the file, rather than by a client's failed handshake.
  if (c.fronts.h2Tls) checkH2TlsFiles(c.fronts.h2Tls, crlLog);
  // The uWS front runs only on its native binary, never on the emulation.
  // So does the native front's internal listener (the pipeline's side of its tunnels).
  if (c.fronts.uws || c.fronts.native) requireNativeUws();
  const uwsTls = c.fronts.uws?.tls;
  if (uwsTls) loadTlsFiles({ certFile: uwsTls.certFile, keyFile: uwsTls.keyFile }, 'server');
  const identities = c.identities
    ? new CertificateIdentities(c.identities.file, { unlisted: c.identities.unlisted, log })
    : undefined;
  return {
    trust,
    ...(policies ? { policies } : {}),
    ...(identities ? { identities } : {}),
    ...(coreTls ? { coreTls } : {}),
  };
}
