/**
 * A token worker thread (started by token-workers.ts): the PKCS#11 calls of
 * the `pkcs11` field backend, off the gateway's event loop. With a network
 * HSM each call is a round trip; here it holds only this thread.
 *
 * The worker loads the same module as the main thread, whose C_Initialize
 * it shares (PKCS#11 state is per process: the worker's own C_Initialize
 * answers CKR_CRYPTOKI_ALREADY_INITIALIZED, and it never finalises), so the
 * main thread's login and its transport key KT' (an object handle) are
 * valid here. The worker opens one R/W session of its own and runs one job
 * at a time on it, so a session is never used by two threads. A job that
 * fails closes the session (it may hold an active operation); the next job
 * opens another.
 *
 * Jobs (token-messages.ts): `seal` unwraps the 40-byte AES-KW blob under KT'
 * into a session key (sensitive, non-extractable, encrypt/decrypt only),
 * seals each plaintext with CKM_AES_GCM (96-bit IV from the token's RNG, its
 * AAD, 128-bit tag: nonce ‖ ct ‖ tag, byte for byte what the native module
 * writes) and destroys the key; `open` does the same per group of items
 * sharing a data key and opens them (a failed tag is that item's null). The
 * plaintexts come in one transferred buffer, zeroed here once sealed; opened
 * plaintexts go back the same way. Errors come back as the CK_RV and the
 * first line of pkcs11js's message, never data or keys.
 */
import { parentPort, workerData } from 'node:worker_threads';
import pkcs11js from 'pkcs11js';
import type { TokenJob, TokenReply, TokenWorkerData } from './token-messages.ts';
import {
  AES_KW,
  DATA_KEY_TEMPLATE,
  GCM_NONCE_BYTES,
  GCM_TAG_BYTES,
  gcm,
  logInAgain,
  loginState,
  type Pkcs11Lib,
  returnValue,
} from './token-sessions.ts';
import { installTransportKey, makeRsaPair } from './transport-key.ts';

const P = pkcs11js;

/** What a token reports for a GCM tag mismatch (SoftHSM2 uses the first). */
const TAG_FAILURE: ReadonlySet<number> = new Set([
  P.CKR_GENERAL_ERROR,
  P.CKR_ENCRYPTED_DATA_INVALID,
  P.CKR_ENCRYPTED_DATA_LEN_RANGE,
]);

/** A failure's message: the first line of a PKCS#11 error (step, CKR name), or this file's own checks; nothing else. */
function firstLine(err: unknown): string {
  const line = err instanceof Error ? (err.message.split('\n')[0] ?? '') : '';
  return returnValue(err) !== undefined || line.startsWith(OWN_CHECK) ? line : 'not a PKCS#11 error';
}

/** How this file's own failures start (see #sealOne). */
const OWN_CHECK = 'CKM_AES_GCM returned';

/** Runs jobs on the thread it was made on: a worker thread, or the event loop (`hsm.inline`). */
export class TokenWorker {
  readonly #lib: Pkcs11Lib;
  readonly #slot: Buffer;
  /** Whether close() unloads the module (a worker's own load; never the main thread's). */
  readonly #ownsLoad: boolean;
  #session: Buffer | undefined;
  /** Token calls that did crypto in the current job. */
  #ops = 0;

  constructor(lib: Pkcs11Lib, slot: Buffer, ownsLoad = true) {
    this.#lib = lib;
    this.#slot = slot;
    this.#ownsLoad = ownsLoad;
  }

