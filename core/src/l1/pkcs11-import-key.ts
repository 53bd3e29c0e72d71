/**
 * BYOK into a PKCS#11 HSM (ADR-504): the customer's 32 bytes of AES key
 * material become a token object that can never leave the HSM again. The
 * tenant's L1Ref then names it by label. (Real deployments import wrapped
 * material with C_UnwrapKey under a transport key; this helper is the plain
 * C_CreateObject path for operators who hold the material on the Core host,
 * and for tests against SoftHSM2.)
 */
import pkcs11js from 'pkcs11js';
import { pkcs11SealError } from '../seal/pkcs11/pkcs11-errors.ts';
import { acquirePkcs11Module } from '../seal/pkcs11/pkcs11-module.ts';
import { type Pkcs11SealConfig, validatePkcs11Config } from '../seal/pkcs11/pkcs11-provider.ts';
import { SealProviderError } from '../seal/seal-provider.ts';

const P = pkcs11js;
const ID_BYTES = 16;

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
    const c = validatePkcs11Config(config);
    const mod = acquirePkcs11Module(c.modulePath);
    let slot: Buffer | undefined;
    let session: Buffer | undefined;
    try {
      slot = mod.findSlot(c.tokenLabel);
      session = mod.openSession(slot, true);
      mod.login(slot, session, c.pin);
      const lib = mod.lib;
      lib.C_FindObjectsInit(session, [
        { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY },
        { type: P.CKA_LABEL, value: c.keyLabel },
      ]);
      const existing = lib.C_FindObjects(session, 1);
      lib.C_FindObjectsFinal(session);
      if (existing.length > 0) {
        throw new SealProviderError('config', 'pkcs11', `a secret key labelled "${c.keyLabel}" already exists`);
      }
      const id = lib.C_GenerateRandom(session, Buffer.alloc(ID_BYTES));
      lib.C_CreateObject(session, [
        { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY },
        { type: P.CKA_KEY_TYPE, value: P.CKK_AES },
        { type: P.CKA_VALUE, value: material },
        { type: P.CKA_TOKEN, value: true },
        { type: P.CKA_PRIVATE, value: true },
        { type: P.CKA_SENSITIVE, value: true },
        { type: P.CKA_EXTRACTABLE, value: false },
        { type: P.CKA_ENCRYPT, value: true },
        { type: P.CKA_DECRYPT, value: true },
        { type: P.CKA_WRAP, value: false },
        { type: P.CKA_UNWRAP, value: false },
        { type: P.CKA_LABEL, value: c.keyLabel },
        { type: P.CKA_ID, value: id },
      ]);
      return { keyLabel: c.keyLabel, keyVersion: id.toString('hex') };
    } catch (err) {
      throw pkcs11SealError(err, 'import key').error;
    } finally {
      if (slot && session) mod.closeSession(slot, session);
      mod.release();
    }
  } finally {
    if (Buffer.isBuffer(material)) material.fill(0);
  }
}
