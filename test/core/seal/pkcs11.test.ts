/**
 * The PKCS#11 seal provider against a real SoftHSM2 token (made per test
 * process by test/support/softhsm.ts). Skipped with the reason when SoftHSM is
 * not installed, except under CI=true, where it must run.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createPkcs11SealKey } from '../../../core/src/seal/pkcs11/create-seal-key.ts';
import { acquirePkcs11Module } from '../../../core/src/seal/pkcs11/pkcs11-module.ts';
import {
  PKCS11_CIPHERTEXT_BYTES,
  type Pkcs11SealConfig,
  Pkcs11SealProvider,
} from '../../../core/src/seal/pkcs11/pkcs11-provider.ts';
import { withRetry } from '../../../core/src/seal/retry.ts';
import type { SealContext } from '../../../core/src/seal/seal-provider.ts';
import { createSoftHsmToken, type SoftHsmToken, softHsmSkip } from '../../support/softhsm.ts';
import { recordingSleep, rejectsWithKind } from './seal-assert.ts';

const CTX: SealContext = { clusterId: 'cluster-7f3a', region: 'eu-central-1' };
const KEY_LABEL = 'openkcm-seal';

describe('Pkcs11SealProvider (SoftHSM2)', { skip: softHsmSkip() }, () => {
  let tokenA: SoftHsmToken;
  let tokenB: SoftHsmToken;
  let keyVersion: string;
  const providers: Pkcs11SealProvider[] = [];

  const configA = (over: Partial<Pkcs11SealConfig> = {}): Pkcs11SealConfig => ({
    modulePath: tokenA.modulePath,
    tokenLabel: tokenA.tokenLabel,
    pin: tokenA.pin,
    keyLabel: KEY_LABEL,
    ...over,
  });
  const open = (config: Pkcs11SealConfig) => {
    const p = new Pkcs11SealProvider(config);
    providers.push(p);
    return p;
  };

  before(async () => {
    // Every token first: SoftHSM enumerates tokens at C_Initialize (first provider).
    tokenA = createSoftHsmToken();
    tokenB = createSoftHsmToken();
    ({ keyVersion } = await createPkcs11SealKey(configA()));
  });

  after(async () => {
    await Promise.all(providers.map((p) => p.close()));
    tokenA?.cleanup();
    tokenB?.cleanup();
  });

  it('createPkcs11SealKey makes a key with a 16-byte CKA_ID and refuses a duplicate label', async () => {
    assert.match(keyVersion, /^[0-9a-f]{32}$/);
    await rejectsWithKind(createPkcs11SealKey(configA()), 'config', /already exists/);
  });

  it('round-trips a 32-byte data key: iv ‖ ct ‖ tag, keyId = label, keyVersion = CKA_ID', async () => {
    const p = open(configA());
    const { plaintext, encrypted } = await p.generateDataKey(CTX);
    assert.equal(plaintext.length, 32);
    assert.equal(encrypted.ciphertext.length, PKCS11_CIPHERTEXT_BYTES);
    assert.equal(encrypted.keyId, KEY_LABEL);
    assert.equal(encrypted.keyVersion, keyVersion);
    assert.deepEqual(await p.decryptDataKey(encrypted, CTX), plaintext);
    const second = open(configA());
    assert.deepEqual(await second.decryptDataKey(encrypted, CTX), plaintext, 'another provider on the same token');
  });

  it('fails invalid_ciphertext for another cluster or region', async () => {
    const p = open(configA());
    const { encrypted } = await p.generateDataKey(CTX);
    await rejectsWithKind(p.decryptDataKey(encrypted, { ...CTX, clusterId: 'cluster-other' }), 'invalid_ciphertext');
    await rejectsWithKind(p.decryptDataKey(encrypted, { ...CTX, region: 'us-east-1' }), 'invalid_ciphertext');
  });

  it('fails invalid_ciphertext for every flipped byte, and for a short or long blob', async () => {
    const p = open(configA());
    const { plaintext, encrypted } = await p.generateDataKey(CTX);
    for (let i = 0; i < encrypted.ciphertext.length; i++) {
      const ciphertext = Buffer.from(encrypted.ciphertext);
      ciphertext[i] = (ciphertext[i] as number) ^ 0x80;
      await rejectsWithKind(p.decryptDataKey({ ...encrypted, ciphertext }, CTX), 'invalid_ciphertext');
    }
    const short = encrypted.ciphertext.subarray(0, PKCS11_CIPHERTEXT_BYTES - 1);
    const long = Buffer.concat([encrypted.ciphertext, Buffer.alloc(1)]);
    await rejectsWithKind(p.decryptDataKey({ ...encrypted, ciphertext: short }, CTX), 'invalid_ciphertext');
    await rejectsWithKind(p.decryptDataKey({ ...encrypted, ciphertext: long }, CTX), 'invalid_ciphertext');
    assert.deepEqual(await p.decryptDataKey(encrypted, CTX), plaintext, 'the session survives tag failures');
  });

  it('maps a missing key label or CKA_ID to key_not_found', async () => {
    await rejectsWithKind(open(configA({ keyLabel: 'no-such-key' })).generateDataKey(CTX), 'key_not_found');
    const p = open(configA());
    const { encrypted } = await p.generateDataKey(CTX);
    await rejectsWithKind(p.decryptDataKey({ ...encrypted, keyId: 'no-such-key' }, CTX), 'key_not_found');
    await rejectsWithKind(p.decryptDataKey({ ...encrypted, keyVersion: '00'.repeat(16) }, CTX), 'key_not_found');
  });

  it('maps a wrong PIN to access_denied, also while the token is logged in by another provider', async () => {
    await rejectsWithKind(
      open({ ...configA(), tokenLabel: tokenB.tokenLabel, pin: 'wrong-pin' }).generateDataKey(CTX),
      'access_denied',
    );
    await open(configA()).generateDataKey(CTX); // token A is logged in now
    const bad = await rejectsWithKind(open(configA({ pin: 'wrong-pin' })).generateDataKey(CTX), 'access_denied');
    assert.ok(!bad.message.includes('wrong-pin'), 'the PIN is not echoed');
    // the right PIN on token B logs in; B simply has no seal key
    await rejectsWithKind(
      open({ ...configA(), tokenLabel: tokenB.tokenLabel, pin: tokenB.pin }).generateDataKey(CTX),
      'key_not_found',
    );
  });

  it('maps an unknown token label and a bad module path to config', async () => {
    await rejectsWithKind(open(configA({ tokenLabel: 'no-such-token' })).generateDataKey(CTX), 'config', /no token/);
    await rejectsWithKind(
      () => new Pkcs11SealProvider(configA({ modulePath: '/nonexistent/libpkcs11.so' })),
      'config',
      /modulePath/,
    );
    await rejectsWithKind(() => new Pkcs11SealProvider(configA({ keyLabel: '' })), 'config', /config\.keyLabel/);
    await rejectsWithKind(
      () => new Pkcs11SealProvider({ ...configA(), pin: undefined } as never),
      'config',
      /config\.pin/,
    );
  });

  it('reopens a lost session: unavailable once, then works; withRetry hides it', async () => {
    const p = open(configA());
    const { plaintext, encrypted } = await p.generateDataKey(CTX);
    const dropAllSessions = () => {
      const mod = acquirePkcs11Module(tokenA.modulePath);
      try {
        mod.lib.C_CloseAllSessions(mod.findSlot(tokenA.tokenLabel));
      } finally {
        mod.release();
      }
    };
    dropAllSessions();
    await rejectsWithKind(p.decryptDataKey(encrypted, CTX), 'unavailable', /CKR_SESSION_HANDLE_INVALID/);
    assert.deepEqual(await p.decryptDataKey(encrypted, CTX), plaintext);

    dropAllSessions();
    const { sleep, delays } = recordingSleep();
    const out = await withRetry(() => p.decryptDataKey(encrypted, CTX), { attempts: 3, baseMs: 10, maxMs: 100, sleep });
    assert.deepEqual(out, plaintext);
    assert.equal(delays.length, 1);
  });

  it('serialises concurrent calls on its one session', async () => {
    const p = open(configA());
    const made = await Promise.all(Array.from({ length: 16 }, () => p.generateDataKey(CTX)));
    const back = await Promise.all(made.map((m) => p.decryptDataKey(m.encrypted, CTX)));
    for (const [i, b] of back.entries()) assert.deepEqual(b, made[i]?.plaintext);
    assert.equal(new Set(made.map((m) => m.plaintext.toString('hex'))).size, 16);
  });

  it('lets calls made before close finish, refuses later ones (config); close is idempotent', async () => {
    const p = open(configA());
    const pending = [p.generateDataKey(CTX), p.generateDataKey(CTX)];
    await p.close();
    for (const r of await Promise.all(pending)) assert.equal(r.plaintext.length, 32);
    await p.close();
    await rejectsWithKind(p.generateDataKey(CTX), 'config', /closed/);
  });
});
