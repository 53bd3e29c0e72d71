/**
 * `kcm gateway --config FILE`: runs the Crypto Edge gateway (fronts, direct
 * API, policy reverse proxy) until SIGTERM/SIGINT, which drain requests in
 * flight, close the Core client and wipe every leased key before exit.
 * SIGHUP reloads the route policies and the identity file.
 */
import { checkGatewayConfig } from '../../gateway/src/check-gateway-config.ts';
import { loadGatewayConfig } from '../../gateway/src/gateway-config.ts';
import { stuckTokenThreads } from '../../gateway/src/hsm/token-workers.ts';
import { startConfiguredGateway } from '../../gateway/src/start-configured-gateway.ts';
import { flag, parseArgs } from '../args.ts';
import type { Command } from '../main.ts';

/**
 * A PKCS#11 call that never returned (a hung HSM; its worker given up after
 * hsm.timeoutMs, or at close) holds its thread, and Node joins every thread
 * before a process exits: the process would never end. Called once
 * everything else is closed, this ends it without waiting for the call.
 */
function endWithoutStuckThreads(): never {
  console.error(
    `[gateway] ${stuckTokenThreads()} PKCS#11 call(s) have not returned: ending the process without waiting (SIGKILL)`,
  );
  process.kill(process.pid, 'SIGKILL');
  // SIGKILL cannot be caught: never reached.
  throw new Error('unreachable');
}

export const gatewayCommand: Command = {
  name: 'gateway',
  summary: 'Run the Crypto Edge gateway (direct API and policy reverse proxy)',
  usage:
    'kcm gateway --config FILE [--check]   (env: KCM_GATEWAY_CONFIG; KCM_DEV=1 allows "dev": true; SIGHUP reloads the route policies and the identity file; --check validates the config, policies, TLS and identity files as a start would, prints what would run and exits 0, or 1 with the errors, opening nothing)',
  async run(args) {
    const p = parseArgs(args, { config: true, check: false });
    const file = flag(p, 'config') ?? process.env.KCM_GATEWAY_CONFIG;
    if (!file) {
      console.error(`kcm gateway: --config FILE is required\n\nUsage: ${this.usage}`);
      return 2;
    }
    if (flag(p, 'check')) {
      const lines = checkGatewayConfig(loadGatewayConfig(file));
      console.log(`kcm gateway: ${file}: OK\n${lines.join('\n')}`);
      return 0;
    }
    // SIGHUP's default action ends the process: ignore it while starting and stopping, reload while serving.
    let onHup = () => {};
    const hup = () => onHup();
    process.on('SIGHUP', hup);
    let gw: Awaited<ReturnType<typeof startConfiguredGateway>>;
    try {
      gw = await startConfiguredGateway(loadGatewayConfig(file));
    } catch (err) {
      process.off('SIGHUP', hup);
      // A token set-up step that never returned (start-up gave up on it) would keep the process from ending.
      if (stuckTokenThreads() > 0) {
        console.error(`kcm gateway: ${err instanceof Error ? err.message : String(err)}`);
        endWithoutStuckThreads();
      }
      throw err;
    }
    onHup = () => gw.reload('SIGHUP');
    const { ports } = gw.server;
    const fronts = Object.entries(ports).map(([name, port]) => `${name} :${port}`);
    console.log(`kcm gateway: serving on ${fronts.join(', ')}`);
    await new Promise<void>((resolve) => {
      let stopping = false;
      // Handlers stay: a second SIGTERM/SIGINT during the drain must not end the process by signal before the
      // audit log's close checkpoint and the key wipe.
      const stop = (signal: string) => {
        if (stopping) {
          console.error(`[gateway] ${signal}: already stopping`);
          return;
        }
        stopping = true;
        onHup = () => {};
        console.error(`[gateway] ${signal}: draining, closing the Core client, wiping keys`);
        gw.close().then(resolve, resolve);
      };
      process.on('SIGTERM', () => stop('SIGTERM'));
      process.on('SIGINT', () => stop('SIGINT'));
    });
    // Everything is closed and the audit log has its close checkpoint by now.
    if (stuckTokenThreads() > 0) endWithoutStuckThreads();
    // The handler stays (a no-op now): a SIGHUP arriving while the process exits must not end it by signal.
    return 0;
  },
};
