/**
 * The messages between the main thread (token-workers.ts) and a token
 * worker (token-worker.ts). Byte fields arrive as Uint8Arrays (structured
 * clone); the seal plaintexts and the opened plaintexts travel as one
 * transferred ArrayBuffer each way, so no copy of them stays behind.
 */

/** What a token worker starts with. */
export interface TokenWorkerData {
  /** Path of the PKCS#11 module (already initialised by the main thread). */
  module: string;
  /** The slot id the main thread found (C_GetSlotList). */
  slot: Buffer;
}

/** Seal every plaintext under the data key `wrapped` carries. */
export interface SealJob {
  id: number;
  op: 'seal';
  /** KT' (object handle of the transport key in the token). */
  unwrapKey: Buffer;
  /** The data key under KT, AES-KW (40 bytes). */
  wrapped: Uint8Array;
  /** The plaintexts, back to back (transferred; zeroed by the worker). */
  plaintexts: ArrayBuffer;
  /** Where each plaintext ends in `plaintexts`. */
  ends: number[];
  aads: Uint8Array[];
}

/** Open items grouped by data key. */
export interface OpenJob {
  id: number;
  op: 'open';
  unwrapKey: Buffer;
  /** Per data key: its AES-KW blob (null when it did not re-wrap: its items fail) and its item indices. */
  groups: { wrapped: Uint8Array | null; items: number[] }[];
  /** nonce ‖ ct ‖ tag per item. */
  sealed: Uint8Array[];
  aads: Uint8Array[];
}

/** Step 1 of the transport key set-up (transport-key.ts makeRsaPair), in the owner session the main thread opened. */
export interface RsaPairJob {
  id: number;
  op: 'rsa-pair';
  owner: Uint8Array;
}

/** Step 3 of the set-up (transport-key.ts installTransportKey). */
export interface InstallJob {
  id: number;
  op: 'install-transport';
  owner: Uint8Array;
  publicKey: Uint8Array;
  privateKey: Uint8Array;
  /** RSA-OAEP(KT) under the pair's public key. */
  wrapped: Uint8Array;
}

/**
 * Before a transport key set-up: is the user still logged in (asked through
 * the anchor session)? When so, the worker opens the owner session of the
 * set-up and answers it.
 */
export interface PrepareJob {
  id: number;
  op: 'prepare';
  anchor: Uint8Array | null;
}

/** Log in again on the anchor (null: the token lost it; a new session is opened). */
export interface LoginJob {
  id: number;
  op: 'login';
  anchor: Uint8Array | null;
  pin: string;
}

/** Close a session of the main thread's set (a lost transport key's owner session). */
export interface CloseSessionJob {
  id: number;
  op: 'close-session';
  session: Uint8Array;
}

export type TokenJob = SealJob | OpenJob | RsaPairJob | InstallJob | PrepareJob | LoginJob | CloseSessionJob;

/**
 * A job's answer; `ops` counts the token calls that did crypto (data-key
 * unwraps and per-field GCM). A worker thread adds `session`: whether it
 * holds its operation session after the job (for the sessions gauge).
 */
export type TokenReply = { session?: boolean } & (
  | { id: number; ok: true; ops: number; sealed: Uint8Array[] }
  | {
      id: number;
      ok: true;
      ops: number;
      /** Plaintexts (transferred): item i is `lengths[i]` bytes at `at[i]`, or failed when `lengths[i]` is -1. */
      opened: ArrayBuffer;
      at: number[];
      lengths: number[];
    }
  | {
      id: number;
      ok: true;
      ops: number;
      publicKey: Uint8Array;
      privateKey: Uint8Array;
      spki: Uint8Array;
    }
  | { id: number; ok: true; ops: number; object: Uint8Array }
  | { id: number; ok: true; ops: number; loggedIn: boolean; anchorValid: boolean; owner: Uint8Array | null }
  | { id: number; ok: true; ops: number; anchor: Uint8Array }
  | { id: number; ok: true; ops: number; closed: true }
  | {
      id: number;
      ok: false;
      ops: number;
      /** The CK_RV, when the failure was a PKCS#11 error. */
      rv?: number;
      /** First line of the error: a step and a CKR name, never data or keys. */
      message: string;
    }
);
