/**
 * The rotation scenario (STYLE.md "Scenario tests"), on a real SQLite store
 * with field-cipher ciphertexts: encrypt under L3 v1 … v4 → rotate → raise the
 * minimum decryption version → old ciphertexts fail with a clear error;
 * rewrap moves them to the newest version.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { decryptFields, encryptFields } from '../../../common/src/crypto/field-cipher.ts';
import { rewrapFields } from '../../../common/src/crypto/rewrap-fields.ts';
import { parseEnvelope } from '../../../common/src/format/envelope.ts';
import type { KeyHandle } from '../../../native/index.ts';
import { codeOf, type Fixture, hierarchyFixture } from '../tenants/fixture.ts';

const T = 'acme';
const S = 'orders';
const ctx = (i: number) => Buffer.from(`record-${i}/card`);

describe('L3 rotation scenario', () => {
  let f: Fixture;
  const cts: string[] = [];
  before(async () => {
    f = await hierarchyFixture();
    await f.keys.tenants.create({ id: T });
    await f.keys.services.create(T, S);
  });
  after(async () => {
    await f.close();
  });

  /** Resolver over the versions this caller may use, with the service's clear error for the others. */
  async function resolverFor(
    ciphertexts: readonly string[],
  ): Promise<{ resolve: (r: { keyVersion: number }) => KeyHandle | undefined; refused: Map<number, string> }> {
    const keys = new Map<number, KeyHandle>();
    const refused = new Map<number, string>();
    for (const c of ciphertexts) {
      const v = parseEnvelope(c).keyVersion;
      if (keys.has(v) || refused.has(v)) continue;
      try {
        keys.set(v, await f.keys.services.keyForDecrypt(T, S, v));
      } catch (err) {
        refused.set(v, (err as { code: string }).code);
      }
    }
    return { resolve: (r) => keys.get(r.keyVersion), refused };
  }

  it('step 1: encrypts one record under each of v1 … v4', async () => {
    for (let i = 1; i <= 4; i++) {
      if (i > 1) await f.keys.services.rotate(T, S, { actor: 'op' });
      const { version, handle } = await f.keys.services.keyForEncrypt(T, S);
      assert.equal(version, i);
      const [c] = encryptFields(
        handle,
        { tenant: T, keyId: S, keyVersion: version },
        [Buffer.from(`secret ${i}`)],
        [ctx(i)],
      );
      cts.push(c as string);
    }
    const info = await f.keys.services.get(T, S);
    assert.deepEqual(
      info.versions.map((v) => [v.version, v.state]),
      [
        [1, 'EXPIRED'],
        [2, 'EXPIRED'],
        [3, 'EXPIRED'],
        [4, 'ACTIVE'],
      ],
    );
  });

  it('step 2: rotates to v5; every old ciphertext still decrypts', async () => {
    assert.equal((await f.keys.services.rotate(T, S)).version, 5);
    const { resolve, refused } = await resolverFor(cts);
    assert.equal(refused.size, 0);
    const out = decryptFields(
      T,
      resolve,
      cts,
      cts.map((_, i) => ctx(i + 1)),
    );
    assert.deepEqual(
      out.map((r) => r.ok && r.plaintext.toString()),
      ['secret 1', 'secret 2', 'secret 3', 'secret 4'],
    );
  });

  it('step 3: rewrap moves v3 and v4 ciphertexts to v5', async () => {
    const { version, handle } = await f.keys.services.keyForEncrypt(T, S);
    assert.equal(version, 5);
    const { resolve } = await resolverFor(cts.slice(2));
    const rewrapped = rewrapFields(resolve, handle, { tenant: T, keyId: S, keyVersion: 5 }, cts.slice(2), [
      ctx(3),
      ctx(4),
    ]);
    for (const r of rewrapped) {
      assert.ok(r.ok);
      assert.equal(parseEnvelope(r.ciphertext).keyVersion, 5);
    }
    cts.push(...rewrapped.map((r) => (r.ok ? r.ciphertext : '')));
  });

  it('step 4: raising the minimum to v3 refuses v1/v2 with key_version_too_old; v3+ and the rewrapped ones decrypt', async () => {
    const before = f.events.length;
    const info = await f.keys.services.setMinDecrypt(T, S, 3, { actor: 'op' });
    assert.equal(info.minDecryptVersion, 3);
    assert.deepEqual(
      f.events.slice(before).map((e) => [e.type, e.version]),
      [['l3.min_decrypt', 3]],
    );
    assert.equal(await codeOf(f.keys.services.keyForDecrypt(T, S, 1)), 'key_version_too_old');
    assert.equal(await codeOf(f.keys.services.keyForDecrypt(T, S, 2)), 'key_version_too_old');
    const { resolve, refused } = await resolverFor(cts);
    assert.deepEqual(
      [...refused.entries()],
      [
        [1, 'key_version_too_old'],
        [2, 'key_version_too_old'],
      ],
    );
    const contexts = [1, 2, 3, 4, 3, 4].map(ctx);
    const out = decryptFields(T, resolve, cts, contexts);
    assert.deepEqual(
      out.map((r) => (r.ok ? r.plaintext.toString() : r.reason)),
      ['unknown_key', 'unknown_key', 'secret 3', 'secret 4', 'secret 3', 'secret 4'],
    );
    const lease = await f.keys.leaseSet(T, S, [1, 2, 3, 4]);
    assert.deepEqual(
      lease.decryptOnly.map((v) => v.version),
      [3, 4],
    );
    assert.equal(lease.minDecryptVersion, 3);
  });

  it('step 5: raising to v5 leaves only the rewrapped ciphertexts readable; the minimum never goes down', async () => {
    await f.keys.services.setMinDecrypt(T, S, 5);
    const { resolve } = await resolverFor(cts);
    const out = decryptFields(T, resolve, cts, [1, 2, 3, 4, 3, 4].map(ctx));
    assert.deepEqual(
      out.map((r) => r.ok),
      [false, false, false, false, true, true],
    );
    assert.equal(await codeOf(f.keys.services.setMinDecrypt(T, S, 4)), 'invalid_key_state');
    assert.equal(await codeOf(f.keys.services.setMinDecrypt(T, S, 6)), 'invalid_key_state');
  });

  it('revoking a version refuses it with key_revoked; the ACTIVE one cannot be revoked', async () => {
    assert.equal(await codeOf(f.keys.services.revokeVersion(T, S, 5)), 'invalid_key_state');
    await f.keys.services.rotate(T, S);
    const h5 = await f.keys.services.keyForDecrypt(T, S, 5);
    await f.keys.services.revokeVersion(T, S, 5, { actor: 'op' });
    assert.equal(f.events.at(-1)?.type, 'l3.revoked');
    assert.equal(await codeOf(f.keys.services.keyForDecrypt(T, S, 5)), 'key_revoked');
    assert.throws(() => h5.seal(Buffer.from('x'), Buffer.alloc(0)), /destroyed/);
    assert.equal(await codeOf(f.keys.services.keyForDecrypt(T, S, 99)), 'key_not_found');
  });
});
