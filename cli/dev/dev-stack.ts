/**
 * The development stack `kcm dev` (and `npm start`) runs in one process:
 * a Crypto Core (development seal, SQLite, plain loopback admin API, mTLS
 * edge API), a gateway leasing keys from it over mTLS, and the sample orders
 * app behind the gateway with policies/orders.routes.example.json.
 *
 * First start: a development PKI (CA, Core server certificate, gateway
 * client certificate) under `<dataDir>/pki`, an identity policy
 * `<dataDir>/authz.json`, Core init with recovery shares written to
 * `<dataDir>/recovery-shares.txt` (0600; development only), tenants `acme`
 * and `globex` with service key `orders`. Later starts reuse all of it and
 * auto-unseal with the development seal key in `<dataDir>/dev-seal.key`.
 *
 * Development mode only: the dev seal keeps its key in a plain file; the
 * admin API is plain HTTP on loopback with one caller (local-operator).
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { KcmError } from '../../common/src/errors.ts';
import { type Ca, createCa, type IssuedCert, issueCert, loadCa } from '../../common/src/pki/index.ts';
import { coreConfig } from '../../core/src/config.ts';
import { type CoreService, startCore } from '../../core/src/core-service.ts';
import { type OrdersApp, startOrdersApp } from '../../gateway/sample/orders-app.ts';
import { gatewayConfig } from '../../gateway/src/gateway-config.ts';
import { type ConfiguredGateway, startConfiguredGateway } from '../../gateway/src/start-configured-gateway.ts';

export interface DevPorts {
  /** Core admin API (plain HTTP, loopback). */
  admin: number;
  /** Core edge API (mTLS). */
  edge: number;
  /** Gateway, uWebSockets.js HTTP/1.1. */
  gateway: number;
  /** Gateway, h2c + HTTP/1.1 on one port (node:http2). */
  gatewayH2c: number;
  /** The sample orders app. */
  app: number;
}

export const DEV_PORTS: DevPorts = { admin: 8200, edge: 8201, gateway: 8080, gatewayH2c: 8090, app: 8081 };
export const DEV_TENANTS = ['acme', 'globex'] as const;
export const DEV_SERVICE = 'orders';

export interface DevStack {
  core: CoreService;
  gateway: ConfiguredGateway;
  app: OrdersApp;
  ports: DevPorts;
  dataDir: string;
  close(): Promise<void>;
}

type CertFiles = Pick<IssuedCert, 'certFile' | 'keyFile'>;

interface DevPki {
  ca: Ca;
  core: CertFiles;
  gateway: CertFiles;
}

function devPki(dir: string): DevPki {
  const ca = existsSync(join(dir, 'ca.crt')) ? loadCa(dir) : createCa(dir, { cn: 'OpenKCM development CA', days: 825 });
  const issue = (name: string, o: Parameters<typeof issueCert>[1]): CertFiles =>
    existsSync(join(dir, `${name}.crt`)) && existsSync(join(dir, `${name}.key`))
      ? issueCertFiles(dir, name)
      : issueCert(ca, { ...o, name, outDir: dir });
  return {
    ca,
    core: issue('core', { kind: 'server', cn: 'kcm-core', sans: ['DNS:localhost', 'IP:127.0.0.1'], days: 825 }),
    gateway: issue('gateway', {
      kind: 'client',
      cn: 'kcm-gateway-dev',
      sans: ['URI:spiffe://openkcm.dev/edge/gateway-dev'],
      days: 825,
    }),
  };
}

/** The files of a certificate issued by an earlier start. */
function issueCertFiles(dir: string, name: string): Pick<IssuedCert, 'certFile' | 'keyFile'> {
  return { certFile: join(dir, `${name}.crt`), keyFile: join(dir, `${name}.key`) };
}

function writeDevPolicy(file: string): void {
  const doc = {
    version: 1,
    description: 'kcm dev: the development gateway may lease the demo tenants',
    identities: [
      {
        name: 'gateway-dev',
        match: { uri: 'spiffe://openkcm.dev/edge/gateway-dev' },
        roles: ['edge'],
        tenants: [...DEV_TENANTS],
      },
    ],
  };
  writeFileSync(file, `${JSON.stringify(doc, null, 2)}\n`);
}

