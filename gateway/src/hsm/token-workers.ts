/**
 * The token worker threads of the `pkcs11` backend (token-worker.ts runs in
 * each): the main thread posts a job and awaits its reply, so no PKCS#11
 * call of a request runs on the event loop. Each worker has one session and
 * runs one job at a time; a job goes to the worker with the fewest jobs
 * waiting. A worker that dies fails its jobs (`hsm_unavailable`) and is
 * replaced on the next job. close() lets the workers close their sessions
 * and unload the module before the main thread finalises it.
 *
 * A job that runs longer than its timeout (`timeoutMs`, counted from when
 * its worker starts it: time queued behind other jobs or while a worker
 * starts does not count) fails with `hsm_unavailable`, and so do the other
 * jobs of its worker, which is given up and replaced at once, so requests
 * are answered in bounded time and the token route recovers when the HSM
 * does. A thread
 * blocked inside the module cannot be stopped; it ends when the call
 * returns, and close() waits for it (bounded) before the module is
 * finalised, or reports that it could not.
 *
 * Inline (`hsm.inline`), the same job code runs on the calling thread with
 * the main thread's module and one session: no thread hop, lower latency
 * with an in-process token (SoftHSM2), but every call holds the event loop.
 */
import { Worker } from 'node:worker_threads';
import { KcmError } from '../../../common/src/errors.ts';
import type { TokenJob, TokenReply, TokenWorkerData } from './token-messages.ts';
import type { Pkcs11Lib } from './token-sessions.ts';
import { TokenWorker } from './token-worker.ts';
import { TokenWorkerGivenUp } from './token-worker-given-up.ts';

/** The entry script: registers the TypeScript loader in the thread, then loads token-worker.ts. */
const ENTRY = new URL('./token-worker-entry.cjs', import.meta.url);
/** How long close() waits for a worker to stop by itself before terminating it. */
const CLOSE_WAIT_MS = 2000;
/** The least time a worker may take to load the module and start, by default. */
const START_TIMEOUT_MS = 30_000;

/** A job as callers give it: any TokenJob without its id (the pool numbers them). */
type Job = WithoutId<TokenJob>;
type WithoutId<J> = J extends unknown ? Omit<J, 'id'> : never;

/** Threads of every pool given up while inside the module (see stuckTokenThreads). */
const stuck = new Set<Slot>();

/**
 * Token worker threads in this process that were given up (a deadline
 * passed, or a close could not wait longer) and are still inside the
 * module. Node joins every thread before the process exits, so while this
 * is not 0 the process cannot end by itself: `kcm gateway` ends itself with
 * SIGKILL then, once everything else is closed.
 */
export function stuckTokenThreads(): number {
  return stuck.size;
}

interface Pending {
  resolve(r: TokenReply): void;
  reject(e: Error): void;
  /** How long it may run once the worker starts it. */
  timeoutMs: number;
}

interface Slot {
  worker: Worker;
  /** Jobs posted and not answered, by id, in the order the worker runs them. */
  pending: Map<number, Pending>;
  /** The worker loaded the module and runs jobs. */
  started: boolean;
  /** It holds its operation session (as its last reply said). */
  session: boolean;
  /** The deadline of the job the worker is running (the first pending one), once started; before, of its start. */
  timer: NodeJS.Timeout | undefined;
  /** Settles when the worker said whether it started. */
  ready: Promise<void>;
  /** Settles when the thread has ended. */
  exited: Promise<void>;
  /** The thread has ended. */
  gone: boolean;
  /** No more jobs: it stopped, failed or was given up; its pending jobs were failed. */
  dead: boolean;
  /** Marks it dead and fails its pending jobs with `hsm_unavailable` (`why`; as TokenWorkerGivenUp when `givenUp`). */
  die(why: string, givenUp?: boolean): void;
}

/** How the pool runs its jobs. */
export interface TokenWorkersOptions {
  /** Worker threads (≥ 1). */
  workers: number;
  /** How long a job may take before it fails and its worker is given up. */
  timeoutMs: number;
  /** The least time a worker may take to load the module and start (default 30 s; lower only in tests). */
  startTimeoutMs?: number;
}

export class TokenWorkers {
  readonly #data: TokenWorkerData;
  readonly #slots: Slot[];
  /** Workers given up while inside a token call: their threads have not ended yet. */
  readonly #lingering = new Set<Slot>();
  readonly #timeoutMs: number;
  readonly #startTimeoutMs: number;
  /** Set when jobs run on the calling thread. */
  readonly #inline: TokenWorker | undefined;
  #nextId = 1;
  #closed = false;
  /** Jobs that ran past their deadline (each gave its worker up). */
  #timeouts = 0;

