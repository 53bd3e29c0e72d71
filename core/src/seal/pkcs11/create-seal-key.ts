/**
 * Creates the AES-256 seal key on a PKCS#11 token (tests and operator setup;
 * the provider itself never creates keys).
 */
import pkcs11js from 'pkcs11js';
import { SealProviderError } from '../seal-provider.ts';
import { pkcs11SealError } from './pkcs11-errors.ts';
import { acquirePkcs11Module } from './pkcs11-module.ts';
import { type Pkcs11SealConfig, validatePkcs11Config } from './pkcs11-provider.ts';

const P = pkcs11js;
/** Bytes of the CKA_ID given to new keys (it becomes keyVersion, in hex). */
export const SEAL_KEY_ID_BYTES = 16;

/**
 * C_GenerateKey(CKM_AES_KEY_GEN) of a 32-byte token object labelled
 * `config.keyLabel`: CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE true;
 * CKA_EXTRACTABLE false (the key can never leave the HSM); CKA_ENCRYPT and
 * CKA_DECRYPT true, CKA_WRAP/UNWRAP false; CKA_ID = 16 random bytes from the
 * token, returned in hex as `keyVersion`.
 *
 * Throws SealProviderError `config` when a secret key with that label already
 * exists (a second one would make the label ambiguous) or for a bad field,
 * `access_denied` for a wrong PIN, `unavailable` when the token fails.
 */
export async function createPkcs11SealKey(config: Pkcs11SealConfig): Promise<{ keyLabel: string; keyVersion: string }> {
  return newPkcs11AesKey(config, 'create key', (lib, session, attrs) =>
    lib.C_GenerateKeyAsync(session, { mechanism: P.CKM_AES_KEY_GEN }, [...attrs, { type: P.CKA_VALUE_LEN, value: 32 }]),
  );
}

/**
 * The shared part of making a new AES-256 token key (generated here, or
 * imported by core/src/l1/pkcs11-import-key.ts): logs in, refuses a label
 * that is already taken, draws the CKA_ID, and hands `make` the attribute
 * template both use (class, type, token/private/sensitive, never
 * extractable, encrypt/decrypt only, label, id); `make` adds CKA_VALUE or
 * CKA_VALUE_LEN and creates the object. `what` names the step in errors.
 * Throws as createPkcs11SealKey.
 */
export async function newPkcs11AesKey(
  config: Pkcs11SealConfig,
  what: string,
  make: (lib: pkcs11js.PKCS11, session: Buffer, attrs: pkcs11js.Template) => unknown,
): Promise<{ keyLabel: string; keyVersion: string }> {
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
    const id = lib.C_GenerateRandom(session, Buffer.alloc(SEAL_KEY_ID_BYTES));
    await make(lib, session, [
      { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY },
      { type: P.CKA_KEY_TYPE, value: P.CKK_AES },
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
    throw pkcs11SealError(err, what).error;
  } finally {
    if (slot && session) mod.closeSession(slot, session);
    mod.release();
  }
}
