/**
 * TEST-ONLY key export. The one function in OpenKCM that returns key bytes;
 * it works only in a process started with KCM_INSECURE_KEY_EXPORT=tests (both
 * backends read the variable once, at load) and exists so tests can search
 * stored bytes for every plaintext key held in memory. Production code must
 * never import this file (a test checks that nothing outside test/ does).
 */
import { cryptoFor, type KeyHandle } from '../index.ts';

export function insecureExportKeyForTests(key: KeyHandle): Buffer {
  const crypto = cryptoFor(key.backend);
  return crypto.backend.insecureExportKey(crypto.refOf(key));
}