  run(job: TokenJob): { reply: TokenReply; transfer: ArrayBuffer[] } {
    this.#ops = 0;
    try {
      // The transport key's set-up runs in the owner session the main thread opened, not in this worker's.
      if (job.op === 'rsa-pair') {
        const pair = makeRsaPair(this.#lib, Buffer.from(job.owner));
        return { reply: { id: job.id, ok: true, ops: 0, ...pair }, transfer: [] };
      }
      if (job.op === 'prepare') {
        const anchor = job.anchor ? Buffer.from(job.anchor) : undefined;
        const state = loginState(this.#lib, anchor);
        const owner = state.loggedIn
          ? this.#lib.C_OpenSession(this.#slot, P.CKF_SERIAL_SESSION | P.CKF_RW_SESSION)
          : null;
        return { reply: { id: job.id, ok: true, ops: 0, ...state, owner }, transfer: [] };
      }
      if (job.op === 'login') {
        const anchor = logInAgain(this.#lib, this.#slot, job.anchor ? Buffer.from(job.anchor) : undefined, job.pin);
        return { reply: { id: job.id, ok: true, ops: 0, anchor }, transfer: [] };
      }
      if (job.op === 'close-session') {
        try {
          this.#lib.C_CloseSession(Buffer.from(job.session));
        } catch {
          // already gone
        }
        return { reply: { id: job.id, ok: true, ops: 0, closed: true }, transfer: [] };
      }
      if (job.op === 'install-transport') {
        const pair = { publicKey: Buffer.from(job.publicKey), privateKey: Buffer.from(job.privateKey) };
        const object = installTransportKey(this.#lib, Buffer.from(job.owner), pair, Buffer.from(job.wrapped));
        return { reply: { id: job.id, ok: true, ops: 0, object }, transfer: [] };
      }
      this.#session ??= this.#lib.C_OpenSession(this.#slot, P.CKF_SERIAL_SESSION | P.CKF_RW_SESSION);
      const s = this.#session;
      if (job.op === 'seal') {
        const sealed = this.#seal(s, job.unwrapKey, job.wrapped, job.plaintexts, job.ends, job.aads);
        return { reply: { id: job.id, ok: true, ops: this.#ops, sealed }, transfer: [] };
      }
      const opened = this.#open(s, job.unwrapKey, job.groups, job.sealed, job.aads);
      return {
        reply: { id: job.id, ok: true, ops: this.#ops, opened: opened.data, at: opened.at, lengths: opened.lengths },
        transfer: [opened.data],
      };
    } catch (err) {
      // A set-up step's failure is the owner session's business (the main thread closes it), not this worker's.
      if (job.op === 'seal' || job.op === 'open') this.#dropSession();
      const rv = returnValue(err);
      return {
        reply: { id: job.id, ok: false, ops: this.#ops, message: firstLine(err), ...(rv !== undefined ? { rv } : {}) },
        transfer: [],
      };
    } finally {
      if (job.op === 'seal') new Uint8Array(job.plaintexts).fill(0);
    }
  }

  /** Each plaintext (`data[ends[i-1]..ends[i]]`) sealed under the data key `wrapped` carries. */
  #seal(
    s: Buffer,
    unwrapKey: Buffer,
    wrapped: Uint8Array,
    data: ArrayBuffer,
    ends: readonly number[],
    aads: readonly Uint8Array[],
  ): Uint8Array[] {
    const lib = this.#lib;
    const l4 = lib.C_UnwrapKey(s, AES_KW, unwrapKey, Buffer.from(wrapped), DATA_KEY_TEMPLATE);
    this.#ops++;
    try {
      const nonces = lib.C_GenerateRandom(s, Buffer.alloc(GCM_NONCE_BYTES * ends.length));
      const out: Uint8Array[] = new Array(ends.length);
      let from = 0;
      for (let i = 0; i < ends.length; i++) {
        const to = ends[i] as number;
        const pt = Buffer.from(data, from, to - from);
        const nonce = nonces.subarray(i * GCM_NONCE_BYTES, (i + 1) * GCM_NONCE_BYTES);
        out[i] = this.#sealOne(s, l4, nonce, Buffer.from(aads[i] as Uint8Array), pt);
        from = to;
      }
      return out;
    } finally {
      lib.C_DestroyObject(s, l4);
    }
  }

  /** nonce ‖ ct ‖ tag of one field. An empty plaintext takes C_EncryptFinal alone (SoftHSM refuses an empty C_Encrypt). */
  #sealOne(s: Buffer, l4: Buffer, nonce: Buffer, aad: Buffer, pt: Buffer): Buffer {
    const lib = this.#lib;
    const out = Buffer.alloc(GCM_NONCE_BYTES + pt.length + GCM_TAG_BYTES);
    nonce.copy(out, 0);
    lib.C_EncryptInit(s, gcm(out.subarray(0, GCM_NONCE_BYTES), aad), l4);
    this.#ops++;
    const body = out.subarray(GCM_NONCE_BYTES);
    const written = pt.length === 0 ? lib.C_EncryptFinal(s, body) : lib.C_Encrypt(s, pt, body);
    if (written.length !== body.length) {
      throw new Error(`CKM_AES_GCM returned ${written.length} bytes, expected ${body.length}`);
    }
    return out;
  }

  /**
   * Opens every item of every group (a group: the AES-KW blob of a data key,
   * or null when it did not re-wrap, and the items under it). Plaintexts go
   * into one buffer: item i's `lengths[i]` bytes at `at[i]`, or
   * `lengths[i] = -1` when it did not open.
   */
  #open(
    s: Buffer,
    unwrapKey: Buffer,
    groups: readonly { wrapped: Uint8Array | null; items: readonly number[] }[],
    sealed: readonly Uint8Array[],
    aads: readonly Uint8Array[],
  ): { data: ArrayBuffer; at: number[]; lengths: number[] } {
    const lib = this.#lib;
    // Item i's room (its ct ‖ tag length: SoftHSM wants that much) starts where the previous one's ends.
    const rooms = sealed.map((c) => Math.max(0, c.length - GCM_NONCE_BYTES));
    const starts: number[] = new Array(sealed.length);
    let total = 0;
    for (const [i, r] of rooms.entries()) {
      starts[i] = total;
      total += r;
    }
    const data = new ArrayBuffer(total);
    const lengths: number[] = new Array(sealed.length).fill(-1);
    try {
      for (const g of groups) {
        if (!g.wrapped) continue;
        const l4 = lib.C_UnwrapKey(s, AES_KW, unwrapKey, Buffer.from(g.wrapped), DATA_KEY_TEMPLATE);
        this.#ops++;
        try {
          for (const i of g.items) {
            const room = Buffer.from(data, starts[i] as number, rooms[i] as number);
            lengths[i] = this.#openOne(s, l4, sealed[i] as Uint8Array, aads[i] as Uint8Array, room);
          }
        } finally {
          lib.C_DestroyObject(s, l4);
        }
      }
    } catch (err) {
      new Uint8Array(data).fill(0);
      throw err;
    }
    return { data, at: starts, lengths };
  }

  /** Opens nonce ‖ ct ‖ tag into `room` (ct ‖ tag long): the plaintext's length, or -1 when too short or its tag fails. */
  #openOne(s: Buffer, l4: Buffer, sealed: Uint8Array, aad: Uint8Array, room: Buffer): number {
    if (sealed.length < GCM_NONCE_BYTES + GCM_TAG_BYTES) return -1;
    const lib = this.#lib;
    const blob = Buffer.from(sealed);
    const body = blob.subarray(GCM_NONCE_BYTES);
    lib.C_DecryptInit(s, gcm(blob.subarray(0, GCM_NONCE_BYTES), Buffer.from(aad)), l4);
    this.#ops++;
    try {
      if (body.length === GCM_TAG_BYTES) {
        // SoftHSM refuses an empty single-part call: feed the tag, then finish (which checks it).
        lib.C_DecryptUpdate(s, body, Buffer.alloc(GCM_TAG_BYTES));
        lib.C_DecryptFinal(s, Buffer.alloc(GCM_TAG_BYTES));
        return 0;
      }
      // SoftHSM wants room for ct ‖ tag, and writes the plaintext only.
      return lib.C_Decrypt(s, body, room).length;
    } catch (err) {
      const rv = returnValue(err);
      if (rv !== undefined && TAG_FAILURE.has(rv)) return -1;
      throw err;
    }
  }

  #dropSession(): void {
    const s = this.#session;
    this.#session = undefined;
    if (!s) return;
    try {
      this.#lib.C_CloseSession(s);
    } catch {
      // already gone (device removed, C_CloseAllSessions)
    }
  }

  /** Whether it holds its operation session now (opened by its first request job, dropped after a failure). */
  get hasSession(): boolean {
    return this.#session !== undefined;
  }

  /** Closes the session and unloads the module when it loaded it (never C_Finalize: the main thread owns the initialisation). */
  close(): void {
    this.#dropSession();
    if (this.#ownsLoad) this.#lib.close();
  }
}

/** Loads the module and checks that it shares the main thread's initialisation. */
function start(data: TokenWorkerData): TokenWorker {
  const lib = new P.PKCS11();
  lib.load(data.module);
  try {
    lib.C_Initialize({ flags: P.CKF_OS_LOCKING_OK });
  } catch (err) {
    if (returnValue(err) === P.CKR_CRYPTOKI_ALREADY_INITIALIZED) return new TokenWorker(lib, data.slot);
    lib.close();
    throw err;
  }
  // A module that initialises again in a thread does not share the main thread's login and objects.
  lib.C_Finalize();
  lib.close();
  throw new Error('the PKCS#11 module does not share its initialisation between threads');
}

const port = parentPort;
if (port) {
  let worker: TokenWorker | undefined;
  try {
    worker = start(workerData as TokenWorkerData);
    port.postMessage({ ready: true });
  } catch (err) {
    port.postMessage({ ready: false, message: firstLine(err) });
  }
  port.on('message', (job: TokenJob | { op: 'close' }) => {
    if (job.op === 'close') {
      worker?.close();
      port.close();
      return;
    }
    if (!worker) {
      port.postMessage({ id: job.id, ok: false, ops: 0, message: 'the token worker did not start' });
      return;
    }
    const { reply, transfer } = worker.run(job);
    port.postMessage({ ...reply, session: worker.hasSession }, transfer);
  });
}
