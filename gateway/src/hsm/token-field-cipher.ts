/**
 * Field AEAD inside the PKCS#11 token: the envelope operations of an L3
 * KeyHandle (KeyHandle.withEnvelope), so encryptFields / decryptFields
 * (common/src/crypto/field-cipher.ts) run unchanged and write the same
 * SPEC.md §5 envelope.
 *
 * Encrypt, per request: one native call (on the event loop: microseconds)
 * makes the fresh L4 data key and returns it wrapped under L3 (AES-256-GCM:
 * the envelope's wrapped key) and under the transport key KT (AES-KW, 40
 * bytes); a token worker thread (token-worker.ts) unwraps the latter under
 * KT' into a session key, seals each field with CKM_AES_GCM and destroys
 * it. The plaintexts travel to the worker in one transferred buffer, which
 * it zeroes.
 *
 * Decrypt: one native call re-wraps each distinct wrapped key from L3 to KT
 * (never in clear); the worker unwraps each and opens its fields. A field
 * whose tag fails is that item's `null`; any other token failure rejects the
 * call with KcmError `hsm_unavailable` (the worker drops its session), and
 * when the login or the key objects are gone, the transport key is set up
 * again on the next call.
 *
 * Every PKCS#11 call after start-up runs on a worker: a request's, the
 * transport key's set-up (login check, logging in again, owner session,
 * transport-key.ts steps) and closing a lost key's owner session. The
 * event loop keeps only the native wraps (microseconds).
 */
import { KcmError } from '../../../common/src/errors.ts';
import type { Crypto, EnvelopeEngine, KeyHandle } from '../../../native/index.ts';
import type { TokenReply } from './token-messages.ts';
import { SESSION_LOST, type TokenSessions } from './token-sessions.ts';
import { TokenWorkerGivenUp } from './token-worker-given-up.ts';
import type { Failed, TokenWorkers } from './token-workers.ts';
import { setUpTransportKey, type TransportKey, type TransportSteps } from './transport-key.ts';

/** A job as the pool takes it (token-workers.ts). */
type SetUpJob = Parameters<TokenWorkers['run']>[0];

