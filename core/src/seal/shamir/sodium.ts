/**
 * libsodium (WebAssembly), loaded once for the whole share-distribution code:
 * X25519 sealed boxes (crypto_box_seal) to hand each share to its holder, and
 * Ed25519 (crypto_sign_detached) to sign the share headers (ADR-204,
 * ARCHITECTURE.md "Dependencies"). Importing this module waits for
 * `sodium.ready` (top-level await, a few milliseconds), so every function of
 * this folder can stay synchronous.
 */
import sodium from 'libsodium-wrappers';

await sodium.ready;

/** X25519 public and secret keys (RFC 7748). */
export const X25519_KEY_BYTES = 32;
/** Ed25519 public key (RFC 8032). */
export const ED25519_PUBLIC_KEY_BYTES = 32;
/** Ed25519 signature (RFC 8032). */
export const ED25519_SIGNATURE_BYTES = 64;
/** crypto_box_seal overhead: ephemeral X25519 public key (32) + Poly1305 tag (16). */
export const SEALED_BOX_OVERHEAD = 48;

if (
  sodium.crypto_box_PUBLICKEYBYTES !== X25519_KEY_BYTES ||
  sodium.crypto_box_SECRETKEYBYTES !== X25519_KEY_BYTES ||
  sodium.crypto_sign_PUBLICKEYBYTES !== ED25519_PUBLIC_KEY_BYTES ||
  sodium.crypto_sign_BYTES !== ED25519_SIGNATURE_BYTES ||
  sodium.crypto_box_SEALBYTES !== SEALED_BOX_OVERHEAD
) {
  throw new Error('libsodium constants differ from SPEC.md §9');
}

export { sodium };
