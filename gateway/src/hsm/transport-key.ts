/**
 * Sets up the transport key shared by the native module and the token, once
 * per gateway process (native/src/transport.rs has the design):
 *
 *   1. the token generates an ephemeral RSA-2048 key pair as session objects;
 *      the private key is sensitive, never extractable, and may only unwrap;
 *   2. the native module makes a fresh AES-256 key KT in locked memory and
 *      returns it RSA-OAEP-encrypted under the public key
 *      (Crypto.generateTransportKey: KT's bytes are never in JS);
 *   3. the token C_UnwrapKey's it into a session AES key KT' (sensitive,
 *      non-extractable, CKA_UNWRAP only);
 *   4. the RSA key pair is destroyed.
 *
 * KT' lives in a session of its own (the owner session), never used for
 * operations, so that dropping a failed operation session cannot destroy it.
 *
 * Steps 1, 3 and 4 run in the token as jobs of a token worker (makeRsaPair,
 * installTransportKey); step 2 on the event loop (setUpTransportKey), which
 * then keeps the owner session with its own (TokenSessions.adopt).
 */
import { createPublicKey } from 'node:crypto';
import pkcs11js from 'pkcs11js';
import type { Crypto, KeyHandle } from '../../../native/index.ts';
import { type Pkcs11Lib, sessionAesKey, tokenError } from './token-sessions.ts';

const P = pkcs11js;
const RSA_BITS = 2048;
/** PKCS#11 CKZ_DATA_SPECIFIED (the OAEP label source; pkcs11js has no constant for it). */
const CKZ_DATA_SPECIFIED = 1;

/** The two halves of the transport key, and the session that owns the token half. */
export interface TransportKey {
  /** KT in the native module (only wraps data keys for the token). */
  key: KeyHandle;
  /** KT' in the token: a session object of `owner`. */
  object: Buffer;
  owner: Buffer;
}

/** Template of KT': an AES key that can unwrap data keys and do nothing else, never readable. */
const TRANSPORT_TEMPLATE = sessionAesKey({ unwrap: true });

/**
 * RSA-OAEP with SHA-1 and MGF1-SHA-1: SoftHSM2 unwraps with no other OAEP
 * hash (CKR_ARGUMENTS_BAD), and it suffices for one-time key transport (see
 * native/src/transport.rs).
 */
const OAEP_PARAMS: pkcs11js.RsaOAEP = {
  type: P.CK_PARAMS_RSA_OAEP,
  hashAlg: P.CKM_SHA_1,
  mgf: P.CKG_MGF1_SHA1,
  source: CKZ_DATA_SPECIFIED,
};
const OAEP_SHA1: pkcs11js.Mechanism = { mechanism: P.CKM_RSA_PKCS_OAEP, parameter: OAEP_PARAMS };

function generateRsaPair(lib: Pkcs11Lib, s: Buffer): { publicKey: Buffer; privateKey: Buffer } {
  return lib.C_GenerateKeyPair(
    s,
    { mechanism: P.CKM_RSA_PKCS_KEY_PAIR_GEN },
    [
      { type: P.CKA_TOKEN, value: false },
      { type: P.CKA_MODULUS_BITS, value: RSA_BITS },
      { type: P.CKA_PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) },
      { type: P.CKA_ENCRYPT, value: false },
      { type: P.CKA_WRAP, value: false },
      { type: P.CKA_VERIFY, value: false },
    ],
    [
      { type: P.CKA_TOKEN, value: false },
      { type: P.CKA_PRIVATE, value: true },
      { type: P.CKA_SENSITIVE, value: true },
      { type: P.CKA_EXTRACTABLE, value: false },
      { type: P.CKA_UNWRAP, value: true },
      { type: P.CKA_DECRYPT, value: false },
      { type: P.CKA_SIGN, value: false },
    ],
  );
}

/** The DER SubjectPublicKeyInfo of the token's RSA public key (read from CKA_MODULUS / CKA_PUBLIC_EXPONENT). */
function publicKeyInfo(lib: Pkcs11Lib, s: Buffer, publicKey: Buffer): Buffer {
  const [n, e] = lib
    .C_GetAttributeValue(s, publicKey, [{ type: P.CKA_MODULUS }, { type: P.CKA_PUBLIC_EXPONENT }])
    .map((a) => a.value as Buffer);
  if (!n || !e) throw new Error('the token returned no RSA public key');
  const jwk = { kty: 'RSA', n: n.toString('base64url'), e: e.toString('base64url') };
  return createPublicKey({ key: jwk, format: 'jwk' }).export({ type: 'spki', format: 'der' });
}

/** The RSA pair of step 1 (object handles in the owner session), with the public key as DER SubjectPublicKeyInfo. */
export interface RsaPair {
  publicKey: Buffer;
  privateKey: Buffer;
  spki: Buffer;
}

/**
 * Step 1, in the token (a token worker's job): generates the RSA pair in the
 * owner session `owner`. On failure, closing the owner session (the main
 * thread's part) removes whatever was made.
 */
export function makeRsaPair(lib: Pkcs11Lib, owner: Buffer): RsaPair {
  const pair = generateRsaPair(lib, owner);
  return { ...pair, spki: publicKeyInfo(lib, owner, pair.publicKey) };
}

/**
 * Step 3, in the token: unwraps RSA-OAEP(KT) (`wrapped`) into KT' in the
 * owner session and destroys the RSA pair (step 4) whatever happens. Answers
 * KT'.
 */
export function installTransportKey(
  lib: Pkcs11Lib,
  owner: Buffer,
  pair: Omit<RsaPair, 'spki'>,
  wrapped: Buffer,
): Buffer {
  try {
    return lib.C_UnwrapKey(owner, OAEP_SHA1, pair.privateKey, wrapped, TRANSPORT_TEMPLATE);
  } finally {
    for (const h of [pair.privateKey, pair.publicKey]) {
      try {
        lib.C_DestroyObject(owner, h);
      } catch {
        // closing the owner session on failure removes it anyway
      }
    }
  }
}

/** How the set-up reaches the token: the steps above, run where the token calls run (a token worker, or inline). */
export interface TransportSteps {
  makeRsaPair(owner: Buffer): Promise<RsaPair>;
  install(owner: Buffer, pair: Omit<RsaPair, 'spki'>, wrapped: Buffer): Promise<Buffer>;
  /** Closes the owner session after a failed set-up (`err`: why), removing what the token made in it. */
  closeOwner(owner: Buffer, err: unknown): void;
}

/**
 * Runs the set-up above in the owner session `owner` with KT made by
 * `crypto` (the backend of the L3 keys it will serve): steps 1 and 3 run
 * through `steps`, step 2 here. On any failure (a step refused, timed out or
 * lost with its worker) the owner session is closed through `steps`, which
 * removes what the token made, and KT is destroyed. Rejects with
 * `hsm_unavailable`.
 */
export async function setUpTransportKey(owner: Buffer, steps: TransportSteps, crypto: Crypto): Promise<TransportKey> {
  let key: KeyHandle | undefined;
  try {
    const pair = await steps.makeRsaPair(owner);
    const made = crypto.generateTransportKey(pair.spki);
    key = made.key;
    const object = await steps.install(owner, pair, made.wrapped);
    return { key, object, owner };
  } catch (err) {
    key?.destroy();
    steps.closeOwner(owner, err);
    throw tokenError('transport key set-up', err);
  }
}
