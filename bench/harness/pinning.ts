/**
 * Where the servers and the load generator run. With taskset and at least two
 * allowed CPUs: every server process (gateway, baselines, peers, nginx) is
 * started under `taskset -c <server CPU>` (all its threads), and the load
 * generator pins its own main thread to the load CPU (`taskset -cp`; its
 * libuv/V8 helper threads stay free, see bench/aead/machine.ts). Otherwise
 * nothing is pinned and the report says why.
 */
import { spawnSync } from 'node:child_process';
import { allowedCpus, pinMainThread } from '../aead/machine.ts';

export interface Pinning {
  /** CPU of the servers, when pinned. */
  serverCpu?: number;
  /** CPU of the load generator's main thread, when pinned. */
  loadCpu?: number;
  /** CPUs the hiccup meter watches (the two above, or every allowed CPU). */
  watchCpus: number[];
  note: string;
}

function tasksetWorks(): boolean {
  return spawnSync('taskset', ['--version']).error === undefined;
}

/** Decides the placement and pins this process's main thread (never throws). */
export function setUpPinning(disabled: boolean): Pinning {
  const cpus = allowedCpus() ?? [];
  if (disabled) return { watchCpus: cpus.length > 0 ? cpus : [0], note: 'not pinned (--no-pin)' };
  if (!tasksetWorks()) return { watchCpus: cpus.length > 0 ? cpus : [0], note: 'not pinned: taskset unavailable' };
  if (cpus.length < 2) {
    return { watchCpus: cpus.length > 0 ? cpus : [0], note: `not pinned: only CPU(s) ${cpus.join(',')} allowed` };
  }
  const serverCpu = cpus[0] as number;
  const loadCpu = cpus[1] as number;
  const self = pinMainThread(loadCpu);
  if (!self.pinned) return { watchCpus: [serverCpu, loadCpu], note: `not pinned: ${self.note}` };
  return {
    serverCpu,
    loadCpu,
    watchCpus: [serverCpu, loadCpu],
    note: `servers (whole process) on CPU ${serverCpu} (taskset -c); load generator main thread on CPU ${loadCpu} (taskset -cp; its helper threads unpinned); ${cpus.length} CPUs allowed`,
  };
}

/** `cmd args` wrapped in `taskset -c cpu` when `cpu` is set. */
export function pinnedCommand(cpu: number | undefined, cmd: string, args: readonly string[]): [string, string[]] {
  return cpu === undefined ? [cmd, [...args]] : ['taskset', ['-c', String(cpu), cmd, ...args]];
}
