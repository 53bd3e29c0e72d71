/**
 * The KMS-protocol test server itself (test/support/kms-server.ts): the
 * operations the seal provider does not use (Encrypt, DescribeKey) through the
 * real SDK, and the wire contract (auth header required, AWS JSON error shape)
 * through raw HTTP.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import {
  DecryptCommand,
  DescribeKeyCommand,
  EncryptCommand,
  InvalidCiphertextException,
  KMSClient,
  NotFoundException,
} from '@aws-sdk/client-kms';
import { KmsTestServer } from '../../support/kms-server.ts';

describe('KmsTestServer', () => {
  let server: KmsTestServer;
  let client: KMSClient;

  before(async () => {
    server = await KmsTestServer.start({ region: 'us-west-2' });
    client = new KMSClient({
      region: 'us-west-2',
      endpoint: server.endpoint,
      credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'secret' },
      maxAttempts: 1,
    });
  });

  after(async () => {
    client.destroy();
    await server.close();
  });

  it('Encrypt/Decrypt round-trip through the SDK, binding the encryption context', async () => {
    const { arn } = server.createKey();
    const Plaintext = Buffer.from('hello kms');
    const ec = { a: '1', b: '2' };
    const enc = await client.send(new EncryptCommand({ KeyId: arn, Plaintext, EncryptionContext: ec }));
    assert.equal(enc.KeyId, arn);
    const dec = await client.send(
      new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob, EncryptionContext: { b: '2', a: '1' } }),
    );
    assert.deepEqual(Buffer.from(dec.Plaintext ?? []), Plaintext);
    assert.equal(dec.KeyId, arn, 'the blob names its key: Decrypt needs no KeyId');
    await assert.rejects(
      client.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob, EncryptionContext: { a: '1' } })),
      InvalidCiphertextException,
    );
  });

  it('DescribeKey reports state and ARN; unknown keys are NotFoundException', async () => {
    const { keyId, arn } = server.createKey({ alias: 'described' });
    server.setKeyState(keyId, 'Disabled');
    const { KeyMetadata } = await client.send(new DescribeKeyCommand({ KeyId: 'alias/described' }));
    assert.equal(KeyMetadata?.Arn, arn);
    assert.equal(KeyMetadata?.KeyState, 'Disabled');
    assert.equal(KeyMetadata?.Enabled, false);
    assert.ok(KeyMetadata?.CreationDate instanceof Date);
    await assert.rejects(client.send(new DescribeKeyCommand({ KeyId: 'nope' })), NotFoundException);
  });

  it('requires an Authorization header and answers in the AWS JSON error shape', async () => {
    const noAuth = await raw({ 'x-amz-target': 'TrentService.DescribeKey' }, '{"KeyId":"x"}');
    assert.equal(noAuth.status, 400);
    assert.equal(noAuth.body.__type, 'MissingAuthenticationTokenException');
    assert.equal(typeof noAuth.body.message, 'string');

    const unknown = await raw({ 'x-amz-target': 'TrentService.Sign', authorization: 'AWS4-HMAC-SHA256 x' }, '{}');
    assert.equal(unknown.body.__type, 'UnknownOperationException');

    server.failNext(1);
    const internal = await raw(
      { 'x-amz-target': 'TrentService.DescribeKey', authorization: 'AWS4-HMAC-SHA256 x' },
      '{}',
    );
    assert.equal(internal.status, 500);
    assert.equal(internal.body.__type, 'KMSInternalException');
  });

  it('counts requests per operation, faulted ones included', async () => {
    const { arn } = server.createKey();
    const before = server.countOf('DescribeKey');
    server.throttleNext(1);
    await assert.rejects(client.send(new DescribeKeyCommand({ KeyId: arn })), { name: 'ThrottlingException' });
    await client.send(new DescribeKeyCommand({ KeyId: arn }));
    assert.equal(server.countOf('DescribeKey') - before, 2);
  });

  async function raw(
    headers: Record<string, string>,
    body: string,
  ): Promise<{ status: number; body: Record<string, unknown> }> {
    const url = new URL(server.endpoint);
    return new Promise((resolve, reject) => {
      const req = request(
        {
          host: url.hostname,
          port: url.port,
          method: 'POST',
          path: '/',
          agent: false,
          headers: { 'content-type': 'application/x-amz-json-1.1', ...headers },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString()) }),
          );
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  }
});
