/**
 * CPU time a server process tree has used (ns), from /proc: the first field of
 * /proc/<pid>/task/<tid>/schedstat (time on CPU) summed over every thread of
 * the process and of its children (nginx's worker). CPU time per request is
 * far less sensitive to other load on the machine than wall-clock throughput:
 * a server that waits for the CPU does not accumulate CPU time while waiting.
 * The second field (time spent runnable but waiting for a CPU) is summed the
 * same way: a direct measure of how much other load delayed the server.
 * Returns NaN where /proc is unavailable.
 */
import { readdirSync, readFileSync } from 'node:fs';

export interface CpuSample {
  /** ns on a CPU */
  run: number;
  /** ns runnable but waiting for a CPU */
  wait: number;
}

function tasksCpu(pid: number, acc: CpuSample): void {
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const f = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ');
      acc.run += Number(f[0]);
      acc.wait += Number(f[1]);
    } catch {
      // the thread ended between readdir and read
    }
  }
}

function children(pid: number): number[] {
  const out: number[] = [];
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const text = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim();
      if (text) out.push(...text.split(/\s+/).map(Number));
    }
  } catch {
    // no children file (old kernel) or the process ended
  }
  return out;
}

function walk(pid: number, acc: CpuSample): void {
  tasksCpu(pid, acc);
  for (const c of children(pid)) walk(c, acc);
}

/** CPU and run-queue wait (ns) of `pid` and its descendants so far. */
export function treeCpu(pid: number): CpuSample {
  const acc = { run: 0, wait: 0 };
  try {
    walk(pid, acc);
    return acc;
  } catch {
    return { run: Number.NaN, wait: Number.NaN };
  }
}
