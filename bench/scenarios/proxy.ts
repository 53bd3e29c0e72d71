/**
 * The gateway's policy proxy as a benchmark server: `kcm gateway --config`
 * (KCM_DEV=1, `"dev": true`: in-process LocalGatewayKeys, no Core) in front of
 * the sample app, started pinned to the server CPU, with the route policy
 * {@link benchPolicy}. Callers on loopback name their tenant with
 * `x-tenant-id` and their identity with `x-okcm-caller` (callerHeaders);
 * `bench-reader` is the reader of the response fields, so the response
 * scenario measures decryption, not masking.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { type RunningServer, startCommand } from '../harness/servers.ts';
import { ORDER_FIELDS, sampleOrder } from './payloads.ts';

const KCM = fileURLToPath(new URL('../../bin/kcm.mjs', import.meta.url));

/** Header naming the caller identity (config `callerHeaders.identity`). */
export const CALLER_HEADER = 'x-okcm-caller';
/** The identity allowed to read the response fields in plaintext. */
export const READER = 'bench-reader';
/** Order id stored (with its ciphertexts) in the sample app before measuring. */
export const STORED_ORDER = 'bench-get';

/** The route policy the proxy scenarios use: 5 fields each way, a pass-through route. */
export function benchPolicy(appPort: number): Record<string, unknown> {
  const rules = ORDER_FIELDS.map((select) => ({ select, field: select.slice(2) }));
  return {
    id: 'bench-orders',
    key: 'orders',
    upstreams: { app: `http://127.0.0.1:${appPort}` },
    defaults: {
      tenant: { from: 'header', header: 'x-tenant-id', trustedPeers: ['127.0.0.1', '::1'] },
      readers: { identities: [READER], others: 'mask' },
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

/**
 * Starts the proxy in front of the sample app and stores one encrypted order
 * through it (for the response scenario), or says why it cannot. With
 * `audit`: the same proxy writing its tamper-evident audit log (fsync on,
 * the default) to `dir`, a peer row showing what the record of each request
 * costs; it stores no order (its development keys are its own).
 */
export async function startProxy(
  appPort: number,
  dir: string,
  cpu: number | undefined,
  o: { audit?: boolean } = {},
): Promise<ProxyStart> {
  const policyDir = join(dir, 'policies');
  mkdirSync(policyDir, { recursive: true });
  writeFileSync(join(policyDir, 'bench.routes.json'), JSON.stringify(benchPolicy(appPort), null, 2));
  const config = {
    dev: true,
    // The native front (the routes it serves: encrypting and pass-through ones) and the uWS front.
    fronts: { uws: { host: '127.0.0.1', port: 0 }, native: { host: '127.0.0.1', port: 0 } },
    policies: { dir: policyDir },
    callerHeaders: { identity: CALLER_HEADER },
    limits: { drainMs: 1000 },
    ...(o.audit ? { audit: { file: join(dir, 'audit', 'gateway.log') } } : {}),
  };
  const file = join(dir, 'gateway.json');
  writeFileSync(file, JSON.stringify(config, null, 2));
  let server: RunningServer;
  try {
    server = await startCommand(
      o.audit ? 'proxy-audit' : 'proxy',
      process.execPath,
      [KCM, 'gateway', '--config', file],
      cpu,
      { KCM_DEV: '1' },
      (line) => {
        const m = /uws :(\d+)/.exec(line);
        const n = /native :(\d+)/.exec(line);
        return m && n ? { http: Number(m[1]), native: Number(n[1]) } : null;
      },
    );
  } catch (err) {
    return { skip: `kcm gateway --config did not start: ${(err as Error).message}` };
  }
  if (o.audit) return { server };
  const r = await request(`http://127.0.0.1:${server.ports.http}/orders`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-tenant-id': 'bench' },
    body: JSON.stringify(sampleOrder(STORED_ORDER)),
  });
  const text = await r.body.text();
  if (r.statusCode !== 201 || text.includes('4111 1111 1111 1111')) {
    await server.stop();
    return { skip: `proxy set-up: POST /orders answered ${r.statusCode} ${text.slice(0, 200)}` };
  }
  return { server };
}
