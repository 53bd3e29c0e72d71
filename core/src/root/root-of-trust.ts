/**
 * The root of trust of a Core (ADR-201–204): the state machine
 *
 *   uninitialized ──init──▶ active ──seal──▶ sealed ──share…share──▶ active
 *                                            sealed ──auto-unseal──▶ active
 *
 * The MasterKey exists only in native locked memory while active; it is made
 * by `init`, rebuilt from M signed shares or unwrapped through the seal
 * provider, and checked against the stored check value before use. Seal
 * (and SIGTERM/SIGINT, wired by the server) destroys it and every IVK at once.
 * While not active every key operation throws `sealed` (HTTP 503).
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { combineShares } from '../../../common/src/crypto/shamir.ts';
import { KcmError } from '../../../common/src/errors.ts';
import { decodeWrappedKey, encodeWrappedKey, wrapAad } from '../../../common/src/format/wrapped-key.ts';
import type { Crypto, KeyHandle } from '../../../native/index.ts';
import type { AuditSink } from '../audit/audit-sink.ts';
import { crashPoint } from '../fault/crash-point.ts';
import { ivkDigest } from '../ivk/ivk-digest.ts';
import { createFirstIvk, IvkManager } from '../ivk/ivk-manager.ts';
import type { IvkPolicy } from '../ivk/ivk-policy.ts';
import { masterKeyRef, sealKeyRef } from '../keys/key-names.ts';
import { type RetryOptions, withRetry } from '../seal/retry.ts';
import { type SealProvider, SealProviderError } from '../seal/seal-provider.ts';
import { runCeremony } from '../seal/shamir/ceremony.ts';
import type { CeremonyManifest } from '../seal/shamir/manifest.ts';
import { UnsealProgress } from '../seal/shamir/unseal-progress.ts';
import type { IntegrityStore } from '../store/integrity-store.ts';
import { RecordMac } from '../store/record-mac.ts';
import type { ClusterRecord, SealBlobRecord, SealType } from '../store/records.ts';
import { type RekeyRequest, type RekeyResult, splitAgain } from './share-rekey.ts';

export type CoreState = 'uninitialized' | 'sealed' | 'unsealing' | 'active';

export interface CoreStatus {
  state: CoreState;
  /** `pending` until the init is confirmed (explicitly, or by the first unseal with shares). */
  initState: 'pending' | 'confirmed' | null;
  clusterId: string | null;
  region: string;
  sealType: SealType | null;
  threshold: number | null;
  /** Shares received in the current unseal attempt (sealed/unsealing). */
  progress: { received: number; threshold: number } | null;
  ivkVersion: number | null;
}

export interface InitRequest {
  /** M, default 3. */
  threshold?: number | undefined;
  /** N, default 5. */
  shareCount?: number | undefined;
  /** X25519 public keys of the share holders, one per share. */
  holderPublicKeys?: readonly Uint8Array[] | undefined;
  /** Re-initialise over a `pending` (unconfirmed) cluster whose shares were lost. */
  abandonPending?: boolean | undefined;
}

export interface InitResult {
  clusterId: string;
  /** Issued once, never stored: signed share texts or sealed share documents. */
  shares: { index: number; payload: string }[];
  manifest: CeremonyManifest;
}

export interface RootOfTrustOptions {
  crypto: Crypto;
  store: IntegrityStore;
  region: string;
  /** Auto-unseal provider, when the Core is configured for one. */
  sealProvider: SealProvider | null;
  ivkPolicy: IvkPolicy;
  audit: AuditSink;
  now?: () => number;
}

const KCV_LABEL = 'okcm/mk-check/v1\0';

/** MasterKey check value: a MAC under the key, never a plain hash of it. */
function masterKeyCheck(mk: KeyHandle, clusterId: string): Buffer {
  return mk.hmac(Buffer.from(`${KCV_LABEL}${clusterId}`, 'latin1'));
}

export class RootOfTrust {
  readonly #o: RootOfTrustOptions;
  readonly #now: () => number;
  #state: CoreState = 'uninitialized';
  #cluster: ClusterRecord | undefined;
  #masterKey: KeyHandle | null = null;
  #ivk: IvkManager | null = null;
  #progress: UnsealProgress | null = null;
  #busy = false;
  /** Why the last auto-unseal attempt failed (a provider kind or error code and message), or null. */
  lastAutoUnsealError: string | null = null;

