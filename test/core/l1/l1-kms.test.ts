/**
 * Tenants' L1 through AWS KMS — the real @aws-sdk/client-kms against the
 * KMS-protocol test server: BYOK (both bindings; the sovereign one heals a
 * broken active binding), HYOK (every cold hydration calls KMS Decrypt), the
 * tenant bound into the EncryptionContext, link/unlink, and L1 down ⇒
 * suspended semantics with automatic resume by the probe.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { decodeSovereignBlob } from '../../../core/src/l1/sovereign-blob.ts';
import { KmsTestServer } from '../../support/kms-server.ts';
import { codeOf, type Fixture, hierarchyFixture } from '../tenants/fixture.ts';

const CREDENTIALS = { accessKeyId: 'AKIDTESTTESTTEST', secretAccessKey: 'test-secret' };

describe('L1 through AWS KMS', () => {
  let server: KmsTestServer;
  let f: Fixture;
  let keyA: { keyId: string; arn: string };
  let keyB: { keyId: string; arn: string };
  const ref = (k: { arn: string }) => ({ provider: 'kms', keyId: k.arn, region: server.region });

  before(async () => {
    server = await KmsTestServer.start();
    keyA = server.createKey();
    keyB = server.createKey();
  });
  after(async () => {
    await f?.close();
    await server.close();
  });
  beforeEach(async () => {
    await f?.close();
    server.setOutage(false);
    f = await hierarchyFixture({
      l1Providers: {
        kms: {
          type: 'awskms',
          keyId: keyA.arn,
          region: server.region,
          endpoint: server.endpoint,
          credentials: CREDENTIALS,
          timeoutMs: 500,
        },
      },
    });
  });

  it('BYOK: both bindings; the tenant is bound into the EncryptionContext; cold hydration uses the IVK, not KMS', async () => {
    const n = server.countOf('GenerateDataKey');
    await f.keys.tenants.create({ id: 'acme', keyMode: 'byok', l1: ref(keyB) });
    assert.equal(server.countOf('GenerateDataKey'), n + 1);
    const gdk = server.requests.filter((r) => r.target === 'TrentService.GenerateDataKey').at(-1);
    assert.equal(gdk?.body.KeyId, keyB.arn);
    assert.deepEqual(gdk?.body.EncryptionContext, {
      'openkcm:cluster': f.root.status().clusterId,
      'openkcm:region': 'eu-1',
      'openkcm:tenant': 'acme',
    });
    const l2 = await f.store.getL2('acme', 1);
    assert.ok((l2?.wrappedActive.length ?? 0) > 0 && (l2?.wrappedSovereign?.length ?? 0) > 0);
    await f.keys.services.create('acme', 'orders');
    await f.restart();
    const d = server.countOf('Decrypt');
    await f.keys.leaseSet('acme', 'orders', []);
    assert.equal(server.countOf('Decrypt'), d, 'BYOK hydrates through the active binding');
  });

  it('BYOK self-heals: a broken active binding falls back to L1 once, then is re-wrapped under the current IVK', async () => {
    await f.keys.tenants.create({ id: 'acme', l1: ref(keyB) });
    await f.keys.services.create('acme', 'orders');
    const ivk = f.root.ivk();
    await ivk.rotate('emergency');
    await ivk.revoke(1);
    await f.restart();
    const d = server.countOf('Decrypt');
    assert.equal((await f.keys.leaseSet('acme', 'orders', [])).active?.version, 1);
    assert.equal(server.countOf('Decrypt'), d + 1);
    assert.equal((await f.store.getL2('acme', 1))?.ivkVersion, 2);
    assert.ok(f.audit.events.some((e) => e.action === 'l2.rewrap' && e.reason === 'self_heal'));
    await f.restart();
    await f.keys.leaseSet('acme', 'orders', []);
    assert.equal(server.countOf('Decrypt'), d + 1, 'healed: the next cold start needs no KMS call');
  });

  it('HYOK: no active binding is stored and every cold hydration calls KMS Decrypt', async () => {
    await f.keys.tenants.create({ id: 'hy', keyMode: 'hyok', l1: ref(keyB) });
    await f.keys.services.create('hy', 'orders');
    const l2 = await f.store.getL2('hy', 1);
    assert.deepEqual([l2?.ivkVersion, l2?.wrappedActive.length], [0, 0]);
    const d = server.countOf('Decrypt');
    await f.keys.leaseSet('hy', 'orders', []);
    assert.equal(server.countOf('Decrypt'), d, 'warm: the L2 created in this process is cached');
    for (let i = 1; i <= 3; i++) {
      await f.restart();
      await f.keys.leaseSet('hy', 'orders', []);
      await f.keys.leaseSet('hy', 'orders', []);
      assert.equal(server.countOf('Decrypt'), d + i, `cold hydration ${i} called KMS exactly once`);
    }
    assert.equal(
      (await f.store.getL2('hy', 1))?.wrappedActive.length,
      0,
      'no self-healing copy under the IVK for HYOK',
    );
  });

  it('a sovereign blob moved to another tenant does not open (tenant in the context)', async () => {
    await f.keys.tenants.create({ id: 'a1', keyMode: 'hyok', l1: ref(keyB) });
    await f.keys.tenants.create({ id: 'a2', keyMode: 'hyok', l1: ref(keyB) });
    await f.keys.services.create('a2', 'orders');
    const a1 = (await f.store.getL2('a1', 1)) as NonNullable<Awaited<ReturnType<typeof f.store.getL2>>>;
    const a2 = (await f.store.getL2('a2', 1)) as NonNullable<Awaited<ReturnType<typeof f.store.getL2>>>;
    const { mac: _m, ...row } = a2;
    await f.store.transaction((tx) => tx.updateL2({ ...row, wrappedSovereign: a1.wrappedSovereign }));
    await f.restart();
    const d = server.countOf('Decrypt');
    assert.equal(await codeOf(f.keys.leaseSet('a2', 'orders', [])), 'record_tampered');
    assert.equal(server.countOf('Decrypt'), d, 'refused before any KMS call');
    // And KMS itself refuses a1's data key under a2's context.
    const dk = decodeSovereignBlob(a1.wrappedSovereign as Buffer).dataKey;
    const ctx = { clusterId: f.root.status().clusterId as string, region: 'eu-1' };
    const pt = await f.l1.decryptDataKey(ref(keyB), dk, { ...ctx, tenant: 'a1' });
    assert.equal(pt.length, 32);
    pt.fill(0);
    assert.equal(await codeOf(f.l1.decryptDataKey(ref(keyB), dk, { ...ctx, tenant: 'a2' })), 'l1_rejected');
  });

  it('L1 down ⇒ suspended semantics, clearly reported; the probe resumes it when L1 is back', async () => {
    await f.keys.tenants.create({ id: 'hy', keyMode: 'hyok', l1: ref(keyB) });
    await f.keys.services.create('hy', 'orders');
    await f.restart();
    server.setOutage(true);
    assert.equal(await codeOf(f.keys.leaseSet('hy', 'orders', [])), 'l1_unavailable');
    const t = await f.keys.tenants.get('hy');
    assert.deepEqual([t.state, t.reason, t.graceDays], ['SUSPENDED', 'l1_unreachable', 30]);
    assert.equal(f.events.at(-1)?.type, 'tenant.suspended');
    assert.deepEqual(await f.keys.tick(), ['probe:hy:l1_unavailable']);
    assert.equal((await f.keys.tenants.get('hy')).state, 'SUSPENDED');
    server.setOutage(false);
    assert.deepEqual(await f.keys.tick(), ['probe:hy:ok']);
    assert.equal((await f.keys.tenants.get('hy')).state, 'ACTIVE');
    assert.equal(f.events.at(-1)?.type, 'tenant.resumed');
    assert.equal((await f.keys.leaseSet('hy', 'orders', [])).active?.version, 1);
  });

  it('a customer-disabled key is l1_rejected and suspends too; an operator suspension is never lifted by the probe', async () => {
    const k = server.createKey();
    await f.keys.tenants.create({ id: 'dis', keyMode: 'hyok', l1: ref(k) });
    await f.keys.services.create('dis', 'orders');
    await f.restart();
    server.setKeyState(k.keyId, 'Disabled');
    assert.equal(await codeOf(f.keys.leaseSet('dis', 'orders', [])), 'l1_rejected');
    assert.equal((await f.keys.tenants.get('dis')).reason, 'l1_unreachable');
    server.setKeyState(k.keyId, 'Enabled');
    await f.keys.tenants.resume('dis');
    await f.keys.tenants.suspend('dis', { reason: 'operator' });
    assert.equal((await f.keys.l1.probe('dis')).ok, true);
    assert.equal((await f.keys.tenants.get('dis')).state, 'SUSPENDED');
  });

  it('link and unlink: managed → hyok erases the IVK binding; unlink restores it; unknown region refused', async () => {
    await f.keys.tenants.create({ id: 'm' });
    await f.keys.services.create('m', 'orders');
    assert.equal(
      await codeOf(f.keys.l1.link('m', { l1: { ...ref(keyB), region: 'us-east-1' }, keyMode: 'hyok' })),
      'bad_request',
    );
    const linked = await f.keys.l1.link('m', { l1: ref(keyB), keyMode: 'hyok' }, { actor: 'op' });
    assert.deepEqual([linked.keyMode, linked.l1?.keyId], ['hyok', keyB.arn]);
    assert.equal((await f.store.getL2('m', 1))?.wrappedActive.length, 0);
    await f.restart();
    const d = server.countOf('Decrypt');
    await f.keys.leaseSet('m', 'orders', []);
    assert.equal(server.countOf('Decrypt'), d + 1);
    const back = await f.keys.l1.unlink('m');
    assert.deepEqual([back.keyMode, back.l1], ['managed', null]);
    const l2 = await f.store.getL2('m', 1);
    assert.ok(l2 && l2.wrappedActive.length > 0 && l2.wrappedSovereign === null);
    await f.restart();
    await f.keys.leaseSet('m', 'orders', []);
    assert.equal(server.countOf('Decrypt'), d + 1);
  });
});
