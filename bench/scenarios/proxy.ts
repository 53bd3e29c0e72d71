/**
 * The gateway's policy proxy as a benchmark server: `kcm gateway --config`
 * in front of the sample app, started pinned to the server CPU.
 *
 * Until the proxy and `kcm gateway --config` exist, {@link startProxy}
 * returns a skip reason and the proxy scenarios appear in the report as
 * skipped with it. What it needs to run (see bench/README.md):
 *  1. `cli/commands/gateway.ts` with `kcm gateway --config FILE`;
 *  2. a config that names a uWS listen port on 127.0.0.1 (the harness picks a
 *     free port) and a policy directory holding {@link benchPolicy};
 *  3. in-process development keys (LocalGatewayKeys, as `--dev`), so no Core;
 *  4. readiness: the harness polls the port, then sends one POST /orders so
 *     that GET /orders/bench-get returns a stored document with ciphertexts;
 *  5. a way for a loopback caller to be a reader of the response fields
 *     (the policy below names the identity `bench-reader`), otherwise the
 *     response scenario measures masking, not decryption.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RunningServer } from '../harness/servers.ts';
import { ORDER_FIELDS } from './payloads.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The route policy the proxy scenarios use: 5 fields each way, a pass-through route. */
export function benchPolicy(appPort: number): Record<string, unknown> {
  const rules = ORDER_FIELDS.map((select) => ({ select, field: select.slice(2) }));
  return {
    id: 'bench-orders',
    key: 'orders',
    upstreams: { app: `http://127.0.0.1:${appPort}` },
    defaults: {
      tenant: { from: 'header', header: 'x-tenant-id', trustedPeers: ['127.0.0.1', '::1'] },
      readers: { identities: ['bench-reader'], others: 'mask' },
    },
    routes: [
      { method: 'POST', path: '/orders', upstream: 'app', request: rules },
      { method: 'GET', path: '/orders/:id', upstream: 'app', response: rules },
      { method: 'GET', path: '/static/*', upstream: 'app' },
    ],
  };
}

export interface ProxyStart {
  server?: RunningServer;
  skip?: string;
}

/** Starts the proxy in front of the sample app, or says why it cannot. */
export async function startProxy(appPort: number, dir: string, _cpu: number | undefined): Promise<ProxyStart> {
  const cli = join(ROOT, 'cli', 'commands', 'gateway.ts');
  if (!existsSync(cli)) {
    return {
      skip: '`kcm gateway --config` not available yet (cli/commands/gateway.ts missing): the policy proxy is being built',
    };
  }
  const policyDir = join(dir, 'policies');
  mkdirSync(policyDir, { recursive: true });
  writeFileSync(join(policyDir, 'bench.routes.json'), JSON.stringify(benchPolicy(appPort), null, 2));
  return {
    skip: '`kcm gateway` exists but the harness does not know its --config format yet: wire bench/scenarios/proxy.ts startProxy()',
  };
}
