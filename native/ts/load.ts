/**
 * Chooses the crypto backend for this process.
 *
 * KCM_CRYPTO_BACKEND=native  → the Rust module or an error (never a silent fallback).
 * KCM_CRYPTO_BACKEND=node    → the node:crypto fallback.
 * unset / empty              → native when its binary loads, else node, with a loud warning.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CryptoBackend } from './backend.ts';
import { nodeBackend } from './node-backend.ts';

export type BackendName = 'native' | 'node';

/** Where the built binary lives: native/openkcm-native.<platform>-<arch>[-gnu].node. */
export const NATIVE_DIR = join(dirname(fileURLToPath(import.meta.url)), '..');

export function nativeBinaryPath(): string {
  const abi = process.platform === 'linux' ? '-gnu' : '';
  return join(NATIVE_DIR, `openkcm-native.${process.platform}-${process.arch}${abi}.node`);
}

/** Compiled rules of the native JSON target scan (an opaque handle from `jsonTargetsRules`). */
export type JsonTargetsRules = { readonly __jsonTargetsRules: unique symbol };

/**
 * The native JSON target scan (src/json_targets.rs): `jsonTargetsRules`
 * compiles encoded rules once; `jsonTargets` answers 4 native-endian u32 per
 * target, or null (declined).
 */
export interface JsonTargetsFns {
  jsonTargetsRules(encoded: Uint8Array): JsonTargetsRules;
  jsonTargets(body: Uint8Array, rules: JsonTargetsRules, maxDepth: number, maxFields: number): Buffer | null;
}

/** What the native upstream-answer parser (src/http1_answer.rs) read from one answer: see `http1Answer`. */
export interface Http1AnswerOutcome {
  outcome: 'done' | 'partial' | 'failed';
  started: boolean;
  status: number;
  /** Name, value, name, value, …: lower-cased names, trimmed Latin-1 values, in arrival order. */
  headers: string[];
  body: Buffer;
  keepAlive: boolean;
  failure: 'bad_response' | 'too_large' | 'unavailable' | null;
  what: string | null;
}

/**
 * The native twin of the gateway's upstream answer parser
 * (gateway/src/upstream/h1-parser.ts), the first piece of a native data plane
 * (docs/decisions/0001-native-data-plane.md): feeds `chunks`, stopping at the
 * first failure; `flags` 1: the request was HEAD, 2: the connection ended
 * after the chunks.
 */
export interface Http1AnswerFns {
  http1Answer(chunks: Uint8Array[], flags: number, maxHead: number, maxBody: number): Http1AnswerOutcome;
  /**
   * The strict request-head parser (src/http1_request.rs): null while the head
   * is incomplete, the reason it declines, or the head it read.
   */
  http1RequestHead(bytes: Uint8Array, maxHead: number, maxHeaders: number): Http1RequestHead | null;
}

/** What `http1RequestHead` answers. */
export type Http1RequestHead =
  | { decline: string }
  | {
      /** Bytes of the head, final CRLF CRLF included. */
      len: number;
      method: string;
      target: string;
      /** Name as sent, value trimmed, name, value, … */
      headers: string[];
      contentLength: number;
      close: boolean;
    };

/** A running native front (src/front/): an opaque handle from `frontStart`. */
export type NativeFrontHandle = { readonly __nativeFront: unique symbol };

/** Counters of a native front. */
export interface NativeFrontStats {
  port: number;
  /** Client connections open. */
  connections: number;
  /** Requests it served itself. */
  served: number;
  /** Connections it handed to the pipeline. */
  declined: number;
  /** Request records dropped because nobody drained them. */
  lost: number;
  /** Requests it serves that are not answered yet. */
  inFlight: number;
  /** Why its loop stopped, or null while it runs. */
  failure: string | null;
}

/**
 * The native front (src/front/, gateway/src/native-front/): an HTTP/1.1
 * listener on its own thread that serves the routes its table marks and
 * tunnels every other connection to the pipeline's Unix socket.
 */
