/**
 * The slow-token PKCS#11 module of bench/hsm/slow-token.c (a stand-in for a
 * network HSM over SoftHSM2) for tests: why it cannot be used here, and
 * building it. Its delay, skip count and real module come from the
 * environment of the process that loads it (KCM_SLOW_TOKEN_US,
 * KCM_SLOW_TOKEN_SKIP, KCM_SLOW_TOKEN_MODULE).
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { softHsmSkip } from './softhsm.ts';

const SOURCE = fileURLToPath(new URL('../../bench/hsm/slow-token.c', import.meta.url));

/**
 * `skip` option for a suite over the slow token: SoftHSM's reason, or gcc
 * missing; false to run. Never skips under CI=true (CI installs both).
 */
export function slowTokenSkip(): string | false {
  const hsm = softHsmSkip();
  if (hsm || process.env.CI === 'true') return hsm;
  try {
    execFileSync('gcc', ['--version'], { stdio: 'pipe' });
    return false;
  } catch {
    return 'gcc not installed (apt-get install gcc): the slow token module cannot be built';
  }
}

/** Builds the module into `dir`; answers its path. */
export function buildSlowToken(dir: string): string {
  const path = join(dir, 'libslowtoken.so');
  execFileSync('gcc', ['-shared', '-fPIC', '-O2', '-o', path, SOURCE, '-ldl', '-lpthread'], { stdio: 'pipe' });
  return path;
}
