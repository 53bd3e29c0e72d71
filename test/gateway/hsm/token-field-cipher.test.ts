/**
 * The pkcs11 field backend against a real SoftHSM2 token: ciphertexts made in
 * the token open natively and the other way round (both crypto backends),
 * per-item failures, non-extractable token keys, and no token object left
 * behind by a request, every token call of a request on a worker thread, and
 * the failure paths. Skipped with the reason when SoftHSM is not installed,
 * except under CI=true.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pkcs11js from 'pkcs11js';
import { decryptFieldsAsync, encryptFields, encryptFieldsAsync } from '../../../common/src/crypto/field-cipher.ts';
import { KcmError } from '../../../common/src/errors.ts';
import type { FieldKeyRef } from '../../../common/src/format/envelope.ts';
import { HsmBackend, type HsmBackendOptions } from '../../../gateway/src/hsm/hsm-backend.ts';
import { TokenFieldCipher } from '../../../gateway/src/hsm/token-field-cipher.ts';
import type { TokenReply } from '../../../gateway/src/hsm/token-messages.ts';
import { AES_KW, DATA_KEY_TEMPLATE } from '../../../gateway/src/hsm/token-sessions.ts';
import { TokenWorkers } from '../../../gateway/src/hsm/token-workers.ts';
import { type BackendName, cryptoFor, type KeyHandle } from '../../../native/index.ts';
import { createSoftHsmToken, type SoftHsmToken, softHsmSkip } from '../../support/softhsm.ts';

const P = pkcs11js;
const REF: FieldKeyRef = { tenant: 't1', keyId: 'hsm-orders', keyVersion: 3 };
const ctx = (s: string) => Buffer.from(s);

/** Session objects (CKA_TOKEN false) the token shows to a fresh session of this process. */
function sessionObjects(hsm: HsmBackend): Buffer[] {
  const t = hsm.token;
  const s = t.openSession();
  try {
    t.lib.C_FindObjectsInit(s, [{ type: P.CKA_TOKEN, value: false }]);
    const found = t.lib.C_FindObjects(s, 100);
    t.lib.C_FindObjectsFinal(s);
    return found;
  } finally {
    t.closeSession(s);
  }
}

function assertNotReadable(hsm: HsmBackend, s: Buffer, object: Buffer, what: string): void {
  const lib = hsm.token.lib;
  assert.throws(
    () => lib.C_GetAttributeValue(s, object, [{ type: P.CKA_VALUE }]),
    /CKR_ATTRIBUTE_SENSITIVE/,
    `${what}: CKA_VALUE must be refused`,
  );
  const [sensitive, extractable] = lib
    .C_GetAttributeValue(s, object, [{ type: P.CKA_SENSITIVE }, { type: P.CKA_EXTRACTABLE }])
    .map((a) => (a.value as Buffer)[0]);
  assert.equal(sensitive, 1, `${what}: CKA_SENSITIVE`);
  assert.equal(extractable, 0, `${what}: CKA_EXTRACTABLE`);
}

/** A pkcs11 backend on `t`: the PIN re-read from the token, two workers, the native crypto backend, unless `o` says. */
function openOn(t: SoftHsmToken, o: Partial<HsmBackendOptions> = {}): Promise<HsmBackend> {
  return HsmBackend.open({
    module: t.modulePath,
    tokenLabel: t.tokenLabel,
    pin: () => t.pin,
    sessions: 2,
    crypto: cryptoFor('native'),
    ...o,
  });
}

/**
 * Records every PKCS#11 call made through the main thread's pkcs11js
 * instance of `hsm` (workers have their own); `paused(fn)` runs the test's
 * own calls unrecorded.
 */
