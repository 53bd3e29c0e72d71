/**
 * The AWS KMS seal provider through the real @aws-sdk/client-kms against the
 * KMS-protocol test server (test/support/kms-server.ts): round trips, context
 * binding, key states, error normalisation, retry, outages, timeouts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { inspect } from 'node:util';
import { type AwsKmsSealConfig, AwsKmsSealProvider } from '../../../core/src/seal/aws-kms/aws-kms-provider.ts';
import { withRetry } from '../../../core/src/seal/retry.ts';
import type { SealContext } from '../../../core/src/seal/seal-provider.ts';
import { KmsTestServer } from '../../support/kms-server.ts';
import { recordingSleep, rejectsWithKind } from './seal-assert.ts';

const CTX: SealContext = { clusterId: 'cluster-7f3a', region: 'eu-central-1' };
const CREDENTIALS = { accessKeyId: 'AKIDTESTTESTTEST', secretAccessKey: 'test-secret' };

describe('AwsKmsSealProvider', () => {
  let server: KmsTestServer;
  let key: { keyId: string; arn: string };
  const providers: AwsKmsSealProvider[] = [];

  const open = (over: Partial<AwsKmsSealConfig> = {}) => {
    const p = new AwsKmsSealProvider({
      keyId: key.arn,
      region: server.region,
      endpoint: server.endpoint,
      credentials: CREDENTIALS,
      ...over,
    });
    providers.push(p);
    return p;
  };

  before(async () => {
    server = await KmsTestServer.start();
    key = server.createKey({ alias: 'openkcm-seal' });
  });

  after(async () => {
    await Promise.all(providers.map((p) => p.close()));
    await server.close();
  });

  it('round-trips a 32-byte data key with the encryption context bound', async () => {
    const p = open();
    const before = server.countOf();
    const { plaintext, encrypted } = await p.generateDataKey(CTX);
    assert.equal(plaintext.length, 32);
    assert.equal(encrypted.keyId, key.arn);
    assert.match(encrypted.keyVersion, /^[0-9a-f]{64}$/);
    const gdk = server.requests[before];
    assert.equal(gdk?.target, 'TrentService.GenerateDataKey');
    assert.equal(gdk?.body.KeySpec, 'AES_256');
    assert.deepEqual(gdk?.body.EncryptionContext, { 'openkcm:cluster': CTX.clusterId, 'openkcm:region': CTX.region });

    const back = await p.decryptDataKey(encrypted, CTX);
    assert.deepEqual(back, plaintext);
    const dec = server.requests[before + 1];
    assert.equal(dec?.target, 'TrentService.Decrypt');
    assert.equal(dec?.body.KeyId, key.arn);
    assert.deepEqual(dec?.body.EncryptionContext, { 'openkcm:cluster': CTX.clusterId, 'openkcm:region': CTX.region });
  });

  it('resolves an alias to the key ARN, which decrypts', async () => {
    const p = open({ keyId: 'alias/openkcm-seal' });
    const { plaintext, encrypted } = await p.generateDataKey(CTX);
    assert.equal(encrypted.keyId, key.arn);
    assert.deepEqual(await p.decryptDataKey(encrypted, CTX), plaintext);
  });

  it('reports KeyMaterialId as keyVersion and still decrypts blobs of older material after rotation', async () => {
    const own = server.createKey();
    const p = open({ keyId: own.keyId });
    const old = await p.generateDataKey(CTX);
    const material = server.rotateKey(own.keyId);
    const fresh = await p.generateDataKey(CTX);
    assert.equal(fresh.encrypted.keyVersion, material);
    assert.notEqual(old.encrypted.keyVersion, material);
    assert.deepEqual(await p.decryptDataKey(old.encrypted, CTX), old.plaintext);
  });

  it('fails invalid_ciphertext (not retryable) for another cluster or region', async () => {
    const p = open();
    const { encrypted } = await p.generateDataKey(CTX);
    for (const ctx of [
      { ...CTX, clusterId: 'cluster-other' },
      { ...CTX, region: 'us-east-1' },
    ]) {
      const err = await rejectsWithKind(p.decryptDataKey(encrypted, ctx), 'invalid_ciphertext');
      assert.equal(err.retryable, false);
    }
  });

  it('fails invalid_ciphertext for every flipped byte position sampled, for an empty blob and for another key', async () => {
    const p = open();
    const { encrypted } = await p.generateDataKey(CTX);
    const n = encrypted.ciphertext.length;
    for (const i of [0, 1, 5, 40, n - 29, n - 17, n - 1]) {
      const ciphertext = Buffer.from(encrypted.ciphertext);
      ciphertext[i] = (ciphertext[i] as number) ^ 0x01;
      await rejectsWithKind(p.decryptDataKey({ ...encrypted, ciphertext }, CTX), 'invalid_ciphertext');
    }
    const before = server.countOf();
    await rejectsWithKind(p.decryptDataKey({ ...encrypted, ciphertext: Buffer.alloc(0) }, CTX), 'invalid_ciphertext');
    assert.equal(server.countOf(), before, 'an empty blob is refused locally');
    const other = server.createKey();
    await rejectsWithKind(p.decryptDataKey({ ...encrypted, keyId: other.arn }, CTX), 'invalid_ciphertext');
  });

  it('maps disabled and pending-deletion keys to key_disabled, and recovers when re-enabled', async () => {
    const own = server.createKey();
    const p = open({ keyId: own.arn });
    const { plaintext, encrypted } = await p.generateDataKey(CTX);
    for (const state of ['Disabled', 'PendingDeletion'] as const) {
      server.setKeyState(own.keyId, state);
      await rejectsWithKind(p.generateDataKey(CTX), 'key_disabled');
      await rejectsWithKind(p.decryptDataKey(encrypted, CTX), 'key_disabled');
    }
    server.setKeyState(own.keyId, 'Enabled');
    assert.deepEqual(await p.decryptDataKey(encrypted, CTX), plaintext);
  });

  it('maps unknown keys and aliases to key_not_found', async () => {
    await rejectsWithKind(
      open({ keyId: '00000000-0000-0000-0000-000000000000' }).generateDataKey(CTX),
      'key_not_found',
    );
    await rejectsWithKind(open({ keyId: 'alias/missing' }).generateDataKey(CTX), 'key_not_found');
  });

  it('maps a key policy that excludes us to access_denied', async () => {
    const own = server.createKey();
    server.denyAccess(own.keyId);
    await rejectsWithKind(open({ keyId: own.keyId }).generateDataKey(CTX), 'access_denied');
  });

  it('maps throttling to rate_limited; withRetry then succeeds with backoff', async () => {
    const p = open();
    server.throttleNext(1);
    const err = await rejectsWithKind(p.generateDataKey(CTX), 'rate_limited', /ThrottlingException/);
    assert.equal(err.retryable, true);

    server.throttleNext(2);
    const before = server.countOf('GenerateDataKey');
    const { sleep, delays } = recordingSleep();
    const kinds: string[] = [];
    const out = await withRetry(() => p.generateDataKey(CTX), {
      attempts: 4,
      baseMs: 100,
      maxMs: 1000,
      sleep,
      random: () => 0.5,
      onRetry: (e) => kinds.push(e.kind),
    });
    assert.equal(out.plaintext.length, 32);
    assert.equal(server.countOf('GenerateDataKey') - before, 3, 'the SDK itself did not retry');
    assert.deepEqual(kinds, ['rate_limited', 'rate_limited']);
    assert.deepEqual(delays, [50, 100]);
  });

  it('maps 500 KMSInternalException and 503 to unavailable', async () => {
    const p = open();
    server.failNext(1, 500);
    await rejectsWithKind(p.generateDataKey(CTX), 'unavailable', /KMSInternalException/);
    server.failNext(1, 503);
    await rejectsWithKind(p.generateDataKey(CTX), 'unavailable', /HTTP 503/);
    assert.equal((await p.generateDataKey(CTX)).plaintext.length, 32);
  });

  it('maps an outage (connections dropped) to unavailable and recovers afterwards', async () => {
    const p = open();
    const { plaintext, encrypted } = await p.generateDataKey(CTX); // a keep-alive connection exists now
    server.setOutage(true);
    try {
      await rejectsWithKind(p.decryptDataKey(encrypted, CTX), 'unavailable');
      await rejectsWithKind(p.generateDataKey(CTX), 'unavailable');
    } finally {
      server.setOutage(false);
    }
    assert.deepEqual(await p.decryptDataKey(encrypted, CTX), plaintext);
  });

  it('maps a refused connection to unavailable', async () => {
    const dead = await KmsTestServer.start();
    const endpoint = dead.endpoint;
    await dead.close();
    await rejectsWithKind(open({ endpoint }).generateDataKey(CTX), 'unavailable');
  });

  it('gives up after timeoutMs and reports unavailable', async () => {
    const p = open({ timeoutMs: 100 });
    server.setLatency(400);
    const t0 = performance.now();
    try {
      await rejectsWithKind(p.generateDataKey(CTX), 'unavailable', /timed out after 100 ms/);
    } finally {
      server.setLatency(0);
    }
    assert.ok(performance.now() - t0 < 390, 'the deadline fired before the answer');
  });

  it('never puts the plaintext data key in an error message or inspection', async () => {
    const p = open();
    const { plaintext, encrypted } = await p.generateDataKey(CTX);
    const secrets = [plaintext.toString('hex'), plaintext.toString('base64'), plaintext.toString('base64url')];
    const tampered = Buffer.from(encrypted.ciphertext);
    tampered[tampered.length - 1] = (tampered[tampered.length - 1] as number) ^ 0xff;
    const errors = [
      await rejectsWithKind(p.decryptDataKey(encrypted, { ...CTX, region: 'ap-south-1' }), 'invalid_ciphertext'),
      await rejectsWithKind(p.decryptDataKey({ ...encrypted, ciphertext: tampered }, CTX), 'invalid_ciphertext'),
    ];
    server.failNext(1, 500);
    errors.push(await rejectsWithKind(p.decryptDataKey(encrypted, CTX), 'unavailable'));
    for (const err of errors) {
      const text = `${err.message}\n${err.stack}\n${inspect(err, { depth: 10 })}`;
      for (const s of secrets) assert.ok(!text.includes(s), `plaintext leaked into: ${err.message}`);
    }
  });

  it('validates config at construction, naming the field', async () => {
    const good = { keyId: 'k', region: 'eu-central-1' };
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ ...good, keyId: '' }, /config\.keyId/],
      [{ region: 'eu-central-1' }, /config\.keyId/],
      [{ ...good, region: 'Europe' }, /config\.region/],
      [{ ...good, endpoint: 'ftp://x' }, /config\.endpoint/],
      [{ ...good, endpoint: 'not a url' }, /config\.endpoint/],
      [{ ...good, credentials: { accessKeyId: 'a' } }, /config\.credentials\.secretAccessKey/],
      [{ ...good, timeoutMs: 0 }, /config\.timeoutMs/],
    ];
    for (const [config, field] of cases) {
      await rejectsWithKind(() => new AwsKmsSealProvider(config as unknown as AwsKmsSealConfig), 'config', field);
    }
    for (const region of ['eusc-de-east-1', 'us-gov-west-1', 'cn-north-1']) {
      await new AwsKmsSealProvider({ keyId: 'k', region }).close();
    }
  });

  it('refuses an empty context field before calling KMS', async () => {
    const p = open();
    const before = server.countOf();
    await rejectsWithKind(p.generateDataKey({ clusterId: '', region: 'x' }), 'config', /context\.clusterId/);
    assert.equal(server.countOf(), before);
  });

  it('refuses calls after close (config), and close is idempotent', async () => {
    const p = open();
    await p.close();
    await p.close();
    await rejectsWithKind(p.generateDataKey(CTX), 'config', /closed/);
  });
});
