/**
 * Share re-keying (ADR-202/204; ADR-404 operation `shares.rekey`): split the
 * live MasterKey again into a new M-of-N split — new split id, new one-time
 * Ed25519 ceremony key, new manifest — with every share sealed to its
 * holder's X25519 key, and replace the split in the cluster record in one
 * transaction. The MasterKey, its check value, the seal blob (auto-unseal
 * modes) and every wrapped key stay as they are; only who can rebuild the
 * key changes. From the commit on, shares of the old split are refused
 * (`foreign_share`: another ceremony / split) and the new ones unseal.
 *
 *   RootOfTrust.rekeyShares({ threshold: 3, shareCount: 5, holderPublicKeys })
 *   registry.register('shares.rekey', sharesRekeyExecutor(root));
 *
 * Plain (unsealed) shares are refused: the result of a quorum-executed
 * operation is stored in the approval record, so it must never hold a share
 * anyone could submit. A sealed payload opens only with its holder's secret
 * key (open-share.ts).
 *
 * Loss window: the new payloads exist only in the returned result (for the
 * quorum path: the approval record's `result`). If the process dies after
 * the commit and before the result is delivered, the new shares are lost and
 * the old ones no longer work; while the Core is still active, re-key again.
 */
import { KcmError } from '../../../common/src/errors.ts';
import type { Crypto, KeyHandle } from '../../../native/index.ts';
import { canonicalParams, type JsonValue } from '../quorum/canonical-params.ts';
import type { OperationExecutor } from '../quorum/executor-registry.ts';
import { assertHolderPublicKeys, runCeremony } from '../seal/shamir/ceremony.ts';
import type { CeremonyManifest } from '../seal/shamir/manifest.ts';
import { holderKeyFromBase64 } from '../seal/shamir/open-share.ts';
import type { IntegrityStore } from '../store/integrity-store.ts';
import type { ClusterRecord } from '../store/records.ts';

/**
 * Most shares a `shares.rekey` request may ask for: the executor's result
 * (sealed payloads and manifest, about 700 bytes per share) must fit the
 * approval record's 8 KiB result (canonical-params.ts MAX_PARAMS_BYTES).
 */
export const MAX_REKEY_SHARES = 10;

export interface RekeyRequest {
  /** New M: 2 … N. */
  threshold: number;
  /** New N: M … 255 (the executor allows at most MAX_REKEY_SHARES). */
  shareCount: number;
  /** N distinct X25519 public keys (32 bytes); holder i gets share i+1. Required: plain shares are refused. */
  holderPublicKeys: readonly Uint8Array[];
  /** Who asked (audit actor), e.g. `quorum:alice+bob`. */
  actor?: string | undefined;
  correlationId?: string | undefined;
  /**
   * Runs on the result after the new split is made and before anything is
   * stored; a throw aborts the re-key with the old split untouched (the
   * executor checks the result fits the approval record here).
   */
  beforeCommit?: ((result: RekeyResult) => void) | undefined;
}

/** What a re-key issues: sealed share documents only (SPEC.md §9.2), each for one holder, once. */
export interface RekeyResult {
  clusterId: string;
  /** Hex, 16 bytes: the new split id. */
  splitId: string;
  threshold: number;
  shareCount: number;
  /** By ascending index; `payload` is the sealed-share JSON document. */
  sealedShares: { index: number; payload: string }[];
  manifest: CeremonyManifest;
}

export interface SplitAgainOptions {
  crypto: Crypto;
  store: IntegrityStore;
  /** The live MasterKey (the caller checked the Core is active); it stays usable. */
  masterKey: KeyHandle;
  /** The verified cluster record the MasterKey was checked against. */
  cluster: ClusterRecord;
  request: RekeyRequest;
  now: () => number;
  /**
   * Runs inside the transaction after the record is written, as its last
   * step (the caller's audit record); a throw rolls the re-key back.
   */
  inTransaction?: ((result: RekeyResult) => void) | undefined;
}

/**
 * Makes the new split and commits it; returns the result and the record as
 * written (without its MAC). Everything up to the start of the store
 * transaction runs synchronously, so a caller that checked its state just
 * before cannot be sealed in between.
 *
 * Throws `invalid_shamir_parameters` (no holder keys, bad M/N or keys — see
 * runCeremony), `init_not_confirmed` when the stored cluster is still
 * pending, `store_conflict` when the stored split is no longer the one of
 * `cluster` (re-keyed concurrently, e.g. by another replica), whatever
 * `beforeCommit` throws, store errors. On any throw nothing was stored.
 */
