/**
 * Hardware reference: `openssl speed -evp aes-256-gcm` as a contestant.
 *
 * Contract:
 *  - {@link probeOpenssl} never throws: it says whether the `openssl` binary
 *    runs, and its version, or why not.
 *  - {@link opensslTimer} returns a {@link Timed} whose every round spawns
 *    `openssl speed -evp aes-256-gcm -bytes N -seconds S -elapsed` (one size
 *    per run: `-bytes` takes one value), optionally under `taskset -c CPU`,
 *    and parses "Doing … for Ss on N size blocks: COUNT … in T s" into
 *    { units: COUNT, seconds: T }. It throws {@link OpensslError} when the run
 *    fails or the output cannot be parsed.
 *  - `-elapsed` makes openssl divide by wall-clock time, like the in-process
 *    contestants (its default divides by user CPU time, which hides
 *    hypervisor stalls and would flatter it).
 *  - What openssl measures: EVP_EncryptUpdate over a reused context, no
 *    per-message nonce, AAD or tag. It is the ceiling of the AES-GCM code on
 *    this CPU, not a like-for-like per-message seal.
 */
import { spawnSync } from 'node:child_process';
import type { RoundSample, Timed } from './measure.ts';

export class OpensslError extends Error {
  override readonly name = 'OpensslError';
}

export interface OpensslProbe {
  available: boolean;
  /** `openssl version` output when available. */
  version?: string;
  /** Why it is not available. */
  reason?: string;
}

/** Checks that `openssl` runs (`openssl version`); never throws. */
export function probeOpenssl(): OpensslProbe {
  const r = spawnSync('openssl', ['version'], { encoding: 'utf8', timeout: 10_000 });
  if (r.error) return { available: false, reason: `cannot run openssl: ${r.error.message}` };
  if (r.status !== 0) return { available: false, reason: `openssl version exited ${r.status}: ${r.stderr.trim()}` };
  return { available: true, version: r.stdout.trim() };
}

const DOING = /Doing (\S+) for (\d+)s on (\d+) size blocks: (\d+) \S+ in ([\d.]+)s/;

/** Parses one `openssl speed` output for block size `bytes`; throws OpensslError when the line is missing. */
export function parseSpeed(output: string, bytes: number): RoundSample {
  for (const line of output.split('\n')) {
    const m = DOING.exec(line);
    if (m && Number(m[3]) === bytes) {
      const units = Number(m[4]);
      const seconds = Number(m[5]);
      if (units > 0 && seconds > 0) return { units, seconds };
    }
  }
  throw new OpensslError(`no "Doing … on ${bytes} size blocks" line in openssl output: ${output.slice(0, 300)}`);
}

export interface OpensslOptions {
  bytes: number;
  /** Whole seconds per run (openssl accepts integers only). */
  seconds: number;
  /** Pin the openssl process to this CPU with taskset, when set. */
  cpu?: number;
}

/** The openssl command line of one run (for the report). */
export function opensslCommand(o: OpensslOptions): string[] {
  const args = ['openssl', 'speed', '-evp', 'aes-256-gcm', '-bytes', String(o.bytes), '-seconds', String(o.seconds)];
  args.push('-elapsed');
  return o.cpu === undefined ? args : ['taskset', '-c', String(o.cpu), ...args];
}

/** One run of openssl speed; throws OpensslError on failure. */
export function runOpensslSpeed(o: OpensslOptions): RoundSample {
  const [cmd, ...args] = opensslCommand(o) as [string, ...string[]];
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: (o.seconds + 30) * 1000 });
  if (r.error) throw new OpensslError(`${cmd} failed to run: ${r.error.message}`);
  if (r.status !== 0) throw new OpensslError(`${cmd} exited ${r.status}: ${(r.stderr || r.stdout).slice(0, 300)}`);
  // openssl prints the "Doing …" progress line on stderr and the table on stdout.
  return parseSpeed(`${r.stderr}\n${r.stdout}`, o.bytes);
}

/** openssl speed as an interleavable contestant (ignores the round duration it is given). */
export function opensslTimer(name: string, o: OpensslOptions): Timed {
  return { name, forks: true, round: () => runOpensslSpeed(o) };
}
