/**
 * BYOK into a PKCS#11 HSM (ADR-504): the customer's 32 bytes of AES key
 * material become a token object that can never leave the HSM again. The
 * tenant's L1Ref then names it by label. (Real deployments import wrapped
 * material with C_UnwrapKey under a transport key; this helper is the plain
 * C_CreateObject path for operators who hold the material on the Core host,
 * and for tests against SoftHSM2.)
 */
import pkcs11js from 'pkcs11js';
import { newPkcs11AesKey } from '../seal/pkcs11/create-seal-key.ts';
import type { Pkcs11SealConfig } from '../seal/pkcs11/pkcs11-provider.ts';
import { SealProviderError } from '../seal/seal-provider.ts';

const P = pkcs11js;

/**
 * C_CreateObject of an AES-256 secret key labelled `config.keyLabel` with
 * value `material`: CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE true,
 * CKA_EXTRACTABLE false, CKA_ENCRYPT/DECRYPT true, CKA_WRAP/UNWRAP false,
 * CKA_ID = 16 random bytes from the token (returned in hex as `keyVersion`).
 * `material` is zero-filled on every path (the token holds the only copy).
 *
 * Throws SealProviderError `config` when `material` is not 32 bytes or a
 * secret key with that label exists, `access_denied` for a wrong PIN,
 * `unavailable` when the token fails.
 */
export async function importPkcs11AesKey(
  config: Pkcs11SealConfig,
  material: Buffer,
): Promise<{ keyLabel: string; keyVersion: string }> {
  try {
    if (!Buffer.isBuffer(material) || material.length !== 32) {
      throw new SealProviderError('config', 'pkcs11', 'key material must be exactly 32 bytes (AES-256)');
    }
    return await newPkcs11AesKey(config, 'import key', (lib, session, attrs) =>
      lib.C_CreateObject(session, [...attrs, { type: P.CKA_VALUE, value: material }]),
    );
  } finally {
    if (Buffer.isBuffer(material)) material.fill(0);
  }
}
