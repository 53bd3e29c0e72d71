/**
 * Starts `kcm gateway` from its validated configuration (gateway-config.ts):
 * the keys (CoreGatewayKeys over the Core edge API with mTLS, or
 * LocalGatewayKeys in development), the route policies, the upstream pools
 * and the front listeners. `close()` drains (new requests 503, in-flight
 * ones get `limits.drainMs`), closes listeners and pools, then closes the
 * keys: pending usage is reported, the Core event stream stops and every
 * leased key is wiped. With an `hsm` section the PKCS#11 token of the
 * `pkcs11` field backend is opened (and its transport key set up) before
 * any listener, and closed last. With an `identities` section the
 * certificate identity file (gateway-identities.ts) gives every client
 * certificate its tenants (`tenantsForCertificate`) and reader roles
 * (`rolesForCertificate`); it is loaded before anything opens and, unless
 * `watch: false`, reloaded when it changes. The route policies are reloaded
 * likewise (policy/policy-reload.ts), and both by `reload()` (SIGHUP).
 */
import { Alerter } from '../../common/src/alerts/alerter.ts';
import { type ExportedAuditLog, openExportedAuditLog } from '../../common/src/audit/exported-audit-log.ts';
import { KcmError } from '../../common/src/errors.ts';
import { type Crypto, defaultCrypto } from '../../native/index.ts';
import { registerAuditMetrics } from './audit/audit-metrics.ts';
import { CoreGatewayKeys } from './core-gateway-keys.ts';
import type { GatewayFileConfig } from './gateway-config.ts';
import type { CertificateIdentities } from './gateway-identities.ts';
import { type GatewayKeys, LocalGatewayKeys } from './gateway-keys.ts';
import { preflight } from './gateway-preflight.ts';
import { type GatewayServer, startGateway } from './gateway-server.ts';
import { HsmBackend } from './hsm/hsm-backend.ts';
import { PolicyReloader } from './policy/policy-reload.ts';

export interface ConfiguredGateway {
  server: GatewayServer;
  keys: GatewayKeys;
  /** The pkcs11 field backend, when the config has an `hsm` section. */
  hsm?: HsmBackend;
  /** The certificate identity file, when the config has an `identities` section. */
  identities?: CertificateIdentities;
  /** The route policies' reloader, when the config has a `policies` section. */
  policies?: PolicyReloader;
  /** Reloads the route policies and the identity file now (`kcm gateway` on SIGHUP); each logs what it did. */
  reload(reason: string): void;
  /** Drains, closes listeners and pools, then closes the keys (wipes them). Idempotent. */
  close(): Promise<void>;
}

export interface StartOptions {
  log?: (msg: string) => void;
  crypto?: Crypto;
}

/** Opens the token of `hsm` with the PIN from the environment variable it names (read when logging in, kept nowhere). */
function openHsm(hsm: NonNullable<GatewayFileConfig['hsm']>, crypto: Crypto): Promise<HsmBackend> {
  if (!process.env[hsm.pinEnv]) {
    throw new KcmError('invalid_config', `hsm.pinEnv: environment variable ${hsm.pinEnv} is not set or empty`);
  }
  return HsmBackend.open({
    module: hsm.module,
    ...(hsm.tokenLabel !== undefined ? { tokenLabel: hsm.tokenLabel } : {}),
    ...(hsm.slot !== undefined ? { slot: hsm.slot } : {}),
    // Read again only if the token logs out and the gateway must log in again.
    pin: () => process.env[hsm.pinEnv],
    sessions: hsm.sessions,
    inline: hsm.inline,
    timeoutMs: hsm.timeoutMs,
    keys: hsm.keys,
    crypto,
  });
}

/** How long a closing gateway waits for the requests its close cut short to write their audit records. */
const AUDIT_SETTLE_MS = 2000;

/**
 * Opens the audit log of `a`, with its OTLP copy when configured and a
 * rate-limited alerter (a client must not be able to flood the log with
 * alerts); throws `audit_unavailable` / `audit_tampered`. Or says there is none.
 */
