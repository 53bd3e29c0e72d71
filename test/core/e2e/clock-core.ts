/**
 * `kcm core` with a shifted clock, for e2e tests of time triggers (GRACE
 * expiry) in a real process: the same config loading, startCore and
 * SIGTERM/SIGINT handling as cli/commands/core.ts, with `now` = wall clock +
 * KCM_TEST_CLOCK_OFFSET_MS. Test-only; never shipped.
 */
import { loadCoreConfig } from '../../../core/src/config.ts';
import { startCore } from '../../../core/src/core-service.ts';

const offset = Number(process.env.KCM_TEST_CLOCK_OFFSET_MS ?? 0);
const core = await startCore(loadCoreConfig(undefined), { now: () => Date.now() + offset });
console.log(`kcm core (clock +${offset} ms): ${core.root.status().state}; admin API ${core.admin.url}`);
const stop = () => {
  core.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