function recordCalls(hsm: HsmBackend): { calls: string[]; paused(fn: () => void): void; restore(): void } {
  const lib = hsm.token.lib as unknown as Record<string, unknown>;
  const calls: string[] = [];
  let recording = true;
  const saved = new Map<string, unknown>();
  const names = new Set<string>();
  for (let o: object | null = lib; o; o = Object.getPrototypeOf(o)) {
    for (const n of Object.getOwnPropertyNames(o)) names.add(n);
  }
  for (const name of names) {
    const f = lib[name];
    if (!name.startsWith('C_') || typeof f !== 'function') continue;
    saved.set(name, f);
    lib[name] = (...args: unknown[]) => {
      if (recording) calls.push(name);
      return (f as (...a: unknown[]) => unknown).apply(lib, args);
    };
  }
  return {
    calls,
    paused(fn) {
      recording = false;
      try {
        fn();
      } finally {
        recording = true;
      }
    },
    restore() {
      for (const [name, f] of saved) lib[name] = f;
    },
  };
}

describe('pkcs11 field backend (SoftHSM2)', { skip: softHsmSkip() }, () => {
  let token: SoftHsmToken;
  /** A second token for the test that needs a backend alone on its token (made before the module initialises). */
  let own: SoftHsmToken;
  const backends = new Map<BackendName, HsmBackend>();

  before(() => {
    token = createSoftHsmToken();
    own = createSoftHsmToken();
  });
  after(async () => {
    for (const b of backends.values()) await b.close();
    token?.cleanup();
    own?.cleanup();
  });

  const open = async (name: BackendName): Promise<HsmBackend> => {
    let b = backends.get(name);
    if (!b) {
      b = await openOn(token, { pin: token.pin, crypto: cryptoFor(name) });
      backends.set(name, b);
    }
    return b;
  };

  for (const name of ['native', 'node'] as const) {
    describe(`with the ${name} crypto backend`, () => {
      it('token-encrypted fields open natively, natively encrypted fields open in the token', async () => {
        const hsm = await open(name);
        const l3 = cryptoFor(name).generateKey();
        const view = hsm.view(l3);
        assert.equal(hsm.view(l3), view, 'views are cached per handle');
        const pts = [Buffer.from('4111 1111 1111 1111'), Buffer.alloc(0), Buffer.alloc(1024, 7), Buffer.from('x')];
        const ctxs = pts.map((_, i) => ctx(`order-1/field-${i}`));
        const before = hsm.stats().operations;
        const fromToken = await encryptFieldsAsync(view, REF, pts, ctxs);
        assert.equal(hsm.stats().operations, before + 1 + pts.length, 'one unwrap + one GCM per field');
        const fromNative = encryptFields(l3, REF, pts, ctxs);
        for (const [how, cts, key] of [
          ['token → native', fromToken, l3],
          ['native → token', fromNative, view],
          ['token → token', fromToken, view],
        ] as const) {
          const opened = await decryptFieldsAsync('t1', () => key, cts, ctxs);
          assert.deepEqual(
            opened.map((r) => (r.ok ? r.plaintext : r.reason)),
            pts,
            how,
          );
        }
        // Same format: same length for the same plaintext, one wrapped key per request.
        assert.deepEqual(
          fromToken.map((c) => c.length),
          fromNative.map((c) => c.length),
        );
      });

      it('wrong context, wrong tenant, tampered ciphertext or wrapped key fail per item', async () => {
        const hsm = await open(name);
        const l3 = cryptoFor(name).generateKey();
        const view = hsm.view(l3);
        const [good, other] = (await encryptFieldsAsync(
          view,
          REF,
          [Buffer.from('secret'), Buffer.from('other')],
          [ctx('a'), ctx('b')],
        )) as [string, string];
        const body = Buffer.from(good.slice('okcm:1:'.length), 'base64url');
        const tamper = (offsetFromEnd: number) => {
          const b = Buffer.from(body);
          b[b.length - offsetFromEnd] = (b[b.length - offsetFromEnd] as number) ^ 1;
          return `okcm:1:${b.toString('base64url')}`;
        };
        // The wrapped key sits 60 bytes before nonce ‖ ct ‖ tag (6 + 12 + 16 bytes here).
        const wrappedKeyByte = 6 + 12 + 16 + 30;
        const opened = await decryptFieldsAsync(
          't1',
          () => view,
          [good, good, tamper(1), tamper(20), tamper(wrappedKeyByte), other],
          [ctx('a'), ctx('wrong'), ctx('a'), ctx('a'), ctx('a'), ctx('b')],
        );
        assert.deepEqual(
          opened.map((r) => (r.ok ? r.plaintext.toString() : r.reason)),
          ['secret', 'auth_failed', 'auth_failed', 'auth_failed', 'auth_failed', 'other'],
        );
        const wrongTenant = await decryptFieldsAsync('t2', () => view, [good], [ctx('a')]);
        assert.deepEqual(wrongTenant, [{ ok: false, reason: 'wrong_tenant' }]);
        // Under another L3 key nothing opens, and nothing throws.
        const stranger = hsm.view(cryptoFor(name).generateKey());
        assert.deepEqual(await decryptFieldsAsync('t1', () => stranger, [good], [ctx('a')]), [
          { ok: false, reason: 'auth_failed' },
        ]);
      });
    });
  }

  it('the transport key and the data keys are sensitive and never extractable; requests leave no object', async () => {
    const hsm = await open('native');
    const t = hsm.token;
    const s = t.openSession();
    try {
      const kt = await hsm.transportKey();
      assertNotReadable(hsm, s, kt.object, 'transport key');
      // A data key unwrapped with the template and mechanism the workers use.
      const l3 = cryptoFor('native').generateKey();
      const { transportWrapped } = l3.dataKeyForTransport(kt.key, Buffer.from('wrap-aad'));
      const dataKey = t.lib.C_UnwrapKey(s, AES_KW, kt.object, transportWrapped, DATA_KEY_TEMPLATE);
      assertNotReadable(hsm, s, dataKey, 'data key');
      t.lib.C_DestroyObject(s, dataKey);
      const view = hsm.view(l3);
      const objectsBefore = sessionObjects(hsm).length;
      const cts = await encryptFieldsAsync(view, REF, [Buffer.from('a'), Buffer.from('b')], [ctx('1'), ctx('2')]);
      await decryptFieldsAsync('t1', () => view, cts, [ctx('1'), ctx('2')]);
      assert.equal(sessionObjects(hsm).length, objectsBefore, 'no data key left in the token');
      // Only the transport keys of the open backends remain: the RSA pairs were destroyed at set-up.
      assert.equal(objectsBefore, backends.size);
    } finally {
      t.closeSession(s);
    }
  });

  it('no token call of a request runs on the event loop thread; concurrent requests share the workers', async () => {
    const hsm = await open('native');
    await hsm.transportKey(); // set up beforehand
    const rec = recordCalls(hsm);
    try {
      const l3 = cryptoFor('native').generateKey();
      const view = hsm.view(l3);
      const texts = Array.from({ length: 40 }, (_, i) => `card-${i}`);
      const cts = await Promise.all(
        texts.map((t, i) => encryptFieldsAsync(view, REF, [Buffer.from(t)], [ctx(`${i}`)])),
      );
      const opened = await Promise.all(cts.map((c, i) => decryptFieldsAsync('t1', () => view, c, [ctx(`${i}`)])));
      assert.deepEqual(
        opened.map((r) => (r[0]?.ok ? r[0].plaintext.toString() : r[0]?.reason)),
        texts,
      );
      assert.deepEqual(rec.calls, [], 'PKCS#11 calls made on the event loop thread');
      // The recorder itself works: a call made here is seen.
      hsm.token.lib.C_GetSlotList(true);
      assert.deepEqual(rec.calls, ['C_GetSlotList']);
      // The login anchor and the transport key's owner, and each of the two workers' operation session.
      assert.equal(hsm.stats().sessions, 4);
    } finally {
      rec.restore();
    }
  });

  it('after start-up no PKCS#11 call runs on the event loop, also when the key is set up again after a logout', async () => {
    // Its own token: the logout below must not reach the other backends.
    const hsm = await openOn(own);
    const rec = recordCalls(hsm);
    try {
      const l3 = cryptoFor('native').generateKey();
      const view = hsm.view(l3);
      const seal = async (text: string) =>
        (await encryptFieldsAsync(view, REF, [Buffer.from(text)], [ctx('c')]))[0] as string;
      const opens = async (ct: string) => (await decryptFieldsAsync('t1', () => l3, [ct], [ctx('c')]))[0]?.ok === true;
      assert.ok(await opens(await seal('first')));
      // The token logs the user out (another user of the module, a device reset): done here, not recorded.
      const kt = await hsm.transportKey();
      rec.paused(() => hsm.token.lib.C_Logout(kt.owner));
      await assert.rejects(seal('x'), (e: unknown) => e instanceof KcmError && e.code === 'hsm_unavailable');
      // The next request: login check, login again, owner session, set-up, seal: all on workers.
      assert.ok(await opens(await seal('after the logout')));
      assert.notEqual(await hsm.transportKey(), kt, 'a new transport key');
      assert.deepEqual(rec.calls, [], 'PKCS#11 calls made on the event loop thread');
    } finally {
      rec.restore();
      await hsm.close();
    }
  });

  it('a token failure is hsm_unavailable (503) and the next request sets the transport key up again', async () => {
    const hsm = await open('native');
    const l3: KeyHandle = cryptoFor('native').generateKey();
    const view = hsm.view(l3);
    const errors = hsm.stats().errors;
    // The owner session closing destroys KT' under the cipher's feet.
    hsm.token.closeSession((await hsm.transportKey()).owner);
    await assert.rejects(
      encryptFieldsAsync(view, REF, [Buffer.from('x')], [ctx('c')]),
      (err: unknown) => err instanceof KcmError && err.code === 'hsm_unavailable' && err.status === 503,
    );
    assert.equal(hsm.stats().errors, errors + 1);
    const [ct] = await encryptFieldsAsync(view, REF, [Buffer.from('again')], [ctx('c')]);
    assert.equal((await decryptFieldsAsync('t1', () => l3, [ct as string], [ctx('c')]))[0]?.ok, true);
    // The synchronous calls refuse a token key: a caller that forgot the asynchronous path fails loudly.
    assert.throws(() => encryptFields(view, REF, [Buffer.from('x')], [ctx('c')]), /use dataKeySealBatchAsync/);
  });
  it('a token failure that closes every session logs in again; so does a lost login (one backend on its token)', async () => {
    // Its own token: no other backend keeps the login alive.
    const hsm = await openOn(own);
    try {
      const l3: KeyHandle = cryptoFor('native').generateKey();
      const view = hsm.view(l3);
      const seal = async (text: string) =>
        (await encryptFieldsAsync(view, REF, [Buffer.from(text)], [ctx('c')]))[0] as string;
      const opens = async (ct: Promise<string>) =>
        (await decryptFieldsAsync('t1', () => l3, [await ct], [ctx('c')]))[0]?.ok === true;
      assert.ok(await opens(seal('first')));
      // KT' gone from the token: the failing request closes its session and the owner session.
      const kt = await hsm.transportKey();
      hsm.token.lib.C_DestroyObject(kt.owner, kt.object);
      await assert.rejects(seal('x'), (e: unknown) => e instanceof KcmError && e.code === 'hsm_unavailable');
      assert.ok(await opens(seal('after the failure')), 'the login survived the closed sessions');
      // The login itself lost (another user of the module logs out): one request fails, the next logs in again.
      hsm.token.lib.C_Logout((await hsm.transportKey()).owner);
      await assert.rejects(seal('x'), (e: unknown) => e instanceof KcmError && e.code === 'hsm_unavailable');
      assert.ok(await opens(seal('after the logout')), 'logged in again with the PIN read again');
    } finally {
      await hsm.close();
    }
  });

  it('a late failure of a parallel job does not drop the transport key that replaced its own', async () => {
    const hsm = await open('native');
    // Workers whose replies the test hands out, in the order it chooses.
    // The set-up's jobs run for real (inline); the seal jobs wait for the test.
    const real = new TokenWorkers({ module: token.modulePath, slot: hsm.token.slot }, { inline: hsm.token.lib });
    const replies: ((r: TokenReply) => void)[] = [];
    const workers = {
      run: (job: { op: string }) =>
        job.op === 'seal'
          ? new Promise<TokenReply>((resolve) => replies.push(resolve))
          : (real.run as (j: unknown) => Promise<TokenReply>)(job),
    } as unknown as TokenWorkers;
    const cipher = new TokenFieldCipher(hsm.token, workers, cryptoFor('native'));
    const kek = cryptoFor('native').generateKey();
    const seal = () => cipher.dataKeySealBatch(kek, Buffer.from('w'), [Buffer.from('x')], [Buffer.from('a')]);
    const lost = (id: number): TokenReply => ({
      id,
      ok: false,
      ops: 0,
      rv: P.CKR_UNWRAPPING_KEY_HANDLE_INVALID,
      message: 'CKR_UNWRAPPING_KEY_HANDLE_INVALID',
    });
    const unavailable = (e: unknown) => e instanceof KcmError && e.code === 'hsm_unavailable';
    try {
      const first = await cipher.transport();
      const a = seal();
      const b = seal();
      (replies[0] as (r: TokenReply) => void)(lost(1));
      await assert.rejects(a, unavailable);
      // A dropped the key both used; C sets up the next one.
      const c = seal();
      const second = await cipher.transport();
      assert.notEqual(second, first);
      (replies[1] as (r: TokenReply) => void)(lost(2));
      await assert.rejects(b, unavailable);
      assert.equal(await cipher.transport(), second, 'B failed with the old key: the new one stays');
      (replies[2] as (r: TokenReply) => void)({ id: 3, ok: true, ops: 2, sealed: [Buffer.alloc(29)] });
      assert.equal((await c).sealed.length, 1);
      assert.equal(cipher.counters.errors, 2);
    } finally {
      cipher.reset();
      await real.close();
    }
  });

  it('inline (hsm.inline): the same jobs on the event loop thread, same ciphertexts, one session', async () => {
    const hsm = await openOn(token, { pin: token.pin, inline: true });
    try {
      const l3 = cryptoFor('native').generateKey();
      const view = hsm.view(l3);
      const before = hsm.stats().operations;
      const cts = await encryptFieldsAsync(view, REF, [Buffer.from('inline'), Buffer.alloc(0)], [ctx('a'), ctx('b')]);
      assert.equal(hsm.stats().operations, before + 3, 'one unwrap + one GCM per field');
      const natively = await decryptFieldsAsync('t1', () => l3, cts, [ctx('a'), ctx('b')]);
      const inToken = await decryptFieldsAsync('t1', () => view, cts, [ctx('a'), ctx('wrong')]);
      assert.deepEqual(
        [...natively, ...inToken].map((r) => (r.ok ? r.plaintext.toString() : r.reason)),
        ['inline', '', 'inline', 'auth_failed'],
      );
      // Anchor + transport key owner + the one operation session.
      assert.equal(hsm.stats().sessions, 3);
    } finally {
      await hsm.close();
    }
    assert.equal(hsm.stats().sessions, 0);
  });

  it('a closed backend fails the jobs still out and every later one with hsm_unavailable', async () => {
    const hsm = await openOn(token, { pin: token.pin, sessions: 1 });
    const view = hsm.view(cryptoFor('native').generateKey());
    const out = encryptFieldsAsync(view, REF, [Buffer.alloc(256 * 1024, 1)], [ctx('big')]);
    const closing = hsm.close();
    const unavailable = (e: unknown) => e instanceof KcmError && e.code === 'hsm_unavailable';
    // The job either finished before the worker saw the close, or failed: never a hang or another error.
    await out.then(
      (cts) => assert.equal(cts.length, 1),
      (e: unknown) => assert.ok(unavailable(e), String(e)),
    );
    await closing;
    await assert.rejects(encryptFieldsAsync(view, REF, [Buffer.from('x')], [ctx('c')]), unavailable);
  });
});