  /**
   * Starts `mode.workers` workers on the module and slot of `data`, or runs
   * jobs on the calling thread with `mode.inline` (the main thread's loaded,
   * initialised module; no timeout can apply); await started() before use.
   */
  constructor(data: TokenWorkerData, mode: TokenWorkersOptions | { inline: Pkcs11Lib }) {
    this.#data = data;
    if ('workers' in mode) {
      this.#timeoutMs = mode.timeoutMs;
      this.#startTimeoutMs = Math.max(mode.timeoutMs, mode.startTimeoutMs ?? START_TIMEOUT_MS);
      this.#slots = Array.from({ length: mode.workers }, () => this.#spawn());
    } else {
      this.#timeoutMs = 0;
      this.#startTimeoutMs = 0;
      this.#slots = [];
      this.#inline = new TokenWorker(mode.inline, data.slot, false);
    }
  }

  /** Resolves once every worker loaded the module; rejects with `hsm_unavailable` when one could not. */
  async started(): Promise<void> {
    await Promise.all(this.#slots.map((s) => s.ready));
  }

  /** Operation sessions the workers (or the inline runner) hold open now. */
  get sessions(): number {
    if (this.#closed) return 0;
    if (this.#inline) return this.#inline.hasSession ? 1 : 0;
    return this.#slots.filter((s) => !s.dead && s.session).length;
  }

  /** How long a request's token job may run (0 inline: nothing can interrupt it). */
  get timeoutMs(): number {
    return this.#timeoutMs;
  }

  /** Jobs that ran past their deadline since start. */
  get timeouts(): number {
    return this.#timeouts;
  }

  /** Threads of workers given up (timed out) still blocked in the module. */
  get lingering(): number {
    return this.#lingering.size;
  }

  /**
   * Runs `job` on a worker (its reply, to be narrowed by the caller);
   * rejects with `hsm_unavailable` when the worker dies or times out, or the
   * pool is closed. `transfer`: buffers handed over with it; `timeoutMs`:
   * its deadline (default the pool's).
   */
  run(job: Job, transfer: ArrayBuffer[] = [], timeoutMs = this.#timeoutMs): Promise<TokenReply> {
    if (this.#closed) return Promise.reject(new KcmError('hsm_unavailable', 'the token is closed'));
    if (this.#inline) return Promise.resolve(this.#inline.run({ ...job, id: 0 } as TokenJob).reply);
    let slot = this.#slots[0] as Slot;
    for (const [i, s] of this.#slots.entries()) {
      if (s.dead) this.#slots[i] = this.#spawn();
      const c = this.#slots[i] as Slot;
      if (c.pending.size < slot.pending.size || slot.dead) slot = c;
    }
    const id = this.#nextId++;
    return new Promise<TokenReply>((resolve, reject) => {
      slot.pending.set(id, { resolve, reject, timeoutMs });
      // Held while a job is out (a test or a CLI awaiting a token call has nothing else keeping the process up).
      slot.worker.ref();
      slot.worker.postMessage({ ...job, id }, transfer);
      if (slot.pending.size === 1) this.#arm(slot);
    });
  }

  /** Starts the deadline of the job `slot` runs now (its first pending one), if its worker has started. */
  #arm(slot: Slot): void {
    // Before the worker started, the timer is its start deadline (see #spawn): left alone.
    if (!slot.started || slot.dead) return;
    clearTimeout(slot.timer);
    slot.timer = undefined;
    const first = slot.pending.entries().next();
    if (first.done) return;
    const [id, p] = first.value;
    slot.timer = setTimeout(() => this.#giveUp(slot, id, p.timeoutMs), p.timeoutMs);
    slot.timer.unref();
  }

  /** Job `id` of `slot` ran too long: it and the worker's other jobs fail, and the worker is given up. */
  #giveUp(slot: Slot, id: number, timeoutMs: number): void {
    if (!slot.pending.has(id) || slot.dead) return;
    this.#timeouts++;
    this.#abandon(slot, `no answer from the token within ${timeoutMs} ms`);
    // Its replacement starts now (loading the module takes a while), not when the next job comes.
    const i = this.#slots.indexOf(slot);
    if (i >= 0 && !this.#closed) this.#slots[i] = this.#spawn();
  }

  /** Gives `slot` up: its jobs fail (TokenWorkerGivenUp), its thread is terminated and counted stuck until it ends. */
  #abandon(slot: Slot, why: string): void {
    slot.die(why, true);
    if (!slot.gone) {
      this.#lingering.add(slot);
      stuck.add(slot);
    }
    // Ends the thread once the call it is blocked in returns (a thread cannot be stopped inside native code).
    void slot.worker.terminate();
  }

  /**
   * Asks every worker to close its session and unload the module, and waits
   * (up to 2 s, then terminating it) for each thread to end, workers given
   * up included. Resolves false when a thread may still be inside the
   * module (a token call that never returned): the caller must then neither
   * finalise nor unload the module.
   */
  async close(): Promise<boolean> {
    if (this.#closed) return true;
    this.#closed = true;
    this.#inline?.close();
    const all = new Set([...this.#slots, ...this.#lingering]);
    await Promise.all(
      [...all].map(async (s) => {
        if (!s.dead) s.worker.postMessage({ op: 'close' });
        let timer: NodeJS.Timeout | undefined;
        const waited = new Promise<void>((r) => {
          timer = setTimeout(r, CLOSE_WAIT_MS);
        });
        await Promise.race([s.exited, waited]);
        clearTimeout(timer);
        if (s.gone) return;
        this.#abandon(s, 'the token is closed');
        // A thread between two calls ends at once; one inside a call only when it returns.
        await Promise.race([s.exited, new Promise((r) => setTimeout(r, 100))]);
      }),
    );
    return [...all].every((s) => s.gone);
  }

  #spawn(): Slot {
    const worker = new Worker(ENTRY, { workerData: this.#data, execArgv: [] });
    const pending: Slot['pending'] = new Map();
    let started: (() => void) | undefined;
    let failed: ((e: Error) => void) | undefined;
    const ready = new Promise<void>((resolve, reject) => {
      started = resolve;
      failed = reject;
    });
    // Nobody may await ready (a worker replaced mid-run): its failure still reaches the jobs.
    ready.catch(() => {});
    const slot: Slot = {
      worker,
      pending,
      ready,
      exited: Promise.resolve(),
      gone: false,
      dead: false,
      started: false,
      session: false,
      timer: undefined,
      die: (why, givenUp) => {
        if (slot.dead) return;
        slot.dead = true;
        clearTimeout(slot.timer);
        // A thread given up may stay blocked in the module for long: it must not keep the process alive.
        worker.unref();
        const message = `token worker: ${why}`;
        const err = givenUp ? new TokenWorkerGivenUp(message, slot.exited) : new KcmError('hsm_unavailable', message);
        failed?.(err);
        for (const p of pending.values()) p.reject(err);
        pending.clear();
      },
    };
    slot.exited = new Promise((resolve) => {
      worker.once('exit', (code) => {
        slot.gone = true;
        this.#lingering.delete(slot);
        stuck.delete(slot);
        slot.die(this.#closed ? 'the token is closed' : `stopped (exit code ${code})`);
        resolve();
      });
    });
    worker.on('error', (err) => slot.die(err.message.split('\n')[0] ?? 'failed'));
    worker.on('message', (m: TokenReply | { ready: boolean; message?: string }) => {
      if ('ready' in m) {
        if (pending.size === 0) worker.unref();
        if (m.ready) {
          slot.started = true;
          clearTimeout(slot.timer);
          slot.timer = undefined;
          started?.();
          this.#arm(slot);
        } else {
          slot.die(`cannot use the module: ${m.message ?? ''}`);
          void worker.terminate();
        }
        return;
      }
      const p = pending.get(m.id);
      if (!p) {
        // Its job was failed already (the worker died or timed out meanwhile): nobody reads these plaintexts.
        if ('opened' in m) new Uint8Array(m.opened).fill(0);
        return;
      }
      slot.session = m.session === true;
      pending.delete(m.id);
      if (pending.size === 0) worker.unref();
      // The worker goes on with the next job now.
      this.#arm(slot);
      p.resolve(m);
    });
    // A module whose load or C_Initialize never returns (a hung client library) must not hold jobs forever.
    const startMs = this.#startTimeoutMs;
    slot.timer = setTimeout(() => {
      if (!slot.started && !slot.dead) this.#abandon(slot, `did not load the module within ${startMs} ms`);
    }, startMs);
    slot.timer.unref();
    // Held until it said whether it started, then only while a job is out: an idle pool must not keep the process alive.
    return slot;
  }
}

/** A job's failure reply. */
export type Failed = Extract<TokenReply, { ok: false }>;
