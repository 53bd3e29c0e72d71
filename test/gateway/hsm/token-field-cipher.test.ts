/**
 * The pkcs11 field backend against a real SoftHSM2 token: ciphertexts made in
 * the token open natively and the other way round (both crypto backends),
 * per-item failures, non-extractable token keys, and no token object left
 * behind by a request. Skipped with the reason when SoftHSM is not installed,
 * except under CI=true.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pkcs11js from 'pkcs11js';
import { decryptFields, encryptFields } from '../../../common/src/crypto/field-cipher.ts';
import { KcmError } from '../../../common/src/errors.ts';
import type { FieldKeyRef } from '../../../common/src/format/envelope.ts';
import { HsmBackend } from '../../../gateway/src/hsm/hsm-backend.ts';
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

describe('pkcs11 field backend (SoftHSM2)', { skip: softHsmSkip() }, () => {
  let token: SoftHsmToken;
  /** A second token for the test that needs a backend alone on its token (made before the module initialises). */
  let own: SoftHsmToken;
  const backends = new Map<BackendName, HsmBackend>();

  before(() => {
    token = createSoftHsmToken();
    own = createSoftHsmToken();
  });
  after(() => {
    for (const b of backends.values()) b.close();
    token?.cleanup();
    own?.cleanup();
  });

  const open = (name: BackendName): HsmBackend => {
    let b = backends.get(name);
    if (!b) {
      b = HsmBackend.open({
        module: token.modulePath,
        tokenLabel: token.tokenLabel,
        pin: token.pin,
        sessions: 2,
        crypto: cryptoFor(name),
      });
      backends.set(name, b);
    }
    return b;
  };

  for (const name of ['native', 'node'] as const) {
    describe(`with the ${name} crypto backend`, () => {
      it('token-encrypted fields open natively, natively encrypted fields open in the token', () => {
        const hsm = open(name);
        const l3 = cryptoFor(name).generateKey();
        const view = hsm.view(l3);
        assert.equal(hsm.view(l3), view, 'views are cached per handle');
        const pts = [Buffer.from('4111 1111 1111 1111'), Buffer.alloc(0), Buffer.alloc(1024, 7), Buffer.from('x')];
        const ctxs = pts.map((_, i) => ctx(`order-1/field-${i}`));
        const before = hsm.stats().operations;
        const fromToken = encryptFields(view, REF, pts, ctxs);
        assert.equal(hsm.stats().operations, before + 1 + pts.length, 'one unwrap + one GCM per field');
        const fromNative = encryptFields(l3, REF, pts, ctxs);
        for (const [how, cts, key] of [
          ['token → native', fromToken, l3],
          ['native → token', fromNative, view],
          ['token → token', fromToken, view],
        ] as const) {
          const opened = decryptFields('t1', () => key, cts, ctxs);
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

      it('wrong context, wrong tenant, tampered ciphertext or wrapped key fail per item', () => {
        const hsm = open(name);
        const l3 = cryptoFor(name).generateKey();
        const view = hsm.view(l3);
        const [good, other] = encryptFields(
          view,
          REF,
          [Buffer.from('secret'), Buffer.from('other')],
          [ctx('a'), ctx('b')],
        ) as [string, string];
        const body = Buffer.from(good.slice('okcm:1:'.length), 'base64url');
        const tamper = (offsetFromEnd: number) => {
          const b = Buffer.from(body);
          b[b.length - offsetFromEnd] = (b[b.length - offsetFromEnd] as number) ^ 1;
          return `okcm:1:${b.toString('base64url')}`;
        };
        // The wrapped key sits 60 bytes before nonce ‖ ct ‖ tag (6 + 12 + 16 bytes here).
        const wrappedKeyByte = 6 + 12 + 16 + 30;
        const opened = decryptFields(
          't1',
          () => view,
          [good, good, tamper(1), tamper(20), tamper(wrappedKeyByte), other],
          [ctx('a'), ctx('wrong'), ctx('a'), ctx('a'), ctx('a'), ctx('b')],
        );
        assert.deepEqual(
          opened.map((r) => (r.ok ? r.plaintext.toString() : r.reason)),
          ['secret', 'auth_failed', 'auth_failed', 'auth_failed', 'auth_failed', 'other'],
        );
        const wrongTenant = decryptFields('t2', () => view, [good], [ctx('a')]);
        assert.deepEqual(wrongTenant, [{ ok: false, reason: 'wrong_tenant' }]);
        // Under another L3 key nothing opens, and nothing throws.
        const stranger = hsm.view(cryptoFor(name).generateKey());
        assert.deepEqual(
          decryptFields('t1', () => stranger, [good], [ctx('a')]),
          [{ ok: false, reason: 'auth_failed' }],
        );
      });
    });
  }

  it('the transport key and each data key are sensitive and never extractable; requests leave no object', () => {
    const hsm = open('native');
    const t = hsm.token;
    const s = t.openSession();
    try {
      assertNotReadable(hsm, s, hsm.transportKey().object, 'transport key');
      // Check every data key just before the request destroys it.
      const lib = t.lib;
      const destroy = lib.C_DestroyObject.bind(lib);
      let checked = 0;
      lib.C_DestroyObject = (session: Buffer, object: Buffer) => {
        assertNotReadable(hsm, session, object, 'data key');
        checked++;
        return destroy(session, object);
      };
      const l3 = cryptoFor('native').generateKey();
      const view = hsm.view(l3);
      const objectsBefore = sessionObjects(hsm).length;
      try {
        const cts = encryptFields(view, REF, [Buffer.from('a'), Buffer.from('b')], [ctx('1'), ctx('2')]);
        decryptFields('t1', () => view, cts, [ctx('1'), ctx('2')]);
      } finally {
        lib.C_DestroyObject = destroy;
      }
      assert.equal(checked, 2, 'one data key per encrypt and per decrypt request');
      assert.equal(sessionObjects(hsm).length, objectsBefore, 'no data key left in the token');
      // Only the transport keys of the open backends remain: the RSA pairs were destroyed at set-up.
      assert.equal(objectsBefore, backends.size);
    } finally {
      t.closeSession(s);
    }
  });

  it('a token failure is hsm_unavailable (503) and the next request sets the transport key up again', () => {
    const hsm = open('native');
    const l3: KeyHandle = cryptoFor('native').generateKey();
    const view = hsm.view(l3);
    const errors = hsm.stats().errors;
    // The owner session closing destroys KT' under the cipher's feet.
    hsm.token.closeSession(hsm.transportKey().owner);
    assert.throws(
      () => encryptFields(view, REF, [Buffer.from('x')], [ctx('c')]),
      (err: unknown) => err instanceof KcmError && err.code === 'hsm_unavailable' && err.status === 503,
    );
    assert.equal(hsm.stats().errors, errors + 1);
    const [ct] = encryptFields(view, REF, [Buffer.from('again')], [ctx('c')]);
    assert.equal(decryptFields('t1', () => l3, [ct as string], [ctx('c')])[0]?.ok, true);
  });
  it('a token failure that closes every session logs in again; so does a lost login (one backend on its token)', () => {
    // Its own token: no other backend keeps the login alive.
    const hsm = HsmBackend.open({
      module: own.modulePath,
      tokenLabel: own.tokenLabel,
      pin: () => own.pin,
      sessions: 2,
      crypto: cryptoFor('native'),
    });
    try {
      const l3: KeyHandle = cryptoFor('native').generateKey();
      const view = hsm.view(l3);
      const seal = (text: string) => encryptFields(view, REF, [Buffer.from(text)], [ctx('c')])[0] as string;
      const opens = (ct: string) => decryptFields('t1', () => l3, [ct], [ctx('c')])[0]?.ok === true;
      assert.ok(opens(seal('first')));
      // KT' gone from the token: the failing request closes its session and the owner session.
      const kt = hsm.transportKey();
      hsm.token.lib.C_DestroyObject(kt.owner, kt.object);
      assert.throws(
        () => seal('x'),
        (e: unknown) => e instanceof KcmError && e.code === 'hsm_unavailable',
      );
      assert.ok(opens(seal('after the failure')), 'the login survived the closed sessions');
      // The login itself lost (another user of the module logs out): one request fails, the next logs in again.
      hsm.token.lib.C_Logout(hsm.transportKey().owner);
      assert.throws(
        () => seal('x'),
        (e: unknown) => e instanceof KcmError && e.code === 'hsm_unavailable',
      );
      assert.ok(opens(seal('after the logout')), 'logged in again with the PIN read again');
    } finally {
      hsm.close();
    }
  });
});
