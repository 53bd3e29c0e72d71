/**
 * `kcm dev` (what `npm start` runs): the whole product on its embedded
 * defaults — Core (development seal, SQLite under ./data/dev), gateway and
 * the sample orders app — then prints what to try. Runs until SIGTERM/SIGINT,
 * which close the gateway (keys wiped), the app and the Core (sealed).
 * Development only: it sets KCM_DEV=1 for itself and says so.
 */
import { relative } from 'node:path';
import { flag, parseArgs } from '../args.ts';
import { DEV_PORTS, type DevPorts, devAuditLog, startDevStack } from '../dev/dev-stack.ts';
import type { Command } from '../main.ts';
import { doctorCommand } from './doctor.ts';

const USAGE =
  'kcm dev [--data-dir DIR] [--admin-port N] [--edge-port N] [--gateway-port N] [--h2c-port N] [--app-port N] [--policies DIR]';

function portFlag(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`--${name} must be a port number`);
  return n;
}

/** The examples printed at start, with the real ports and data directory. */
export function devExamples(p: DevPorts, dataDir: string): string {
  const gw = `http://127.0.0.1:${p.gateway}`;
  const log = relative(process.cwd(), devAuditLog(dataDir));
  return [
    'Try it (tenant acme; the gateway encrypts card and customer fields on the way in):',
    '',
    `  curl -s ${gw}/orders -H 'x-tenant-id: acme' -H 'content-type: application/json' \\`,
    `    -d '{"card":{"number":"4111 1111 1111 1111","cvv":"123"},"customer":{"email":"ann@example.com"},"items":[{"sku":"A1"}]}'`,
    '',
    '  # what the app stored (ciphertext: okcm:1:…), straight from the app:',
    `  curl -s http://127.0.0.1:${p.app}/orders -H 'x-tenant-id: acme'`,
    '',
    '  # read back through the gateway: plaintext for billing-service, a mask for anyone else:',
    `  curl -s ${gw}/orders/ORDER_ID -H 'x-tenant-id: acme' -H 'x-okcm-caller: billing-service'`,
    `  curl -s ${gw}/orders/ORDER_ID -H 'x-tenant-id: acme'`,
    '',
    '  # the direct API (Vault Transit style), h2c on its own port:',
    `  curl -s ${gw}/v1/encrypt/orders -H 'x-okcm-tenant: acme' -H 'content-type: application/json' -d '{"plaintext":"aGVsbG8="}'`,
    `  curl -s --http2-prior-knowledge http://127.0.0.1:${p.gatewayH2c}/healthz`,
    '',
    '  # operate the Core (plain loopback in dev):',
    `  node bin/kcm.mjs operator status --addr http://127.0.0.1:${p.admin}`,
    `  node bin/kcm.mjs tenant list --addr http://127.0.0.1:${p.admin}`,
    `  curl -s ${gw}/metrics | head`,
    '',
    "  # the gateway's tamper-evident audit log: one record per key access (no values), then its check:",
    `  node bin/kcm.mjs audit export --log ${log}`,
    `  node bin/kcm.mjs audit verify --log ${log} --public-key ${log}.pub --allow-unsigned-tail`,
  ].join('\n');
}

export const devCommand: Command = {
  name: 'dev',
  summary: 'Run Core + gateway + sample app on development defaults (what npm start runs)',
  usage: USAGE,
  async run(args) {
    const p = parseArgs(args, {
      'data-dir': true,
      'admin-port': true,
      'edge-port': true,
      'gateway-port': true,
      'h2c-port': true,
      'app-port': true,
      policies: true,
    });
    process.env.KCM_DEV = '1';
    await doctorCommand.run([]);
    const ports: Partial<DevPorts> = {};
    const set = (k: keyof DevPorts, name: string) => {
      const v = portFlag(flag(p, name), name);
      if (v !== undefined) ports[k] = v;
    };
    set('admin', 'admin-port');
    set('edge', 'edge-port');
    set('gateway', 'gateway-port');
    set('gatewayH2c', 'h2c-port');
    set('app', 'app-port');
    const dataDir = flag(p, 'data-dir');
    const policies = flag(p, 'policies');
    const stack = await startDevStack({
      ...(dataDir ? { dataDir } : {}),
      ...(policies ? { policiesDir: policies } : {}),
      ports,
    });
    console.log(
      `\nkcm dev: DEVELOPMENT MODE (insecure dev seal key in ${stack.dataDir}); defaults ${JSON.stringify(DEV_PORTS)}`,
    );
    console.log(`kcm dev: ready ${JSON.stringify(stack.ports)}\n\n${devExamples(stack.ports, stack.dataDir)}\n`);
    await new Promise<void>((resolve) => {
      const stop = (signal: string) => {
        console.error(`[dev] ${signal}: closing the gateway, the app and the Core (sealing)`);
        stack.close().then(resolve, resolve);
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
    });
    return 0;
  },
};
