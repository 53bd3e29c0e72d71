/**
 * Named crash points for durability tests: when KCM_TEST_HOOKS=1 and
 * KCM_TEST_CRASH_AT names a point, the process SIGKILLs itself there (no
 * cleanup, no flush: a power cut as far as the database can tell). Inert
 * otherwise — a string compare; a production process never sets both.
 */
const target = process.env.KCM_TEST_HOOKS === '1' ? (process.env.KCM_TEST_CRASH_AT ?? '') : '';

export type CrashPoint =
  | 'init:before-commit'
  | 'init:after-commit'
  | 'rotate:before-commit'
  | 'rotate:after-commit'
  | 'retire:before-commit';

export function crashPoint(name: CrashPoint): void {
  if (target === name) process.kill(process.pid, 'SIGKILL');
}