export interface NativeFrontFns {
  /** Binds `host` (an IP address) and `port`, starts serving from `table`; declined connections go to `tunnelPath`. */
  frontStart(host: Uint8Array, port: number, tunnelPath: Uint8Array, table: Uint8Array): NativeFrontHandle;
  /** Serves from `table` from the next request on. */
  frontTable(front: NativeFrontHandle, table: Uint8Array): void;
  /** Request records since the last drain: one little-endian u64 each (name id << 40 | status << 30 | µs). */
  frontDrain(front: NativeFrontHandle): Buffer;
  frontStats(front: NativeFrontHandle): NativeFrontStats;
  /** Stops the loop and closes its connections (idempotent). */
  frontStop(front: NativeFrontHandle): void;
  /**
   * The front seals `tenant`'s requests for `keyId` under a copy of `kek`
   * (version `version`) for at most `ttlMs`; `kek` null removes it.
   */
  frontKey(
    front: NativeFrontHandle,
    tenant: Uint8Array,
    keyId: Uint8Array,
    kek: unknown,
    version: number,
    ttlMs: number,
    wrapAad: Uint8Array,
    header: Uint8Array,
    aadHead: Uint8Array,
  ): void;
  /** Removes every key of `tenant` (an empty tenant: every key). */
  frontForget(front: NativeFrontHandle, tenant: Uint8Array): void;
  /** Keys requests needed and the front lacked, and requests sealed per key version, since the last call. */
  frontKeyDemand(front: NativeFrontHandle): {
    wanted: [tenant: string, keyId: string][];
    uses: [tenant: string, keyId: string, version: number, count: number][];
  };
}

export interface NativeLoadResult {
  backend:
    | (CryptoBackend & { processHarden(): { coreDumpsDisabled: boolean } } & Partial<JsonTargetsFns> &
        Partial<Http1AnswerFns> &
        Partial<NativeFrontFns>)
    | null;
  path: string;
  /** Why the native module did not load, when it did not. */
  error?: string;
}

let nativeResult: NativeLoadResult | undefined;

/** Loads the native module once; never throws. */
export function loadNative(): NativeLoadResult {
  if (nativeResult) return nativeResult;
  const path = nativeBinaryPath();
  if (!existsSync(path)) {
    nativeResult = { backend: null, path, error: `binary not built (${path}); run npm run build:native` };
    return nativeResult;
  }
  try {
    const mod = createRequire(import.meta.url)(path) as Record<string, unknown>;
    nativeResult = { backend: Object.freeze({ ...mod, name: 'native' }) as NativeLoadResult['backend'], path };
  } catch (err) {
    nativeResult = { backend: null, path, error: err instanceof Error ? err.message : String(err) };
  }
  return nativeResult;
}

/** Returns the named backend, or throws with the reason it cannot be had. */
export function backendByName(name: BackendName): CryptoBackend {
  if (name === 'node') return nodeBackend;
  const native = loadNative();
  if (!native.backend) throw new Error(`native crypto backend unavailable: ${native.error}`);
  return native.backend;
}

let warned = false;

/** The backend this process uses, from KCM_CRYPTO_BACKEND (see the file comment). */
export function selectBackend(env: NodeJS.ProcessEnv = process.env): CryptoBackend {
  const wanted = env.KCM_CRYPTO_BACKEND?.trim() ?? '';
  if (wanted === 'native' || wanted === 'node') return backendByName(wanted);
  if (wanted !== '') throw new Error(`KCM_CRYPTO_BACKEND must be "native" or "node", got ${JSON.stringify(wanted)}`);
  const native = loadNative();
  if (native.backend) return native.backend;
  if (!warned) {
    warned = true;
    process.emitWarning(
      `native crypto module not loaded (${native.error}); falling back to node:crypto: ` +
        'keys are NOT in locked memory and batches cost one call per item',
      { code: 'KCM_CRYPTO_FALLBACK' },
    );
  }
  return nodeBackend;
}
