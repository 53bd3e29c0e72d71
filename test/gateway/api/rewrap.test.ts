/** POST /v1/rewrap: rotate → rewrap to the current version without plaintext → old version revoked → new still opens. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { parseEnvelope } from '../../../common/src/format/envelope.ts';
import { b64, type Fixture, postJson, startFixture } from './gateway-fixture.ts';

describe('POST /v1/rewrap', () => {
  let f: Fixture;
  before(async () => {
    f = await startFixture();
  });
  after(() => f.close());

  it('moves ciphertexts to the current version, keeping the context bound', async () => {
    const v1 = await postJson(f, `${f.base.uws}/v1/encrypt/acct`, {
      batch: [
        { plaintext: b64('one'), context: b64('c1') },
        { plaintext: b64('two'), context: b64('c2') },
      ],
    });
    const [a, b] = v1.json.data.batch_results.map((x: any) => x.ciphertext);
    assert.equal(f.keys.rotate('t1', 'acct'), 2);
    const r = await postJson(f, `${f.base.plain}/v1/rewrap/acct`, {
      batch: [
        { ciphertext: a, context: b64('c1'), reference: 'a' },
        { ciphertext: b, context: b64('wrong'), reference: 'b' },
      ],
    });
    assert.equal(r.status, 200);
    const [ra, rb] = r.json.data.batch_results;
    assert.equal(ra.key_version, 2);
    assert.equal(parseEnvelope(ra.ciphertext).keyVersion, 2);
    assert.equal(ra.plaintext, undefined, 'rewrap never returns plaintext');
    assert.equal(rb.error.code, 'decryption_failed');
    assert.ok(!JSON.stringify(r.json).includes(b64('one')));
    f.keys.revoke('t1', 'acct', 1);
    const old = await postJson(f, `${f.base.uws}/v1/decrypt/acct`, { ciphertext: a, context: b64('c1') });
    assert.equal(old.json.error.code, 'decryption_failed');
    const fresh = await postJson(f, `${f.base.uws}/v1/decrypt/acct`, {
      ciphertext: ra.ciphertext,
      context: b64('c1'),
      encoding: 'utf8',
    });
    assert.equal(fresh.json.data.plaintext, 'one');
    const noCtx = await postJson(f, `${f.base.uws}/v1/decrypt/acct`, { ciphertext: ra.ciphertext });
    assert.equal(noCtx.json.error.code, 'decryption_failed');
  });

  it('refuses to rewrap a ciphertext of another key', async () => {
    const other = await postJson(f, `${f.base.uws}/v1/encrypt/other`, { plaintext: b64('x') });
    const r = await postJson(f, `${f.base.uws}/v1/rewrap/acct`, { ciphertext: other.json.data.ciphertext });
    assert.equal(r.status, 400);
    assert.equal(r.json.error.code, 'decryption_failed');
  });
});