function openAudit(a: GatewayFileConfig['audit'], log: (m: string) => void): ExportedAuditLog | undefined {
  if (!a) {
    log('WARNING: no audit log configured (config audit.file): key accesses through this gateway are not recorded');
    return undefined;
  }
  // The config's optional fields are present only when set (gateway-config.ts), as AuditLog wants them.
  const { file, otlpUrl, ...options } = a;
  const exportLog = (m: string) => log(`audit export: ${m}`);
  const audit = openExportedAuditLog(
    { path: file, ...options },
    new Alerter({ log: (l) => log(`audit alert: ${l}`) }),
    otlpUrl ? { url: otlpUrl, serviceName: 'openkcm-gateway', log: exportLog } : undefined,
    (n) => exportLog(`${n} audit lines not delivered to the collector before shutdown (the log keeps them)`),
  );
  log(
    `audit log ${file}; checkpoint public key ${audit.log.publicKey}${otlpUrl ? '; copied to the OTLP collector' : ''}`,
  );
  return audit;
}

/**
 * Starts the gateway. Throws `invalid_config` (bad trust entry, no policy
 * file, port in use, `dev` without KCM_DEV=1 — checked again here, a bad
 * identity file: the message names the file and the field),
 * `invalid_policy`, `invalid_certificate`, `native_unavailable`. Nothing
 * stays open after a throw.
 */
export async function startConfiguredGateway(c: GatewayFileConfig, o: StartOptions = {}): Promise<ConfiguredGateway> {
  const log = o.log ?? ((m: string) => console.error(`[gateway] ${m}`));
  // Checked and loaded before anything opens (the identity file is watched once the gateway serves).
  const { trust, policies, identities, coreTls } = preflight(c, log);
  let hsm: HsmBackend | undefined;
  let keys: LocalGatewayKeys | CoreGatewayKeys;
  if (c.dev) {
    log(
      'WARNING: development keys: made in this process, not leased from a Core, lost at exit; never use in production',
    );
    keys = new LocalGatewayKeys(o.crypto ?? defaultCrypto());
  } else {
    const core = c.core;
    if (!core || !coreTls) throw new KcmError('invalid_config', 'core: required unless dev: true');
    keys = new CoreGatewayKeys({
      url: core.url,
      tls: coreTls,
      crypto: o.crypto ?? defaultCrypto(),
      ...(core.leaseTtlSeconds ? { ttlSeconds: core.leaseTtlSeconds } : {}),
      log: (m) => log(`core: ${m}`),
    });
    keys.start();
  }
  let server: GatewayServer;
  let audit: ExportedAuditLog | undefined;
  try {
    hsm = c.hsm ? await openHsm(c.hsm, o.crypto ?? defaultCrypto()) : undefined;
    audit = openAudit(c.audit, log);
    server = await startGateway({
      keys,
      ...(audit ? { auditLog: audit.log } : {}),
      ...(hsm ? { hsm } : {}),
      ...c.fronts,
      trust,
      ...(identities ? { tenantsForCertificate: identities.tenantsFor } : {}),
      ...(c.limits.maxBodyBytes ? { maxBodyBytes: c.limits.maxBodyBytes } : {}),
      ...(c.limits.maxBatchItems ? { maxBatchItems: c.limits.maxBatchItems } : {}),
      ...(policies
        ? {
            proxy: {
              policies,
              upstreamUrls: c.upstreams.urls,
              upstream: c.upstreams.options,
              ...(c.callerHeaders ? { callerHeaders: c.callerHeaders } : {}),
              ...(identities ? { rolesForCertificate: identities.rolesFor } : {}),
            },
          }
        : {}),
      log,
    });
  } catch (err) {
    try {
      await keys.close();
      await hsm?.close();
    } finally {
      await audit?.close();
    }
    throw err;
  }
  if (audit) registerAuditMetrics(server.metrics, audit.log, audit.shipper);
  if (identities && c.identities?.watch) identities.watch();
  const reloader =
    c.policies && policies
      ? new PolicyReloader({ dir: c.policies.dir, examples: c.policies.examples, server, inForce: policies, log })
      : undefined;
  if (reloader && c.policies?.watch) reloader.watch();
  let closing: Promise<void> | undefined;
  return {
    server,
    keys,
    ...(hsm ? { hsm } : {}),
    ...(identities ? { identities } : {}),
    ...(reloader ? { policies: reloader } : {}),
    reload(reason) {
      reloader?.reload(reason);
      identities?.reload(reason);
    },
    close() {
      closing ??= (async () => {
        try {
          await server.close({ drainMs: c.limits.drainMs });
          // Requests cut by the close (listeners and upstream pools gone) still pass the audit stage: let them.
          if (audit) await server.pipeline.whenIdle(AUDIT_SETTLE_MS);
          identities?.close();
          reloader?.close();
          await keys.close();
          await hsm?.close();
        } finally {
          // After the last answer: the close checkpoint covers every record.
          await audit?.close();
        }
      })();
      return closing;
    },
  };
}
