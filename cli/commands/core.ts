/**
 * `kcm core`: runs the Crypto Core until SIGTERM/SIGINT, which seal it
 * (every key wiped) before the process exits.
 */
import { loadCoreConfig } from '../../core/src/config.ts';
import { startCore } from '../../core/src/core-service.ts';
import { flag, parseArgs } from '../args.ts';
import type { Command } from '../main.ts';

export const coreCommand: Command = {
  name: 'core',
  summary: 'Run the Crypto Core (root of trust, IVKs, admin API)',
  usage: 'kcm core [--config FILE]   (env: KCM_CONFIG, KCM_DEV=1, KCM_REGION, KCM_DATA_DIR, KCM_LISTEN, KCM_STORE_URL)',
  async run(args) {
    const p = parseArgs(args, { config: true });
    const config = loadCoreConfig(flag(p, 'config'));
    const core = await startCore(config);
    console.log(`kcm core: ${core.root.status().state}; admin API ${core.admin.url}`);
    await new Promise<void>((resolve) => {
      const stop = (signal: string) => {
        console.error(`[core] ${signal}: sealing and shutting down`);
        core.close().then(resolve, resolve);
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
    });
    return 0;
  },
};
