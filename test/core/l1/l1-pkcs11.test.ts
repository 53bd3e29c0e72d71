/**
 * BYOK into a PKCS#11 HSM (SoftHSM2): the customer's key material is imported
 * as a sensitive, non-extractable token key (the caller's buffer is zeroed),
 * a tenant linked to it gets a sovereign binding made in the HSM, and that
 * binding really is under the customer's material (opened here with the
 * material and the l1-context AAD). The HSM is the L1 of a HYOK tenant too.
 */
import assert from 'node:assert/strict';
import { createDecipheriv, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import pkcs11js from 'pkcs11js';
import { importPkcs11AesKey } from '../../../core/src/l1/pkcs11-import-key.ts';
import { decodeSovereignBlob } from '../../../core/src/l1/sovereign-blob.ts';
import { acquirePkcs11Module } from '../../../core/src/seal/pkcs11/pkcs11-module.ts';
import { sealContextAad } from '../../../core/src/seal/seal-context.ts';
import { SealProviderError } from '../../../core/src/seal/seal-provider.ts';
import { createSoftHsmToken, type SoftHsmToken, softHsmSkip } from '../../support/softhsm.ts';
import { codeOf, type Fixture, hierarchyFixture } from '../tenants/fixture.ts';

describe('L1 through PKCS#11 (SoftHSM2), BYOK import', { skip: softHsmSkip() }, () => {
  let token: SoftHsmToken;
  let f: Fixture;
  const customer = randomBytes(32);
  const material = Buffer.from(customer);

  before(async () => {
    token = createSoftHsmToken();
    const hsm = { modulePath: token.modulePath, tokenLabel: token.tokenLabel, pin: token.pin };
    const imported = await importPkcs11AesKey({ ...hsm, keyLabel: 'acme-root' }, material);
    assert.match(imported.keyVersion, /^[0-9a-f]{32}$/);
    f = await hierarchyFixture({ l1Providers: { hsm: { type: 'pkcs11', ...hsm, keyLabel: 'default-unused' } } });
  });
  after(async () => {
    customer.fill(0);
    await f?.close();
    token?.cleanup();
  });

  it('zeroes the caller’s material and refuses a second key with the same label or a short key', async () => {
    assert.ok(material.every((b) => b === 0));
    const hsm = { modulePath: token.modulePath, tokenLabel: token.tokenLabel, pin: token.pin };
    const again = Buffer.from(customer);
    await assert.rejects(
      importPkcs11AesKey({ ...hsm, keyLabel: 'acme-root' }, again),
      (e: unknown) => e instanceof SealProviderError && e.kind === 'config',
    );
    assert.ok(again.every((b) => b === 0));
    await assert.rejects(importPkcs11AesKey({ ...hsm, keyLabel: 'short' }, Buffer.alloc(16, 1)), /32 bytes/);
  });

  it('stores the key sensitive and non-extractable: its value cannot be read back', () => {
    const mod = acquirePkcs11Module(token.modulePath);
    const slot = mod.findSlot(token.tokenLabel);
    const session = mod.openSession(slot, false);
    try {
      mod.login(slot, session, token.pin);
      const P = pkcs11js;
      mod.lib.C_FindObjectsInit(session, [{ type: P.CKA_LABEL, value: 'acme-root' }]);
      const [h] = mod.lib.C_FindObjects(session, 1);
      mod.lib.C_FindObjectsFinal(session);
      assert.ok(h);
      const attrs = mod.lib.C_GetAttributeValue(session, h, [{ type: P.CKA_SENSITIVE }, { type: P.CKA_EXTRACTABLE }]);
      assert.deepEqual(
        attrs.map((a) => (a.value as Buffer)[0]),
        [1, 0],
      );
      assert.throws(() => mod.lib.C_GetAttributeValue(session, h, [{ type: P.CKA_VALUE }]), /ATTRIBUTE_SENSITIVE/);
    } finally {
      mod.closeSession(slot, session);
      mod.release();
    }
  });

  it('a BYOK tenant’s sovereign binding is made under the customer’s material, bound to cluster, region and tenant', async () => {
    await f.keys.tenants.create({
      id: 'acme',
      keyMode: 'byok',
      l1: { provider: 'hsm', keyId: 'acme-root', region: '' },
    });
    const l2 = await f.store.getL2('acme', 1);
    const { dataKey } = decodeSovereignBlob(l2?.wrappedSovereign as Buffer);
    assert.equal(dataKey.keyId, 'acme-root');
    const ct = dataKey.ciphertext;
    const aad = sealContextAad(
      { clusterId: f.root.status().clusterId as string, region: 'eu-1', tenant: 'acme' },
      'pkcs11',
    );
    const d = createDecipheriv('aes-256-gcm', customer, ct.subarray(0, 12));
    d.setAAD(aad);
    d.setAuthTag(ct.subarray(44));
    const dk = Buffer.concat([d.update(ct.subarray(12, 44)), d.final()]);
    assert.equal(dk.length, 32);
    dk.fill(0);
  });

  it('HYOK on the HSM: cold hydrations go through the token; a wrong label is l1_rejected at link', async () => {
    await f.keys.tenants.create({ id: 'hy', keyMode: 'hyok', l1: { provider: 'hsm', keyId: 'acme-root', region: '' } });
    await f.keys.services.create('hy', 'orders');
    await f.restart();
    assert.equal((await f.keys.leaseSet('hy', 'orders', [])).active?.version, 1);
    assert.equal(
      await codeOf(
        f.keys.tenants.create({ id: 'x', keyMode: 'hyok', l1: { provider: 'hsm', keyId: 'missing', region: '' } }),
      ),
      'l1_rejected',
    );
    assert.equal(
      await codeOf(
        f.keys.tenants.create({ id: 'y', keyMode: 'hyok', l1: { provider: 'hsm', keyId: 'acme-root', region: 'eu' } }),
      ),
      'bad_request',
    );
  });
});