  constructor(o: RootOfTrustOptions) {
    this.#o = o;
    this.#now = o.now ?? Date.now;
  }

  /** Reads the cluster record (unverified: the MasterKey is not here yet) and enters `uninitialized` or `sealed`. */
  async load(): Promise<CoreState> {
    this.#cluster = await this.#o.store.readClusterUnverified();
    this.#state = this.#cluster ? 'sealed' : 'uninitialized';
    return this.#state;
  }

  get state(): CoreState {
    return this.#state;
  }

  status(): CoreStatus {
    const c = this.#cluster;
    const p = this.#progress?.status();
    return {
      state: this.#state,
      initState: c?.initState ?? null,
      clusterId: c?.clusterId ?? null,
      region: this.#o.region,
      sealType: c?.sealType ?? null,
      threshold: c?.threshold ?? null,
      progress: this.#state === 'active' || !c ? null : { received: p?.received ?? 0, threshold: c.threshold },
      ivkVersion: this.#ivk?.activeVersion ?? null,
    };
  }

  /** The IVK manager; throws `sealed` (or `not_initialized`) unless active. */
  ivk(): IvkManager {
    if (this.#state === 'uninitialized') throw new KcmError('not_initialized');
    if (this.#state !== 'active' || !this.#ivk) throw new KcmError('sealed');
    return this.#ivk;
  }

  #exclusive<T>(what: string, fn: () => Promise<T>): Promise<T> {
    if (this.#busy) return Promise.reject(new KcmError('store_conflict', `another ${what} is in progress`));
    this.#busy = true;
    return fn().finally(() => {
      this.#busy = false;
    });
  }

  /**
   * Initialises the cluster: MasterKey, check value, Shamir ceremony, seal blob
   * (auto-unseal modes), IVK v1 — stored in one transaction, marked `pending`.
   * Shares are returned only after the commit. Two-phase: until `confirmInit`
   * (or the first unseal with shares), a cluster whose shares were lost (the
   * response never arrived, the process died) can be initialised again, which
   * abandons it in the same transaction (`abandonPending: true`) — unless it
   * already holds tenant keys.
   * Throws `already_initialized`, `invalid_shamir_parameters`, provider errors
   * (nothing stored then).
   */
  init(req: InitRequest = {}): Promise<InitResult> {
    return this.#exclusive('init', async () => {
      const abandoned = req.abandonPending && this.#cluster?.initState === 'pending' ? this.#cluster : undefined;
      if (this.#state !== 'uninitialized' && !abandoned) {
        const pending = this.#cluster?.initState === 'pending';
        throw new KcmError(
          'already_initialized',
          pending ? 'init is pending: confirm it, or re-run init with abandonPending' : undefined,
        );
      }
      if (abandoned && (await this.#o.store.raw.listL2BelowIvk(2 ** 32, 1)).length > 0) {
        throw new KcmError('already_initialized', 'the pending cluster already holds tenant keys');
      }
      if (abandoned) this.seal('re-init');
      const { crypto, region } = this.#o;
      const threshold = req.threshold ?? 3;
      const shareCount = req.shareCount ?? 5;
      const clusterId = `kcm-${randomBytes(8).toString('hex')}`;
      const now = this.#now();
      const mk = crypto.generateKey();
      try {
        const ceremony = runCeremony({
          crypto,
          masterKey: mk,
          clusterId,
          region,
          threshold,
          shareCount,
          holderPublicKeys: req.holderPublicKeys,
          now: this.#now,
        });
        const seal = this.#o.sealProvider ? await this.#sealBlob(mk, clusterId, now) : null;
        const record: Omit<ClusterRecord, 'mac'> = {
          clusterId,
          region,
          sealType: this.#o.sealProvider?.type ?? 'shamir',
          threshold,
          shareCount,
          splitId: ceremony.splitId,
          kcv: masterKeyCheck(mk, clusterId),
          ceremonyPublicKey: ceremony.ceremonyPublicKey,
          seal,
          manifest: JSON.stringify(ceremony.manifest),
          createdAt: now,
          initState: 'pending',
          // The IVK head of a new cluster: v1, ACTIVE (createFirstIvk below).
          ivkDigest: ivkDigest([{ version: 1, state: 'ACTIVE' }]),
        };
        this.#o.store.setMac(new RecordMac(mk));
        await this.#o.store.transaction(async (tx) => {
          if (abandoned) {
            for (const v of await tx.unverified.listIvks()) await tx.deleteIvk(v.version);
            await tx.deleteCluster();
          }
          await tx.insertCluster(record);
          await createFirstIvk(tx, { ...this.#o, clusterId, masterKey: mk, policy: this.#o.ivkPolicy }, now);
          crashPoint('init:before-commit');
        });
        if (abandoned) this.#audit('core.init.abandoned', 'success', abandoned.clusterId);
        crashPoint('init:after-commit');
        await this.#activate(mk, (await this.#o.store.getCluster()) as ClusterRecord);
        this.#audit('core.init', 'success', clusterId);
        return {
          clusterId,
          shares: ceremony.shares.map((s) => ({ index: s.index, payload: s.payload })),
          manifest: ceremony.manifest,
        };
      } catch (err) {
        if ((this.#state as CoreState) !== 'active') {
          this.#o.store.setMac(null);
          mk.destroy();
          // If the failure came after the commit, the stored cluster is the truth: sealed (pending).
          this.#cluster = await this.#o.store.readClusterUnverified().catch(() => this.#cluster);
          this.#state = this.#cluster ? 'sealed' : 'uninitialized';
        }
        this.#audit('core.init', 'failure', clusterId, err);
        throw err;
      }
    });
  }

  /** Marks the init confirmed (the operator has the shares); idempotent. Throws `sealed` unless active. */
  confirmInit(): Promise<CoreStatus> {
    return this.#exclusive('init confirmation', async () => {
      this.ivk();
      await this.#confirm();
      return this.status();
    });
  }