function asBuffer(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

/** The least time a transport key set-up step may take by default (RSA-2048 generation in an HSM can take seconds). */
const SET_UP_TIMEOUT_MS = 30_000;

/** Token operations and failures, for /metrics. */
export interface TokenCounters {
  /** Token calls that did crypto: data-key unwraps and per-field GCM operations. */
  operations: number;
  /** Calls that failed with a token error (not tag failures). */
  errors: number;
}

/** The envelope engine over one token; see the file comment. */
export class TokenFieldCipher implements EnvelopeEngine {
  readonly counters: TokenCounters = { operations: 0, errors: 0 };
  readonly #token: TokenSessions;
  readonly #workers: TokenWorkers;
  readonly #crypto: Crypto;
  #transport: TransportKey | undefined;
  /** The set-up under way, shared by the callers that need the key meanwhile. */
  #settingUp: Promise<TransportKey> | undefined;
  /** The close of a lost key's owner session, when one is under way. */
  #closingOwner: Promise<void> | undefined;
  readonly #setUpFloorMs: number;

  /**
   * `crypto` must be the backend of the L3 keys this cipher serves; `workers`
   * run on `token`'s module and slot. `setUpTimeoutMs`: the least time a
   * set-up step may take (default 30 s; lower only in tests).
   */
  constructor(token: TokenSessions, workers: TokenWorkers, crypto: Crypto, setUpTimeoutMs = SET_UP_TIMEOUT_MS) {
    this.#token = token;
    this.#workers = workers;
    this.#crypto = crypto;
    this.#setUpFloorMs = setUpTimeoutMs;
  }

  /**
   * The transport key, set up on first use (logging in again if the token
   * logged out): its token steps run as jobs (on a token worker), and
   * concurrent callers share one set-up. Rejects with `hsm_unavailable`.
   */
  transport(): Promise<TransportKey> {
    if (this.#transport) return Promise.resolve(this.#transport);
    this.#settingUp ??= this.#setUp().finally(() => {
      this.#settingUp = undefined;
    });
    return this.#settingUp;
  }

  async #setUp(): Promise<TransportKey> {
    try {
      // A lost key's owner session is closed before a new one may be opened (see #closeOwner).
      const closing = this.#closingOwner;
      this.#closingOwner = undefined;
      await closing;
      const t = await setUpTransportKey(await this.#ownerSession(), this.#steps, this.#crypto);
      this.#transport = t;
      return t;
    } catch (err) {
      this.counters.errors++;
      throw err;
    }
  }

  /**
   * The owner session of a set-up, opened by a worker once it found the user
   * logged in; when the token logged out (or lost the anchor session), a
   * worker logs in again first, with the PIN read again from its source.
   */
  async #ownerSession(): Promise<Buffer> {
    const token = this.#token;
    let p = await this.#prepare();
    if (!p.loggedIn) {
      const pin = token.readPin();
      if (!pin) throw new KcmError('hsm_unavailable', 'the token logged out and the PIN cannot be read again');
      const job = { op: 'login', anchor: p.anchorValid ? (token.anchor ?? null) : null, pin } as const;
      const r = await this.#setUpJob(job, 'login');
      if (!r.ok) throw new KcmError('hsm_unavailable', `login: ${r.message}`);
      if (!('anchor' in r)) throw new KcmError('internal_error', 'token worker: a login job answered as another job');
      token.replaceAnchor(asBuffer(r.anchor));
      p = await this.#prepare();
      if (!p.loggedIn) throw new KcmError('hsm_unavailable', 'login: the token did not keep the login');
    }
    const owner = asBuffer(p.owner as Uint8Array);
    token.adopt(owner);
    return owner;
  }

  /** Asks a worker whether the user is logged in; when so, it opens an owner session (`owner`). */
  async #prepare(): Promise<{ loggedIn: boolean; anchorValid: boolean; owner: Uint8Array | null }> {
    const r = await this.#setUpJob({ op: 'prepare', anchor: this.#token.anchor ?? null }, 'login check');
    if (!r.ok) throw new KcmError('hsm_unavailable', `login check: ${r.message}`);
    if (!('loggedIn' in r) || (r.loggedIn && !r.owner)) {
      throw new KcmError('internal_error', 'token worker: a prepare job answered as another job');
    }
    return r;
  }

  /**
   * Closes an owner session on a worker (best effort), unless it is no
   * longer in the token's set (closed already). The next set-up waits for
   * it: PKCS#11 may hand the same handle number to a new session, which a
   * late close would then close.
   */
  #closeOwner(owner: Buffer): void {
    if (!this.#token.forget(owner)) return;
    const closing = this.#workers.run({ op: 'close-session', session: owner }).then(
      () => {},
      () => {},
    );
    this.#closingOwner = this.#closingOwner ? this.#closingOwner.then(() => closing) : closing;
  }

  /** The set-up's token steps as jobs of the workers (failures as `hsm_unavailable` naming the step). */
  readonly #steps: TransportSteps = {
    makeRsaPair: async (owner) => {
      const r = await this.#setUpJob({ op: 'rsa-pair', owner }, 'transport key set-up');
      if (!r.ok) throw new KcmError('hsm_unavailable', `transport key set-up: ${r.message}`);
      if (!('spki' in r)) throw new KcmError('internal_error', 'token worker: a set-up job answered as another job');
      return { publicKey: asBuffer(r.publicKey), privateKey: asBuffer(r.privateKey), spki: asBuffer(r.spki) };
    },
    install: async (owner, pair, wrapped) => {
      const job = { op: 'install-transport', owner, ...pair, wrapped } as const;
      const r = await this.#setUpJob(job, 'transport key set-up');
      if (!r.ok) throw new KcmError('hsm_unavailable', `transport key set-up: ${r.message}`);
      if (!('object' in r)) throw new KcmError('internal_error', 'token worker: a set-up job answered as another job');
      return asBuffer(r.object);
    },
    closeOwner: (owner, err) => {
      // A step whose worker was given up mid-call may still use the session, and closing it later by number could
      // close another: it stays in the token's set, closed at shutdown.
      if (!(err instanceof TokenWorkerGivenUp)) this.#closeOwner(owner);
    },
  };

  /**
   * Runs a set-up job under the set-up deadline (a step, such as an RSA key
   * generation in the token, may take longer than a request's token work).
   * A worker given up mid-job fails it naming `step`, still as
   * TokenWorkerGivenUp (closeOwner tells it apart).
   */
  async #setUpJob(job: SetUpJob, step: string): Promise<TokenReply> {
    try {
      return await this.#workers.run(job, [], Math.max(this.#workers.timeoutMs, this.#setUpFloorMs));
    } catch (err) {
      if (err instanceof TokenWorkerGivenUp) throw new TokenWorkerGivenUp(`${step}: ${err.detail}`, err.exited);
      throw err;
    }
  }

  /**
   * Forgets the transport key (both halves): the next call sets up a new
   * one. KT' goes with its owner session, which a worker closes; at shutdown
   * (`shutdown`: the workers are gone) it is left to TokenSessions.close.
   */
  reset(shutdown = false): void {
    const t = this.#transport;
    this.#transport = undefined;
    if (!t) return;
    t.key.destroy();
    if (!shutdown) this.#closeOwner(t.owner);
  }

  /** Encrypts per the file comment; same contract as KeyHandle.dataKeySealBatch. */
  async dataKeySealBatch(
    kek: KeyHandle,
    wrapAad: Uint8Array,
    plaintexts: readonly Uint8Array[],
    aads: readonly Uint8Array[],
  ): Promise<{ wrappedKey: Buffer; sealed: Buffer[] }> {
    if (plaintexts.length !== aads.length) throw new KcmError('invalid_argument', 'plaintexts and aads differ');
    const kt = this.#transport ?? (await this.transport());
    const { wrappedKey, transportWrapped } = kek.dataKeyForTransport(kt.key, wrapAad);
    // One buffer of its own (never a pool slab), handed over to the worker, which zeroes it.
    let total = 0;
    for (const p of plaintexts) total += p.length;
    const packed = new ArrayBuffer(total);
    const ends: number[] = new Array(plaintexts.length);
    let at = 0;
    for (const [i, p] of plaintexts.entries()) {
      new Uint8Array(packed, at, p.length).set(p);
      at += p.length;
      ends[i] = at;
    }
    let r: TokenReply;
    try {
      r = await this.#counted(
        this.#workers.run(
          { op: 'seal', unwrapKey: kt.object, wrapped: transportWrapped, plaintexts: packed, ends, aads: [...aads] },
          [packed],
        ),
      );
    } finally {
      // Handed over, the buffer is detached here (length 0); refused before that, it still holds the plaintexts.
      if (packed.byteLength > 0) new Uint8Array(packed).fill(0);
    }
    if (!r.ok) throw this.#failed('encrypt', r, kt);
    if (!('sealed' in r)) throw new KcmError('internal_error', 'token worker: a seal job answered as an open job');
    return { wrappedKey, sealed: r.sealed.map(asBuffer) };
  }

  /** Decrypts per the file comment; same contract as KeyHandle.dataKeyOpenBatch (`null` per failed item). */
  async dataKeyOpenBatch(
    kek: KeyHandle,
    wrappedKeys: readonly Uint8Array[],
    wrapAads: readonly Uint8Array[],
    sealed: readonly Uint8Array[],
    aads: readonly Uint8Array[],
  ): Promise<(Buffer | null)[]> {
    const n = sealed.length;
    if (wrappedKeys.length !== n || wrapAads.length !== n || aads.length !== n) {
      throw new KcmError('invalid_argument', 'dataKeyOpenBatch: arrays differ in length');
    }
    if (n === 0) return [];
    // One token unwrap per distinct (wrapped key, wrap AAD): usually one per request.
    const groups = new Map<string, number[]>();
    for (let i = 0; i < n; i++) {
      const id = `${asBuffer(wrappedKeys[i] as Uint8Array).toString('base64')}.${asBuffer(wrapAads[i] as Uint8Array).toString('base64')}`;
      const g = groups.get(id);
      if (g) g.push(i);
      else groups.set(id, [i]);
    }
    const items = [...groups.values()];
    const firsts = items.map((g) => g[0] as number);
    const kt = this.#transport ?? (await this.transport());
    const blobs = kek.dataKeyRewrapForTransport(
      kt.key,
      firsts.map((i) => wrappedKeys[i] as Uint8Array),
      firsts.map((i) => wrapAads[i] as Uint8Array),
    );
    const r = await this.#counted(
      this.#workers.run({
        op: 'open',
        unwrapKey: kt.object,
        groups: items.map((g, k) => ({ wrapped: blobs[k] ?? null, items: g })),
        sealed: [...sealed],
        aads: [...aads],
      }),
    );
    if (!r.ok) throw this.#failed('decrypt', r, kt);
    if (!('opened' in r)) throw new KcmError('internal_error', 'token worker: an open job answered as a seal job');
    const out: (Buffer | null)[] = new Array(n);
    for (let i = 0; i < n; i++) {
      const len = r.lengths[i] as number;
      out[i] = len < 0 ? null : Buffer.from(r.opened, r.at[i] as number, len);
    }
    return out;
  }

  /** A job's reply with its token calls counted; a worker that died (`hsm_unavailable`) counts as an error. */
  async #counted<R extends { ops: number }>(reply: Promise<R>): Promise<R> {
    let r: R;
    try {
      r = await reply;
    } catch (err) {
      this.counters.errors++;
      throw err;
    }
    this.counters.operations += r.ops;
    return r;
  }

  /**
   * A worker's failure as `hsm_unavailable`, after dropping the transport key
   * `kt` the job used when the token lost it, unless another job already
   * replaced it (jobs run in parallel: a late failure must not drop the new one).
   */
  #failed(phase: string, r: Failed, kt: TransportKey): KcmError {
    this.counters.errors++;
    if (r.rv !== undefined && SESSION_LOST.has(r.rv) && this.#transport === kt) this.reset();
    return new KcmError('hsm_unavailable', `${phase}: ${r.message}`);
  }
}
