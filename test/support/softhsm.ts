/**
 * Throwaway SoftHSM2 tokens for tests.
 *
 * SoftHSM reads `SOFTHSM2_CONF` when the library is initialised (C_Initialize)
 * and enumerates its tokens then. So one test process uses one configuration:
 * the first {@link createSoftHsmToken} call writes a temp config (tokendir in
 * a temp dir) and points `process.env.SOFTHSM2_CONF` at it for the rest of the
 * process. Create every token a test file needs *before* opening the first
 * provider: tokens made after C_Initialize are only seen once every provider
 * of the module is closed (the module is finalised and re-initialised).
 * `node --test` runs each test file in its own process, which gives each file
 * its own configuration.
 */
import { execFileSync } from 'node:child_process';
import { accessSync, constants, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const SOFTHSM_MODULE = '/usr/lib/softhsm/libsofthsm2.so';
const SOFTHSM_UTIL = 'softhsm2-util';

export interface SoftHsmToken {
  modulePath: string;
  tokenLabel: string;
  pin: string;
  soPin: string;
  /** Deletes the token; the last cleanup of the process removes the temp dir and restores SOFTHSM2_CONF. */
  cleanup(): void;
}

/** Why SoftHSM cannot be used here, or undefined when the module and softhsm2-util are installed. */
export function softHsmMissing(): string | undefined {
  try {
    accessSync(SOFTHSM_MODULE, constants.R_OK);
  } catch {
    return `${SOFTHSM_MODULE} not found (apt-get install softhsm2)`;
  }
  try {
    execFileSync(SOFTHSM_UTIL, ['--version'], { stdio: 'pipe' });
  } catch {
    return `${SOFTHSM_UTIL} not on PATH (apt-get install softhsm2)`;
  }
  return undefined;
}

/**
 * `skip` option for a SoftHSM suite: the reason when SoftHSM is missing, or
 * false to run. Under CI=true it never skips (CI installs softhsm2, so a
 * missing install must fail, not pass silently).
 */
export function softHsmSkip(): string | false {
  if (process.env.CI === 'true') return false;
  const why = softHsmMissing();
  return why === undefined ? false : `SoftHSM unavailable: ${why}`;
}

let conf: { dir: string; previous: string | undefined; tokens: number } | undefined;

function processConf(): string {
  if (!conf) {
    const dir = mkdtempSync(join(tmpdir(), 'kcm-softhsm-'));
    const tokenDir = join(dir, 'tokens');
    mkdirSync(tokenDir, { mode: 0o700 });
    const path = join(dir, 'softhsm2.conf');
    writeFileSync(
      path,
      `directories.tokendir = ${tokenDir}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`,
      { mode: 0o600 },
    );
    conf = { dir, previous: process.env.SOFTHSM2_CONF, tokens: 0 };
    process.env.SOFTHSM2_CONF = path;
  }
  return join(conf.dir, 'softhsm2.conf');
}

let counter = 0;

/**
 * Initialises a fresh token in this process's temp SoftHSM config and returns
 * its coordinates. Throws (with softhsm2-util's stderr) when initialisation fails.
 */
export function createSoftHsmToken(label = `kcm-test-${process.pid}-${++counter}`): SoftHsmToken {
  const confPath = processConf();
  const pin = `user-${counter}-1234`;
  const soPin = `so-${counter}-5678`;
  const env = { ...process.env, SOFTHSM2_CONF: confPath };
  execFileSync(SOFTHSM_UTIL, ['--init-token', '--free', '--label', label, '--so-pin', soPin, '--pin', pin], {
    env,
    stdio: 'pipe',
  });
  if (conf) conf.tokens++;
  let cleaned = false;
  return {
    modulePath: SOFTHSM_MODULE,
    tokenLabel: label,
    pin,
    soPin,
    cleanup() {
      if (cleaned || !conf) return;
      cleaned = true;
      try {
        execFileSync(SOFTHSM_UTIL, ['--delete-token', '--token', label], { env, stdio: 'pipe' });
      } catch {
        // the directory removal below covers it
      }
      if (--conf.tokens === 0) {
        rmSync(conf.dir, { recursive: true, force: true });
        if (conf.previous === undefined) delete process.env.SOFTHSM2_CONF;
        else process.env.SOFTHSM2_CONF = conf.previous;
        conf = undefined;
      }
    },
  };
}