async function ensureInitialised(core: CoreService, dataDir: string, log: (m: string) => void): Promise<void> {
  if (core.root.state === 'uninitialized') {
    const init = await core.root.init({ threshold: 2, shareCount: 3 });
    const file = join(dataDir, 'recovery-shares.txt');
    writeFileSync(file, `${init.shares.map((s) => s.payload).join('\n')}\n`, { mode: 0o600 });
    await core.root.confirmInit();
    log(`initialised cluster ${init.clusterId}; development recovery shares in ${file}`);
  }
  if (core.root.state !== 'active' && !(await core.autoUnsealed)) {
    throw new KcmError('sealed', 'the development Core did not auto-unseal');
  }
}

async function ensureTenants(core: CoreService): Promise<void> {
  for (const id of DEV_TENANTS) {
    try {
      await core.keys.tenants.get(id);
    } catch (err) {
      if ((err as KcmError).code !== 'tenant_not_found') throw err;
      await core.keys.tenants.create({ id }, { actor: 'kcm-dev' });
    }
    try {
      await core.keys.services.get(id, DEV_SERVICE);
    } catch (err) {
      if ((err as KcmError).code !== 'key_not_found') throw err;
      await core.keys.services.create(id, DEV_SERVICE, undefined, { actor: 'kcm-dev' });
    }
  }
}

/** The gateway's audit log in a development data directory. */
export function devAuditLog(dataDir: string): string {
  return join(dataDir, 'audit', 'gateway.log');
}

/**
 * Starts the stack. `policiesDir` defaults to ./policies (with the shipped
 * examples). Throws what the parts throw (`invalid_config`, a port in use …);
 * whatever started is closed again on a throw.
 */
export async function startDevStack(
  o: { dataDir?: string; ports?: Partial<DevPorts>; policiesDir?: string; log?: (m: string) => void } = {},
): Promise<DevStack> {
  const log = o.log ?? ((m: string) => console.error(`[dev] ${m}`));
  const dataDir = resolve(o.dataDir ?? join('data', 'dev'));
  const ports = { ...DEV_PORTS, ...o.ports };
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const pki = devPki(join(dataDir, 'pki'));
  const authzPolicy = join(dataDir, 'authz.json');
  writeDevPolicy(authzPolicy);
  const tls = { certFile: pki.core.certFile, keyFile: pki.core.keyFile, caFile: pki.ca.certFile };
  const env = { ...process.env, KCM_DEV: '1' };
  const config = coreConfig(
    {
      devMode: true,
      dataDir,
      seal: { type: 'dev', keyFile: join(dataDir, 'dev-seal.key') },
      listen: { host: '127.0.0.1', port: ports.admin },
      authzPolicy,
      edge: { host: '127.0.0.1', port: ports.edge, tls },
      tickMs: 10_000,
    },
    env,
  );
  const started: { close(): Promise<void> }[] = [];
  try {
    const core = await startCore(config, { log: (m) => log(`core: ${m}`) });
    started.push(core);
    await ensureInitialised(core, dataDir, log);
    await ensureTenants(core);
    const app = await startOrdersApp({ port: ports.app });
    started.push(app);
    const gw = gatewayConfig(
      {
        fronts: { uws: { port: ports.gateway }, h2Plain: { port: ports.gatewayH2c } },
        policies: { dir: resolve(o.policiesDir ?? 'policies'), examples: true },
        core: {
          url: `https://127.0.0.1:${core.edge?.port ?? ports.edge}`,
          certFile: pki.gateway.certFile,
          keyFile: pki.gateway.keyFile,
          caFile: pki.ca.certFile,
        },
        upstreams: { urls: { 'orders-app': app.url } },
        callerHeaders: { identity: 'x-okcm-caller', roles: 'x-okcm-roles' },
        // Every key access through the gateway leaves a record: `kcm audit verify --log <file> --public-key <.pub>`.
        audit: { file: devAuditLog(dataDir) },
      },
      process.cwd(),
      env,
    );
    const gateway = await startConfiguredGateway(gw, { log: (m) => log(`gateway: ${m}`) });
    started.push(gateway);
    return {
      core,
      gateway,
      app,
      ports: {
        admin: Number(new URL(core.admin.url).port),
        edge: core.edge?.port ?? ports.edge,
        gateway: gateway.server.ports.uws ?? ports.gateway,
        gatewayH2c: gateway.server.ports.h2Plain ?? ports.gatewayH2c,
        app: Number(new URL(app.url).port),
      },
      dataDir,
      close: async () => {
        for (const s of started.reverse()) await s.close().catch(() => {});
      },
    };
  } catch (err) {
    for (const s of started.reverse()) await s.close().catch(() => {});
    throw err;
  }
}
