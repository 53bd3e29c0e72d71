/**
 * Compiled policies: what the loader produces from the files in policies/
 * (schema: policies/README.md) and what the pipeline reads per request.
 * Everything here is validated; nothing is re-checked per request.
 */
import type { RoutePattern } from './route-pattern.ts';
import type { Selector } from './selector.ts';
import type { TenantSource } from './tenant-source.ts';

/** A selected value is absent (or null): fail the request, or leave it absent. */
export type OnMissing = 'error' | 'skip';
/** A selected value is a number, boolean, object or array: fail, or encrypt its JSON text. */
export type NonString = 'error' | 'stringify';
/** What a caller who may not read plaintext gets: the ciphertext unchanged, or the mask string. */
export type OtherReaders = 'ciphertext' | 'mask';
/** A response field fails to decrypt: fail the response (opaque 422), or answer the mask. */
export type OnFailure = 'error' | 'mask';

/**
 * Where a route's field AEAD runs: in the native module (default), or inside
 * the PKCS#11 token of the gateway's `hsm` config (gateway/src/hsm/). The
 * ciphertext format is the same either way.
 */
export type FieldBackend = 'native' | 'pkcs11';

export const FIELD_BACKENDS: readonly FieldBackend[] = ['native', 'pkcs11'];
export const ON_MISSING: readonly OnMissing[] = ['error', 'skip'];
export const NON_STRING: readonly NonString[] = ['error', 'stringify'];
export const OTHER_READERS: readonly OtherReaders[] = ['ciphertext', 'mask'];
export const ON_FAILURE: readonly OnFailure[] = ['error', 'mask'];

/** Who receives plaintext of a response field. */
export interface Readers {
  identities: ReadonlySet<string>;
  roles: ReadonlySet<string>;
  others: OtherReaders;
  mask: string;
}

/** What makes a field's ciphertext belong to one record (bound into its AAD). */
export type RecordIdSource = { from: 'pathParam'; param: string } | { from: 'selector'; selector: Selector };

/** One selected field of a request or response body. */
export interface FieldRule {
  selector: Selector;
  /** The logical field name bound into the AAD (defaults to the selector text). */
  field: string;
  onMissing: OnMissing;
  nonString: NonString;
  recordId?: RecordIdSource;
}

export interface ResponseFieldRule extends FieldRule {
  readers: Readers;
  onFailure: OnFailure;
}

export interface BodyLimits {
  /** Largest body, in bytes, before parsing (413 `body_too_large`). */
  bodyBytes: number;
  /** Deepest nesting of arrays and objects (400 `json_too_deep`). */
  maxDepth: number;
  /** Most fields the selectors may hit in one body (413 `too_many_fields`). */
  maxFields: number;
}

export const DEFAULT_LIMITS: BodyLimits = { bodyBytes: 1 << 20, maxDepth: 64, maxFields: 1000 };
export const LIMIT_BOUNDS: { [K in keyof BodyLimits]: readonly [number, number] } = {
  bodyBytes: [1, 64 << 20],
  maxDepth: [1, 512],
  maxFields: [1, 100_000],
};

export interface Upstream {
  /** The name in the policy's `upstreams`, or the URL itself when the route gave a URL. */
  name: string;
  url: URL;
}

/** One route, ready to match and transform. */
export interface CompiledRoute {
  /** The policy id; bound into every field's AAD. */
  policyId: string;
  /** The L3 service key id the fields are encrypted under (per tenant). */
  keyId: string;
  /** Where it was defined, for logs: `file:line:column`. */
  source: string;
  /** Upper-case method, or `*` for any. */
  method: string;
  pattern: RoutePattern;
  upstream: Upstream;
  tenant: TenantSource;
  limits: BodyLimits;
  request: readonly FieldRule[];
  response: readonly ResponseFieldRule[];
  /** Where its fields are encrypted and decrypted; absent means `native` (routes built by hand). */
  backend?: FieldBackend;
}

/** One policy file, compiled. */
export interface CompiledPolicy {
  id: string;
  keyId: string;
  file: string;
  routes: CompiledRoute[];
}
