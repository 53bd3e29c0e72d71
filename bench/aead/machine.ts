/**
 * Machine facts and CPU pinning for the AEAD benchmark.
 *
 * Contract:
 *  - {@link machineFacts} never throws; unknown values are "unknown".
 *  - {@link pinMainThread} pins only the calling process's main thread (the
 *    one that runs every in-process contestant) to one CPU with
 *    `taskset -cp CPU PID`, and confirms it through /proc/self/status. V8's
 *    GC and libuv helper threads are left free, as they are in production.
 *    It never throws: it returns whether pinning happened and why not.
 *    openssl speed is then pinned to the same CPU (see openssl-speed.ts).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';

export interface MachineFacts {
  cpuModel: string;
  nproc: number;
  node: string;
  /** OpenSSL bundled in node (process.versions.openssl): what node:crypto and the native module use. */
  nodeOpenssl: string;
  platform: string;
}

export function machineFacts(): MachineFacts {
  let cpuModel = 'unknown';
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m?.[1]) cpuModel = m[1].trim();
  } catch {
    // not Linux: keep "unknown"
  }
  return {
    cpuModel,
    nproc: availableParallelism(),
    node: process.version,
    nodeOpenssl: process.versions.openssl ?? 'unknown',
    platform: `${process.platform}-${process.arch}`,
  };
}

export interface PinResult {
  pinned: boolean;
  /** The CPU the main thread (and openssl) run on, when pinned. */
  cpu?: number;
  /** Human-readable account, for the report. */
  note: string;
}

/** The CPUs this process may run on, from /proc/self/status (Linux), or null. */
export function allowedCpus(): number[] | null {
  try {
    const m = /^Cpus_allowed_list:\s*(.+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (!m?.[1]) return null;
    const cpus: number[] = [];
    for (const part of m[1].trim().split(',')) {
      const [a, b] = part.split('-').map(Number) as [number, number | undefined];
      for (let c = a; c <= (b ?? a); c++) cpus.push(c);
    }
    return cpus;
  } catch {
    return null;
  }
}

/** Pins the main thread to `cpu` (default: the highest allowed CPU). */
export function pinMainThread(cpu?: number): PinResult {
  const which = spawnSync('taskset', ['--version'], { encoding: 'utf8' });
  if (which.error) return { pinned: false, note: `not pinned: taskset unavailable (${which.error.message})` };
  const before = allowedCpus();
  if (!before) return { pinned: false, note: 'not pinned: cannot read /proc/self/status' };
  const target = cpu ?? before[before.length - 1];
  if (target === undefined || !before.includes(target)) {
    return { pinned: false, note: `not pinned: CPU ${cpu} not in allowed set ${before.join(',')}` };
  }
  const r = spawnSync('taskset', ['-cp', String(target), String(process.pid)], { encoding: 'utf8' });
  if (r.status !== 0) return { pinned: false, note: `not pinned: taskset failed: ${(r.stderr || '').trim()}` };
  const after = allowedCpus();
  if (after?.length !== 1 || after[0] !== target) {
    return { pinned: false, note: `not pinned: affinity is ${after?.join(',')} after taskset` };
  }
  return {
    pinned: true,
    cpu: target,
    note: `main thread and openssl pinned to CPU ${target} (taskset); node helper threads unpinned`,
  };
}