  /**
   * Re-keys the Shamir shares (share-rekey.ts, ADR-404 `shares.rekey`): the
   * in-memory MasterKey is split again into a new M-of-N split, every share
   * sealed to its holder's X25519 key, and the cluster record's split
   * (split id, M, N, ceremony public key, manifest) is replaced in one
   * transaction, with the audit record `core.shares_rekey` written inside it.
   * The MasterKey, its check value and the seal blob are unchanged, so this
   * serves Shamir clusters and the recovery shares of auto-unseal clusters.
   * From the commit on, old shares are refused (`foreign_share`).
   *
   * Returns the sealed shares (each for one holder, once) and the manifest.
   * Throws `not_initialized`; `sealed` unless active; `init_not_confirmed`
   * while the init is pending; `store_conflict` while another init, unseal or
   * re-key runs (or the split changed under it); `invalid_shamir_parameters`
   * (no holder keys — plain shares are refused —, bad M/N or keys); store and
   * audit errors. On any throw the old split stays valid.
   */
  rekeyShares(req: RekeyRequest): Promise<RekeyResult> {
    return this.#exclusive('share re-key', async () => {
      const who = {
        ...(req.actor ? { actor: req.actor } : {}),
        ...(req.correlationId ? { correlationId: req.correlationId } : {}),
      };
      const resource = this.#cluster?.clusterId ?? '';
      try {
        this.ivk();
        const mk = this.#masterKey;
        const cluster = this.#cluster;
        if (!mk || !cluster) throw new KcmError('sealed');
        const { result, record } = await splitAgain({
          crypto: this.#o.crypto,
          store: this.#o.store,
          masterKey: mk,
          cluster,
          request: req,
          now: this.#now,
          inTransaction: (r) =>
            this.#o.audit.record({
              action: 'core.shares_rekey',
              outcome: 'success',
              resource,
              reason: `new split ${r.threshold}-of-${r.shareCount} ${r.splitId.slice(0, 8)}`,
              ...who,
            }),
        });
        // The new split is the truth from here on, even if a seal came in meanwhile.
        this.#cluster = await this.#o.store
          .getCluster()
          .catch(() => this.#o.store.readClusterUnverified())
          .catch(() => undefined)
          .then((c) => c ?? { ...cluster, ...record });
        return result;
      } catch (err) {
        this.#o.audit.record({
          action: 'core.shares_rekey',
          outcome: 'failure',
          resource,
          reason: reasonOf(err),
          ...who,
        });
        throw err;
      }
    });
  }

  async #confirm(): Promise<void> {
    const c = this.#cluster;
    if (!c || c.initState === 'confirmed') return;
    // Re-read inside the transaction: the IVK head may have moved since activation.
    await this.#o.store.transaction(async (tx) => {
      const stored = await tx.getCluster();
      if (!stored) throw new KcmError('not_initialized');
      const { mac: _m, ...rest } = stored;
      await tx.updateCluster({ ...rest, initState: 'confirmed' });
    });
    this.#cluster = await this.#o.store.getCluster();
    this.#audit('core.init.confirm', 'success', c.clusterId);
  }

  async #sealBlob(mk: KeyHandle, clusterId: string, now: number): Promise<SealBlobRecord> {
    const provider = this.#o.sealProvider as SealProvider;
    const { plaintext, encrypted } = await provider.generateDataKey({ clusterId, region: this.#o.region });
    const dk = this.#o.crypto.importKey(plaintext);
    try {
      const wrapping = sealKeyRef(this.#o.region);
      const wrapped = masterKeyRef(clusterId);
      const sealed = dk.wrap(mk, wrapAad(wrapping, wrapped));
      return {
        provider: provider.type,
        keyId: encrypted.keyId,
        keyVersion: encrypted.keyVersion,
        encryptedDataKey: encrypted.ciphertext,
        wrappedMasterKey: encodeWrappedKey({ wrapping, wrapped, sealed }),
        createdAt: now,
      };
    } finally {
      dk.destroy();
    }
  }

  /** Checks the rebuilt/unwrapped MasterKey, verifies the stored records with it, loads the IVKs. */
  async #activate(mk: KeyHandle, unverified: ClusterRecord): Promise<void> {
    const kcv = masterKeyCheck(mk, unverified.clusterId);
    if (kcv.length !== unverified.kcv.length || !timingSafeEqual(kcv, unverified.kcv)) {
      throw new KcmError('share_mismatch', 'the key does not match this cluster’s MasterKey check value');
    }
    this.#o.store.setMac(new RecordMac(mk));
    let ivk: IvkManager | null = null;
    try {
      const cluster = await this.#o.store.getCluster();
      if (!cluster) throw new KcmError('not_initialized');
      ivk = new IvkManager({
        crypto: this.#o.crypto,
        store: this.#o.store,
        clusterId: cluster.clusterId,
        region: cluster.region,
        masterKey: mk,
        policy: this.#o.ivkPolicy,
        now: this.#now,
        events: {
          rotated: (e) => this.#audit(`ivk.rotate.${e.reason}`, 'success', `ivk v${e.to}`),
          deprecated: (v) => this.#audit('ivk.deprecate', 'success', `ivk v${v}`),
        },
      });
      await ivk.load();
      this.#cluster = cluster;
      this.#masterKey = mk;
      this.#ivk = ivk;
      this.#progress?.reset();
      this.#progress = null;
      this.#state = 'active';
    } catch (err) {
      ivk?.wipe();
      this.#o.store.setMac(null);
      throw err;
    }
  }

  /**
   * Takes one signed share (any order). On the M-th the MasterKey is rebuilt
   * inside native memory and checked; the Core becomes active. Refused shares
   * (invalid, foreign, duplicate) are not counted. A full set that fails the
   * check resets the attempt.
   */
  submitShare(text: string): Promise<CoreStatus> {
    return this.#exclusive('unseal', async () => {
      if (this.#state === 'active') return this.status();
      // A new attempt reads the split again: another replica may have re-keyed the shares.
      if (!this.#progress) this.#cluster = (await this.#readClusterSafely()) ?? this.#cluster;
      const c = this.#cluster;
      if (!c) throw new KcmError('not_initialized');
      this.#progress ??= new UnsealProgress({ ...c });
      try {
        const p = this.#progress.submit(text);
        this.#state = 'unsealing';
        if (!p.complete) {
          this.#audit('core.unseal.share', 'success', c.clusterId);
          return this.status();
        }
      } catch (err) {
        this.#audit('core.unseal.share', 'failure', c.clusterId, err);
        throw err;
      }
      const shares = this.#progress.takeShares();
      let mk: KeyHandle | null = null;
      try {
        mk = combineShares(this.#o.crypto, shares);
        await this.#activate(mk, c);
        if (!this.#cluster?.splitId.equals(c.splitId)) {
          throw new KcmError('foreign_share', 'the shares were re-keyed during this attempt: submit the new shares');
        }
        await this.#confirm();
        this.#audit('core.unseal', 'success', c.clusterId);
        return this.status();
      } catch (err) {
        // Anything activation already set up (IVKs, the record MAC key) goes too.
        this.seal('unseal-failure');
        mk?.destroy();
        this.#audit('core.unseal', 'failure', c.clusterId, err);
        throw err;
      } finally {
        for (const s of shares) Buffer.from(s.y.buffer, s.y.byteOffset, s.y.length).fill(0);
      }
    });
  }

  async #readClusterSafely(): Promise<ClusterRecord | undefined> {
    try {
      return await this.#o.store.readClusterUnverified();
    } catch {
      return undefined;
    }
  }

  /** Forgets the shares of the current attempt. */
  resetUnseal(): CoreStatus {
    this.#progress?.reset();
    this.#progress = null;
    if (this.#state === 'unsealing') this.#state = 'sealed';
    return this.status();
  }

  /**
   * Unwraps the MasterKey through the seal provider, retrying retryable
   * provider failures with backoff. Returns false (still sealed, shares still
   * accepted) when the provider stays unavailable or refuses.
   */
  async autoUnseal(retry: RetryOptions, o: { auditFailure?: boolean } = {}): Promise<boolean> {
    const c = this.#cluster;
    const provider = this.#o.sealProvider;
    if (!c?.seal || !provider || this.#state === 'active') return this.#state === 'active';
    const seal = c.seal;
    try {
      const plaintext = await withRetry(
        () =>
          provider.decryptDataKey(
            { keyId: seal.keyId, keyVersion: seal.keyVersion, ciphertext: seal.encryptedDataKey },
            { clusterId: c.clusterId, region: c.region },
          ),
        retry,
      );
      try {
        await this.#exclusive('unseal', async () => {
          if (this.#state === 'active') return;
          const dk = this.#o.crypto.importKey(plaintext);
          let mk: KeyHandle | null = null;
          try {
            const blob = decodeWrappedKey(seal.wrappedMasterKey);
            mk = dk.unwrap(blob.sealed, wrapAad(sealKeyRef(c.region), masterKeyRef(c.clusterId)));
            await this.#activate(mk, c);
          } catch (err) {
            mk?.destroy();
            throw err;
          } finally {
            dk.destroy();
          }
        });
      } finally {
        // importKey zeroes it; this covers the paths that never reach importKey (busy, already active).
        plaintext.fill(0);
      }
      this.#audit('core.unseal.auto', 'success', c.clusterId);
      this.lastAutoUnsealError = null;
      return true;
    } catch (err) {
      this.lastAutoUnsealError = `${reasonOf(err)}: ${err instanceof Error ? err.message : String(err)}`;
      if (o.auditFailure !== false) this.#audit('core.unseal.auto', 'failure', c.clusterId, err);
      return false;
    }
  }

  readonly #onSeal: (() => void)[] = [];

  /** Runs `hook` first thing in every `seal()` (key caches built on the IVK wipe themselves there); never throws out of seal. */
  onSeal(hook: () => void): void {
    this.#onSeal.push(hook);
  }

  /** Destroys the MasterKey and every IVK in memory at once; the Core answers 503 until unsealed. */
  seal(reason = 'operator'): CoreStatus {
    const wasActive = this.#state === 'active';
    // Keys below the IVK (L2/L3 caches) go first, at once (ADR-304 tier 1).
    for (const hook of this.#onSeal) {
      try {
        hook();
      } catch {
        // A hook's failure cannot stop the seal.
      }
    }
    this.#ivk?.wipe();
    this.#ivk = null;
    this.#masterKey?.destroy();
    this.#masterKey = null;
    this.#o.store.setMac(null);
    this.#progress?.reset();
    this.#progress = null;
    if (this.#cluster) this.#state = 'sealed';
    if (wasActive) this.#audit('core.seal', 'success', this.#cluster?.clusterId ?? '', undefined, reason);
    return this.status();
  }

  #audit(action: string, outcome: 'success' | 'failure', resource: string, err?: unknown, reason?: string): void {
    const why = err ? reasonOf(err) : reason;
    this.#o.audit.record({ action, outcome, resource, ...(why ? { reason: why } : {}) });
  }
}

/** The audit reason of an error: its stable code, or the provider's normalised kind. */
function reasonOf(err: unknown): string {
  if (err instanceof KcmError) return err.code;
  if (err instanceof SealProviderError) return `seal_provider_${err.kind}`;
  return 'internal_error';
}