export async function splitAgain(
  o: SplitAgainOptions,
): Promise<{ result: RekeyResult; record: Omit<ClusterRecord, 'mac'> }> {
  const { cluster, request: r } = o;
  if (!Array.isArray(r.holderPublicKeys) || r.holderPublicKeys.length === 0) {
    throw new KcmError(
      'invalid_shamir_parameters',
      're-keying issues sealed shares only: give one holder public key per share',
    );
  }
  if (cluster.initState !== 'confirmed') {
    throw new KcmError('init_not_confirmed', 'confirm the init before re-keying the shares');
  }
  const ceremony = runCeremony({
    crypto: o.crypto,
    masterKey: o.masterKey,
    clusterId: cluster.clusterId,
    region: cluster.region,
    threshold: r.threshold,
    shareCount: r.shareCount,
    holderPublicKeys: r.holderPublicKeys,
    now: o.now,
  });
  const result: RekeyResult = {
    clusterId: cluster.clusterId,
    splitId: ceremony.splitId.toString('hex'),
    threshold: r.threshold,
    shareCount: r.shareCount,
    sealedShares: ceremony.shares.map((s) => ({ index: s.index, payload: s.payload })),
    manifest: ceremony.manifest,
  };
  r.beforeCommit?.(result);
  const oldSplit = cluster.splitId;
  const record = await o.store.transaction(async (tx) => {
    const stored = await tx.getCluster();
    if (!stored) throw new KcmError('not_initialized');
    if (!stored.splitId.equals(oldSplit)) {
      throw new KcmError('store_conflict', 'the shares were re-keyed concurrently: read the cluster status again');
    }
    if (stored.initState !== 'confirmed') throw new KcmError('init_not_confirmed');
    const { mac: _m, ...rest } = stored;
    const next: Omit<ClusterRecord, 'mac'> = {
      ...rest,
      threshold: r.threshold,
      shareCount: r.shareCount,
      splitId: ceremony.splitId,
      ceremonyPublicKey: ceremony.ceremonyPublicKey,
      manifest: JSON.stringify(ceremony.manifest),
    };
    await tx.updateCluster(next);
    o.inTransaction?.(result);
    return next;
  });
  return { result, record };
}

/** The normalised parameters of `shares.rekey`. */
export interface SharesRekeyParams {
  [key: string]: JsonValue;
  threshold: number;
  shares: number;
  /** Canonical padded base64 of 32-byte X25519 public keys, one per share. */
  holderPublicKeys: string[];
}

/** What `sharesRekeyExecutor` needs of the root of trust. */
export interface Rekeyable {
  rekeyShares(req: RekeyRequest): Promise<RekeyResult>;
}

function bad(detail: string): never {
  throw new KcmError('bad_request', `shares.rekey: ${detail}`);
}

/**
 * Checks `shares.rekey` parameters: exactly `{ threshold, shares,
 * holderPublicKeys }`, 2 ≤ threshold ≤ shares ≤ MAX_REKEY_SHARES, one
 * distinct usable base64 X25519 public key per share. Returns them
 * normalised (keys trimmed). Throws `bad_request` for the shape,
 * `invalid_shamir_parameters` for the split or a key (naming its position,
 * never its text).
 */
export function validateRekeyParams(params: unknown): SharesRekeyParams {
  if (typeof params !== 'object' || params === null || Array.isArray(params)) bad('params must be an object');
  const o = params as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (k !== 'threshold' && k !== 'shares' && k !== 'holderPublicKeys') bad(`params.${k.slice(0, 32)} is not a field`);
  }
  const { threshold: m, shares: n, holderPublicKeys: keys } = o;
  if (typeof m !== 'number' || !Number.isInteger(m)) bad('params.threshold must be an integer');
  if (typeof n !== 'number' || !Number.isInteger(n)) bad('params.shares must be an integer');
  if (n < 2 || n > MAX_REKEY_SHARES) {
    throw new KcmError('invalid_shamir_parameters', `shares.rekey: shares must be 2..${MAX_REKEY_SHARES}`);
  }
  if (m < 2 || m > n) throw new KcmError('invalid_shamir_parameters', `shares.rekey: threshold must be 2..${n}`);
  if (!Array.isArray(keys)) bad('params.holderPublicKeys must be an array of base64 X25519 public keys');
  if (keys.length !== n) {
    throw new KcmError('invalid_shamir_parameters', `shares.rekey: ${keys.length} holder public keys for ${n} shares`);
  }
  const decoded = keys.map((k, i) =>
    typeof k === 'string' ? holderKeyFromBase64(k, `holder public key #${i + 1}`) : bad('holder keys must be strings'),
  );
  assertHolderPublicKeys(decoded, n);
  return { threshold: m, shares: n, holderPublicKeys: decoded.map((k) => k.toString('base64')) };
}

/**
 * The quorum executor of `shares.rekey` (ADR-404): validate as
 * validateRekeyParams; execute re-keys through `root.rekeyShares` with actor
 * `quorum:<proposer>+<approvers>` and returns the RekeyResult (sealed shares and
 * manifest only) — checked to fit the approval record before the new split
 * is committed (`bad_request` otherwise, nothing stored). A new proposal makes
 * another split: re-running is how a lost result is recovered, while the
 * Core is still active.
 */
export function sharesRekeyExecutor(
  root: Rekeyable,
  o: {
    /**
     * Called with the issued sealed shares before the new split is committed,
     * e.g. to write them durably beside the store: the approval result is
     * written only after the commit, and a crash in between must not lose the
     * only copy of the new shares. Sealed shares are safe at rest (each is a
     * sealed box to its holder's key). A throw aborts the re-key.
     */
    keep?: (approvalId: string, result: RekeyResult) => void;
  } = {},
): OperationExecutor<SharesRekeyParams> {
  return {
    summary: 're-key the Shamir shares: a new M-of-N split sealed to the given holder keys; old shares stop working',
    validate: validateRekeyParams,
    execute: async (p, ctx) => {
      const result = await root.rekeyShares({
        threshold: p.threshold,
        shareCount: p.shares,
        holderPublicKeys: p.holderPublicKeys.map((k) => holderKeyFromBase64(k)),
        actor: `quorum:${[ctx.proposer, ...ctx.approvers].join('+')}`.slice(0, 256),
        correlationId: ctx.correlationId,
        beforeCommit: (r) => {
          canonicalParams(r);
          o.keep?.(ctx.approvalId, r);
        },
      });
      return result as unknown as JsonValue;
    },
  };
}
