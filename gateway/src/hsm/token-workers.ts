/**
 * The token worker threads of the `pkcs11` backend (token-worker.ts runs in
 * each): the main thread posts a job and awaits its reply, so no PKCS#11
 * call of a request runs on the event loop. Each worker has one session and
 * runs one job at a time; a job goes to the worker with the fewest jobs
 * waiting. A worker that dies fails its jobs (`hsm_unavailable`) and is
 * replaced on the next job. close() lets the workers close their sessions
 * and unload the module before the main thread finalises it.
 *
 * Inline (`hsm.inline`), the same job code runs on the calling thread with
 * the main thread's module and one session: no thread hop, lower latency
 * with an in-process token (SoftHSM2), but every call holds the event loop.
 */
import { Worker } from 'node:worker_threads';
import { KcmError } from '../../../common/src/errors.ts';
import type { OpenJob, SealJob, TokenReply, TokenWorkerData } from './token-messages.ts';
import type { Pkcs11Lib } from './token-sessions.ts';
import { TokenWorker } from './token-worker.ts';

/** The entry script: registers the TypeScript loader in the thread, then loads token-worker.ts. */
const ENTRY = new URL('./token-worker-entry.mjs', import.meta.url);
/** How long close() waits for a worker to stop by itself before terminating it. */
const CLOSE_WAIT_MS = 2000;

type Job = Omit<SealJob, 'id'> | Omit<OpenJob, 'id'>;

interface Slot {
  worker: Worker;
  /** Jobs posted and not answered, by id. */
  pending: Map<number, { resolve(r: TokenReply): void; reject(e: Error): void }>;
  /** Settles when the worker said whether it started. */
  ready: Promise<void>;
  exited: Promise<void>;
  dead: boolean;
}

export class TokenWorkers {
  readonly #data: TokenWorkerData;
  readonly #slots: Slot[];
  /** Set when jobs run on the calling thread. */
  readonly #inline: TokenWorker | undefined;
  #nextId = 1;
  #closed = false;

  /**
   * Starts `mode` workers on the module and slot of `data`, or runs jobs on
   * the calling thread with `mode.inline` (the main thread's loaded,
   * initialised module); await started() before use.
   */
  constructor(data: TokenWorkerData, mode: number | { inline: Pkcs11Lib }) {
    this.#data = data;
    if (typeof mode === 'number') {
      this.#slots = Array.from({ length: mode }, () => this.#spawn());
    } else {
      this.#slots = [];
      this.#inline = new TokenWorker(mode.inline, data.slot, false);
    }
  }

  /** Resolves once every worker loaded the module; rejects with `hsm_unavailable` when one could not. */
  async started(): Promise<void> {
    await Promise.all(this.#slots.map((s) => s.ready));
  }

  /** Workers running now (each with at most one session open); 1 inline. */
  get size(): number {
    return this.#inline && !this.#closed ? 1 : this.#slots.filter((s) => !s.dead).length;
  }

  /** Runs `job` on a worker; rejects with `hsm_unavailable` when the worker dies or the pool is closed. */
  run(job: Omit<SealJob, 'id'>, transfer?: ArrayBuffer[]): Promise<Extract<TokenReply, { sealed: unknown }> | Failed>;
  run(job: Omit<OpenJob, 'id'>, transfer?: ArrayBuffer[]): Promise<Extract<TokenReply, { opened: unknown }> | Failed>;
  run(job: Job, transfer: ArrayBuffer[] = []): Promise<TokenReply> {
    if (this.#closed) return Promise.reject(new KcmError('hsm_unavailable', 'the token is closed'));
    if (this.#inline) return Promise.resolve(this.#inline.run({ ...job, id: 0 } as SealJob | OpenJob).reply);
    let slot = this.#slots[0] as Slot;
    for (const [i, s] of this.#slots.entries()) {
      if (s.dead) this.#slots[i] = this.#spawn();
      const c = this.#slots[i] as Slot;
      if (c.pending.size < slot.pending.size || slot.dead) slot = c;
    }
    const id = this.#nextId++;
    return new Promise<TokenReply>((resolve, reject) => {
      slot.pending.set(id, { resolve, reject });
      // Held while a job is out (a test or a CLI awaiting a token call has nothing else keeping the process up).
      slot.worker.ref();
      slot.worker.postMessage({ ...job, id }, transfer);
    });
  }

  /** Asks every worker to close its session and unload the module, then waits for them (terminating laggards). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#inline?.close();
    await Promise.all(
      this.#slots.map(async (s) => {
        if (s.dead) return;
        s.worker.postMessage({ op: 'close' });
        const timer = setTimeout(() => void s.worker.terminate(), CLOSE_WAIT_MS);
        await s.exited;
        clearTimeout(timer);
      }),
    );
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
    const slot: Slot = { worker, pending, ready, exited: Promise.resolve(), dead: false };
    const die = (why: string) => {
      if (slot.dead) return;
      slot.dead = true;
      const err = new KcmError('hsm_unavailable', `token worker: ${why}`);
      failed?.(err);
      for (const p of pending.values()) p.reject(err);
      pending.clear();
    };
    slot.exited = new Promise((resolve) => {
      worker.once('exit', (code) => {
        die(this.#closed ? 'the token is closed' : `stopped (exit code ${code})`);
        resolve();
      });
    });
    worker.on('error', (err) => die(err.message.split('\n')[0] ?? 'failed'));
    worker.on('message', (m: TokenReply | { ready: boolean; message?: string }) => {
      if ('ready' in m) {
        if (pending.size === 0) worker.unref();
        if (m.ready) started?.();
        else {
          die(`cannot use the module: ${m.message ?? ''}`);
          void worker.terminate();
        }
        return;
      }
      const p = pending.get(m.id);
      if (!p) {
        // Its job was failed already (the worker died meanwhile): nobody reads these plaintexts.
        if ('opened' in m) new Uint8Array(m.opened).fill(0);
        return;
      }
      pending.delete(m.id);
      if (pending.size === 0) worker.unref();
      p.resolve(m);
    });
    // Held until it said whether it started, then only while a job is out: an idle pool must not keep the process alive.
    return slot;
  }
}

/** A job's failure reply. */
export type Failed = Extract<TokenReply, { ok: false }>;
