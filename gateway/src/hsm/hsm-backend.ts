/**
 * The `pkcs11` field backend of the gateway (HSM offload): a token, its
 * transport key and the {@link TokenFieldCipher}, opened once per process.
 * It hands out *token views* of L3 key handles: the same key, whose envelope
 * operations run in the token (KeyHandle.withEnvelope), so every caller of
 * encryptFields / decryptFields works unchanged and the ciphertext format is
 * identical to the native backend's, both ways.
 *
 * Which requests use it: proxy routes whose policy says `backend: "pkcs11"`,
 * and direct API requests for the key names in the config's `hsm.keys`
 * (see hsm-gateway-keys.ts).
 */
import type { Crypto, KeyHandle } from '../../../native/index.ts';
import type { EncryptionKey, FieldKeyProvider } from '../pipeline/key-provider.ts';
import { type TokenCounters, TokenFieldCipher } from './token-field-cipher.ts';
import { type TokenOptions, TokenSessions } from './token-sessions.ts';
import { TokenWorkers } from './token-workers.ts';
import type { TransportKey } from './transport-key.ts';

/** How long one request's token work may take by default. */
const DEFAULT_TIMEOUT_MS = 10_000;

export interface HsmBackendOptions extends TokenOptions {
  /** The backend of the L3 keys the gateway holds (the transport key must share it). */
  crypto: Crypto;
  /** Key names whose direct API requests run in the token. */
  keys?: readonly string[];
  /** Token worker threads, each with one operation session (≥ 1; the config's `hsm.sessions`). */
  sessions: number;
  /** Run the token calls on the calling thread instead (the config's `hsm.inline`; see token-workers.ts). */
  inline?: boolean;
  /** How long one request's token work may take before it fails (`hsm_unavailable`) and its worker is given up (default 10 s). */
  timeoutMs?: number;
  /**
   * The least time a worker may take to start, and a transport key set-up
   * step to run (default 30 s each; RSA generation in an HSM can take
   * seconds). Not configurable: lowered only by tests of those deadlines.
   */
  startTimeoutMs?: number;
  setUpTimeoutMs?: number;
}

/** Figures for /metrics. */
export interface HsmStats extends TokenCounters {
  /** Token sessions open now: the main thread's (login anchor, the transport key's owner) and the token workers'. */
  sessions: number;
  /** Token jobs that ran past `timeoutMs` (each failed with its worker's queue). */
  timeouts: number;
  /** Threads of given-up workers still blocked inside the module. */
  stuckThreads: number;
}

export class HsmBackend {
  /** Key names whose direct API requests run in the token. */
  readonly directKeys: ReadonlySet<string>;
  readonly #token: TokenSessions;
  readonly #workers: TokenWorkers;
  readonly #cipher: TokenFieldCipher;
  readonly #views = new WeakMap<KeyHandle, KeyHandle>();
  readonly #providers = new WeakMap<FieldKeyProvider, FieldKeyProvider>();
  #closed = false;

  private constructor(token: TokenSessions, workers: TokenWorkers, cipher: TokenFieldCipher, keys: readonly string[]) {
    this.#token = token;
    this.#workers = workers;
    this.#cipher = cipher;
    this.directKeys = new Set(keys);
  }

  /**
   * Opens the token, logs in, sets up the transport key and starts the token
   * worker threads (`sessions` of them, one session each) now, so a wrong
   * module, token, PIN or an unusable token fails at start-up. Rejects with
   * KcmError `invalid_config` (naming the `hsm.*` field) or `hsm_unavailable`.
   */
  static async open(o: HsmBackendOptions): Promise<HsmBackend> {
    const token = TokenSessions.open(o);
    let workers: TokenWorkers | undefined;
    try {
      workers = new TokenWorkers(
        { module: o.module, slot: token.slot },
        o.inline
          ? { inline: token.lib }
          : {
              workers: o.sessions,
              timeoutMs: o.timeoutMs ?? DEFAULT_TIMEOUT_MS,
              ...(o.startTimeoutMs === undefined ? {} : { startTimeoutMs: o.startTimeoutMs }),
            },
      );
      await workers.started();
      const cipher = new TokenFieldCipher(token, workers, o.crypto, o.setUpTimeoutMs);
      await cipher.transport();
      return new HsmBackend(token, workers, cipher, o.keys ?? []);
    } catch (err) {
      // A set-up step that timed out may leave a thread inside the module: then it is neither finalised nor unloaded.
      const quiet = (await workers?.close()) ?? true;
      token.close({ finalize: quiet });
      throw err;
    }
  }

  /** The open token (tests and diagnostics: session counts, object checks). */
  get token(): TokenSessions {
    return this.#token;
  }

  /** The current transport key (set up again after the token lost it). Throws `hsm_unavailable`. */
  transportKey(): Promise<TransportKey> {
    return this.#cipher.transport();
  }

  /** The token view of `l3` (cached per handle): same key, field AEAD in the token. */
  view(l3: KeyHandle): KeyHandle {
    let v = this.#views.get(l3);
    if (!v) {
      v = l3.withEnvelope(this.#cipher);
      this.#views.set(l3, v);
    }
    return v;
  }

  /** `provider` with every handle it returns replaced by its token view (cached per provider). */
  fieldKeys(provider: FieldKeyProvider): FieldKeyProvider {
    let p = this.#providers.get(provider);
    if (!p) {
      const toView = (k: EncryptionKey): EncryptionKey => ({ handle: this.view(k.handle), ref: k.ref });
      const maybeView = (h: KeyHandle | undefined) => (h ? this.view(h) : undefined);
      p = {
        encryptKey: (tenant, keyId) => {
          const k = provider.encryptKey(tenant, keyId);
          return k instanceof Promise ? k.then(toView) : toView(k);
        },
        decryptKey: (ref) => {
          const h = provider.decryptKey(ref);
          return h instanceof Promise ? h.then(maybeView) : maybeView(h);
        },
      };
      this.#providers.set(provider, p);
    }
    return p;
  }

  stats(): HsmStats {
    // The main thread's (the login anchor, KT's owner) and one per token worker.
    const sessions = this.#closed ? 0 : this.#token.openSessions + this.#workers.sessions;
    return {
      ...this.#cipher.counters,
      sessions,
      timeouts: this.#workers.timeouts,
      stuckThreads: this.#workers.lingering,
    };
  }

  /**
   * Stops the token workers once the jobs already posted are done (each
   * closes its session; one still running after 2 s is terminated and its
   * jobs fail with `hsm_unavailable`), destroys the transport key (both
   * halves) and closes the token. When a worker's thread is still blocked
   * in a token call that never returned, the module is neither finalised
   * nor unloaded (that would pull it from under the call). Idempotent.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // Jobs already posted finish first (they use KT'); the owner session then closes with the others.
    const quiet = await this.#workers.close();
    this.#cipher.reset(true);
    this.#token.close({ finalize: quiet });
  }
}
