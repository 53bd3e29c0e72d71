/** POST /v1/datakey: plaintext + wrapped, wrapped only; the wrapped key decrypts through /v1/decrypt. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { b64, type Fixture, postJson, startFixture } from './gateway-fixture.ts';

describe('POST /v1/datakey', () => {
  let f: Fixture;
  before(async () => {
    f = await startFixture();
  });
  after(() => f.close());

  it('returns a fresh 256-bit key and its wrapped form, which /v1/decrypt opens', async () => {
    const r = await postJson(f, `${f.base.uws}/v1/datakey/plaintext/files`, { context: b64('bucket-1') });
    assert.equal(r.status, 200);
    const key = Buffer.from(r.json.data.plaintext, 'base64');
    assert.equal(key.length, 32);
    assert.equal(r.json.data.key_version, 1);
    const again = await postJson(f, `${f.base.uws}/v1/datakey/plaintext/files`, { context: b64('bucket-1') });
    assert.notEqual(again.json.data.plaintext, r.json.data.plaintext);
    const d = await postJson(f, `${f.base.uws}/v1/decrypt/files`, {
      ciphertext: r.json.data.ciphertext,
      context: b64('bucket-1'),
    });
    assert.deepEqual(Buffer.from(d.json.data.plaintext, 'base64'), key);
  });

  it('returns only the wrapped key for type wrapped, in the requested size', async () => {
    const r = await postJson(f, `${f.base.plain}/v1/datakey`, { type: 'wrapped', key: 'files', bits: 512 });
    assert.equal(r.status, 200);
    assert.equal(r.json.data.plaintext, undefined);
    const d = await postJson(f, `${f.base.uws}/v1/decrypt/files`, { ciphertext: r.json.data.ciphertext });
    assert.equal(Buffer.from(d.json.data.plaintext, 'base64').length, 64);
  });

  it('refuses unknown types and sizes', async () => {
    assert.equal((await postJson(f, `${f.base.uws}/v1/datakey/raw/files`, {})).status, 400);
    assert.equal((await postJson(f, `${f.base.uws}/v1/datakey/wrapped/files`, { bits: 100 })).status, 400);
    assert.equal((await postJson(f, `${f.base.uws}/v1/datakey/wrapped/files`, { type: 'plaintext' })).status, 400);
  });
});
