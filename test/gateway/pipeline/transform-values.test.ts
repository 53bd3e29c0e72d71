/**
 * What exactly a proxied field binds and restores, on body bytes: record ids
 * (numbers by their exact JSON text, a string and a number of the same text one record, lone
 * surrogates refused), `nonString: "stringify"` (the value's exact bytes
 * back), decrypted plaintexts that do not decode (a per-field failure, never
 * an exception carrying them), plaintext buffers zeroed on every path, and
 * case variants of selected member names refused.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { encryptFields } from '../../../common/src/crypto/field-cipher.ts';
import { fieldContext, type RecordId } from '../../../gateway/src/pipeline/field-context.ts';
import { scanJsonBody } from '../../../gateway/src/pipeline/json-body.ts';
import { StaticKeyProvider } from '../../../gateway/src/pipeline/key-provider.ts';
import { decryptResponseFields } from '../../../gateway/src/pipeline/transform-decrypt.ts';
import { encryptRequestFields } from '../../../gateway/src/pipeline/transform-encrypt.ts';
import {
  type Caller,
  type FieldDecryptionError,
  planFor,
  type TransformRequest,
} from '../../../gateway/src/pipeline/transform-json.ts';
import type { FieldRule } from '../../../gateway/src/policy/policy-types.ts';
import type { KeyHandle } from '../../../native/index.ts';
import { assertNoMarker, keysFor, MARKER, nativeCrypto, READER, rejectsCode, routesOf } from './helpers.ts';

const crypto = nativeCrypto();

const [route] = routesOf({
  id: 'pol',
  key: 'k',
  defaults: { tenant: { from: 'cert' }, readers: { identities: ['billing'], others: 'mask', mask: '####' } },
  routes: [
    {
      method: 'POST',
      path: '/p/:id',
      upstream: 'http://h',
      request: [
        { select: '$.people[*].ssn', field: 'ssn', onMissing: 'skip', recordId: { select: '$.people[*].id' } },
        { select: '$.amount', field: 'amount', onMissing: 'skip', nonString: 'stringify' },
        { select: '$.meta', field: 'meta', onMissing: 'skip', nonString: 'stringify' },
        { select: '$.note', field: 'note', onMissing: 'skip' },
        { select: '$.card.number', field: 'card', onMissing: 'skip' },
        { select: '$.birth', field: 'birth', onMissing: 'skip', recordId: { pathParam: 'id' } },
      ],
      response: [
        { select: '$.people[*].ssn', field: 'ssn', onMissing: 'skip', recordId: { select: '$.people[*].id' } },
        { select: '$.amount', field: 'amount', onMissing: 'skip', nonString: 'stringify' },
        { select: '$.meta', field: 'meta', onMissing: 'skip', nonString: 'stringify', onFailure: 'mask' },
        { select: '$.note', field: 'note', onMissing: 'skip' },
        { select: '$.card.number', field: 'card', onMissing: 'skip', onFailure: 'mask' },
        { select: '$.birth', field: 'birth', onMissing: 'skip', recordId: { pathParam: 'id' } },
      ],
    },
  ],
});
if (!route) throw new Error('fixture route');
const R = route;

function req(keys: TransformRequest['keys'], params: Record<string, string> = { id: 'r1' }): TransformRequest {
  return { route: R, tenant: 'acme', params, keys };
}

/** encryptRequestFields on body text; the new body text. */
async function encryptText(text: string, r: TransformRequest): Promise<string> {
  const body = scanJsonBody(Buffer.from(text, 'utf8'), 'application/json', R.limits, planFor(R.request));
  const report = await encryptRequestFields(body, r);
  return report.body === undefined ? text : report.body.toString('utf8');
}

/** decryptResponseFields on body text for a reader; the new body text and the report. */
async function decryptText(text: string, r: TransformRequest, caller: Caller = READER) {
  const body = scanJsonBody(Buffer.from(text, 'utf8'), 'application/json', R.limits, planFor(R.response));
  const report = await decryptResponseFields(body, { ...r, caller });
  return { text: report.body === undefined ? text : report.body.toString('utf8'), report };
}

/** The failure reasons of a decryption that must fail. */
async function failureReasons(text: string, r: TransformRequest): Promise<string[]> {
  const err = await rejectsCode(decryptText(text, r), 'field_decryption_failed');
  return (err as FieldDecryptionError).failures.map((f) => f.reason);
}

/** A ciphertext of `plaintext` for a response rule, made outside the proxy (as the direct API can). */
function forge(keys: StaticKeyProvider, ruleIndex: number, plaintext: Buffer, recordId?: RecordId): string {
  const { handle, ref } = keys.encryptKey('acme', 'k');
  const ctx = fieldContext(R.policyId, R.response[ruleIndex] as FieldRule, recordId);
  return encryptFields(handle, ref, [plaintext], [ctx])[0] as string;
}

/** Records every plaintext buffer the handle's batch opens return. */
function capturePlaintexts(handle: KeyHandle): Buffer[] {
  const seen: Buffer[] = [];
  const open = handle.dataKeyOpenBatch.bind(handle);
  handle.dataKeyOpenBatch = (...a: Parameters<KeyHandle['dataKeyOpenBatch']>) => {
    const out = open(...a);
    for (const p of out) if (p) seen.push(p as Buffer);
    return out;
  };
  return seen;
}

const allZero = (bufs: readonly Buffer[]) => bufs.every((b) => b.every((x) => x === 0));

describe('record ids: bound exactly', () => {
  const person = (id: string, ssn: string) => `{"people":[{"id":${id},"ssn":${JSON.stringify(ssn)}}]}`;
  const ssnOf = (text: string) => (JSON.parse(text) as { people: { ssn: string }[] }).people[0]?.ssn as string;

  it('binds a number id by its JSON text: ids past 2^53, 7.0 vs 7, 1e2 vs 100 are different records', async () => {
    const keys = keysFor(crypto);
    for (const [sealed, moved] of [
      ['12345678901234567891', '12345678901234567890'],
      ['7', '7.0'],
      ['100', '1e2'],
      ['0', '-0'],
      ['1E400', '1e400'],
    ] as const) {
      const ct = ssnOf(await encryptText(person(sealed, `111-${MARKER}`), req(keys)));
      const back = await decryptText(person(sealed, ct), req(keys));
      assert.equal(ssnOf(back.text), `111-${MARKER}`, `${sealed} opens where it was sealed`);
      assert.deepEqual(await failureReasons(person(moved, ct), req(keys)), ['auth_failed'], `${sealed} → ${moved}`);
    }
  });

  it('the string id "7" and the number id 7 are one record (a path parameter is text); escapes do not matter', async () => {
    const keys = keysFor(crypto);
    const asString = ssnOf(await encryptText(person('"7"', MARKER), req(keys)));
    assert.equal(ssnOf((await decryptText(person('7', asString), req(keys))).text), MARKER);
    const asNumber = ssnOf(await encryptText(person('7', MARKER), req(keys)));
    assert.equal(ssnOf((await decryptText(person('"7"', asNumber), req(keys))).text), MARKER);
    assert.equal(ssnOf((await decryptText(person('"\\u0037"', asString), req(keys))).text), MARKER);
    assert.deepEqual(await failureReasons(person('"8"', asString), req(keys)), ['auth_failed']);
  });

  it('refuses a record id with a lone surrogate (bound as U+FFFD it would equal another id), on both sides', async () => {
    const keys = keysFor(crypto);
    for (const id of ['"\\ud800"', '"a\\udfffb"', '"\\uDC00\\uD800"']) {
      const err = await rejectsCode(encryptText(person(id, MARKER), req(keys)), 'selector_type_mismatch');
      assert.equal(err.detail, 'record id $.people[0].id is not well-formed Unicode');
    }
    const ct = ssnOf(await encryptText(person('"\ufffd"', MARKER), req(keys)));
    await rejectsCode(decryptText(person('"\\ud800"', ct), req(keys)), 'selector_type_mismatch');
    assert.equal(ssnOf((await decryptText(person('"\\ufffd"', ct), req(keys))).text), MARKER);
    // A surrogate pair is well-formed.
    const pair = ssnOf(await encryptText(person('"\\ud83d\\ude00"', MARKER), req(keys)));
    assert.equal(ssnOf((await decryptText(person('"😀"', pair), req(keys))).text), MARKER);
  });

  it('binds the context bytes of the format in field-context.ts (known answers)', () => {
    const rule = R.request[0] as FieldRule;
    const prefix = Buffer.concat([
      Buffer.from('okcm/proxy/v1\0', 'latin1'),
      Buffer.from([3]),
      Buffer.from('pol'),
      Buffer.from([0, 3]),
      Buffer.from('ssn'),
      Buffer.from([1]),
    ]);
    const hex = (id: RecordId | undefined) => fieldContext('pol', rule, id).toString('hex');
    assert.equal(hex(undefined), Buffer.concat([prefix, Buffer.from([0])]).toString('hex'));
    const str = { kind: 'string', bytes: Buffer.from('7é') } as const;
    assert.equal(hex(str), Buffer.concat([prefix, Buffer.from([1, 0, 3]), Buffer.from('7é')]).toString('hex'));
    const num = { kind: 'number', bytes: Buffer.from('12345678901234567891') } as const;
    assert.equal(
      hex(num),
      Buffer.concat([prefix, Buffer.from([1, 0, 20]), Buffer.from('12345678901234567891')]).toString('hex'),
    );
    assert.throws(() => fieldContext('pol', rule, { kind: 'number', bytes: Buffer.alloc(1025, 0x31) }), {
      code: 'selector_type_mismatch',
    });
  });

  it('binds a path parameter as text: /orders/42 opens what "id": 42 or "id": "42" sealed', async () => {
    const keys = keysFor(crypto);
    const out = await encryptText(`{"birth":"${MARKER}"}`, req(keys, { id: '42' }));
    assert.equal((await decryptText(out, req(keys, { id: '42' }))).text, `{"birth":"${MARKER}"}`);
    assert.deepEqual(await failureReasons(out, req(keys, { id: '43' })), ['auth_failed']);
    for (const kind of ['string', 'number'] as const) {
      const sealed = forge(keys, 5, Buffer.from(MARKER), { kind, bytes: Buffer.from('42') });
      assert.equal((await decryptText(`{"birth":"${sealed}"}`, req(keys, { id: '42' }))).text, `{"birth":"${MARKER}"}`);
    }
  });
});

describe('nonString "stringify": the exact bytes back', () => {
  it('restores 12345678901234567891.50 and every other spelling byte for byte', async () => {
    const keys = keysFor(crypto);
    for (const text of [
      '{"amount":12345678901234567891.50}',
      '{"amount":-0.000e-00}',
      '{"amount":1E+400}',
      '{"amount":"\\u0041\\/\\ud800"}',
      '{"meta":{ "b" : [ 1.0 , true,null ] ,"a":"é\\n" }}',
      '{ "amount" : [] , "meta" : false }',
    ]) {
      const enc = await encryptText(text, req(keys));
      assert.ok(!enc.includes('1.50') && !enc.includes('"b"'), `${text} encrypted`);
      assert.equal((await decryptText(enc, req(keys))).text, text);
    }
  });

  it('round-trips random JSON texts byte for byte', async () => {
    const keys = keysFor(crypto);
    const number = fc.stringMatching(/^-?(0|[1-9][0-9]{0,30})(\.[0-9]{1,12})?([eE][+-]?[0-9]{1,3})?$/);
    const spaced = fc
      .tuple(fc.jsonValue({ maxDepth: 3 }), fc.constantFrom(undefined, 1, 2, '\t', ' \r\n'))
      .map(([v, indent]) => JSON.stringify(v, null, indent) ?? 'null');
    const value = fc.oneof(number, spaced).filter((v) => v !== 'null');
    await fc.assert(
      fc.asyncProperty(value, async (v) => {
        const text = `{"note":"n","amount": ${v} ,"x":1}`;
        const enc = await encryptText(text, req(keys));
        assert.equal((await decryptText(enc, req(keys))).text, text);
      }),
      { numRuns: 300 },
    );
  });
});

describe('decrypted values that do not decode', () => {
  it('fails a "stringify" plaintext that is not one JSON value per field (value_encoding), quoting nothing', async () => {
    const keys = keysFor(crypto);
    for (const plaintext of [`TOPSECRET not json ${MARKER}`, `{"a":"${MARKER}"`, `"${MARKER}" 1`, '']) {
      const bad = forge(keys, 1, Buffer.from(plaintext));
      const err = await rejectsCode(decryptText(`{"amount":"${bad}"}`, req(keys)), 'field_decryption_failed');
      assert.deepEqual((err as FieldDecryptionError).failures, [
        { path: '$.amount', field: 'amount', reason: 'value_encoding' },
      ]);
      assertNoMarker((err as FieldDecryptionError).failures);
    }
    const deep = forge(
      keys,
      1,
      Buffer.from(`${'['.repeat(R.limits.maxDepth + 1)}${']'.repeat(R.limits.maxDepth + 1)}`),
    );
    assert.deepEqual(await failureReasons(`{"amount":"${deep}"}`, req(keys)), ['value_encoding']);
  });

  it('fails a string plaintext that is not UTF-8 (value_encoding), instead of replacing bytes with U+FFFD', async () => {
    const keys = keysFor(crypto);
    const bad = forge(keys, 3, Buffer.from([0x61, 0xff, 0xfe]));
    assert.deepEqual(await failureReasons(`{"note":"${bad}"}`, req(keys)), ['value_encoding']);
  });

  it('masks such a field where the rule says onFailure "mask", and decrypts the others', async () => {
    const keys = keysFor(crypto);
    const bad = forge(keys, 2, Buffer.from(`not json ${MARKER}`));
    const good = JSON.parse(await encryptText(`{"note":"${MARKER}"}`, req(keys))).note as string;
    const { text, report } = await decryptText(`{"meta":"${bad}","note":"${good}"}`, req(keys));
    assert.equal(text, `{"meta":"####","note":"${MARKER}"}`);
    assert.deepEqual(report.failures, [{ path: '$.meta', field: 'meta', reason: 'value_encoding' }]);
    assert.equal(report.decrypted, 1);
  });
});

describe('plaintext buffers are zeroed on every path', () => {
  it('after success, after a per-field failure, and when a backend call throws', async () => {
    const keys = keysFor(crypto);
    const handle = keys.decryptKey({ tenant: 'acme', keyId: 'k', keyVersion: 1 }) as KeyHandle;
    const seen = capturePlaintexts(handle);
    const enc = await encryptText(
      `{"note":"${MARKER}","meta":{"m":"${MARKER}"},"card":{"number":"4111-${MARKER}"}}`,
      req(keys),
    );
    assert.equal((await decryptText(enc, req(keys))).report.decrypted, 3);
    assert.equal(seen.length, 3);
    assert.ok(allZero(seen), 'success');

    seen.length = 0;
    const bad = forge(keys, 1, Buffer.from(`x ${MARKER}`));
    const withBad = enc.replace(/}$/, `,"amount":"${bad}"}`);
    await rejectsCode(decryptText(withBad, req(keys)), 'field_decryption_failed');
    assert.equal(seen.length, 4);
    assert.ok(allZero(seen), 'a field that does not decode, beside three that do');

    // Version 1 opens, then the backend throws on version 2: version 1's plaintexts are zeroed before the error goes on.
    const v2 = crypto.generateKey();
    const both = new StaticKeyProvider().add('acme', 'k', 1, handle);
    // birth is the last rule, so its version's group is opened after version 1's.
    const newer = await encryptText(`{"birth":"${MARKER}"}`, req(new StaticKeyProvider().add('acme', 'k', 2, v2)));
    both.add('acme', 'k', 2, v2);
    v2.dataKeyOpenBatch = () => {
      throw new Error('backend failure');
    };
    seen.length = 0;
    const mixed = enc.replace(/}$/, `,${newer.slice(1)}`);
    await assert.rejects(decryptText(mixed, req(both)), /backend failure/);
    assert.equal(seen.length, 3);
    assert.ok(allZero(seen), 'a backend exception');
  });
});

describe('case variants of selected member names', () => {
  it('refuses a body whose selected member has a case variant, alone or beside it (json_duplicate_key)', async () => {
    const keys = keysFor(crypto);
    for (const text of [
      `{"card":{"number":"x","Number":"4111-${MARKER}"}}`,
      `{"card":{"Number":"4111-${MARKER}"}}`,
      `{"Card":{"number":"4111-${MARKER}"}}`,
      `{"NOTE":"${MARKER}"}`,
      `{"people":[{"ID":1,"ssn":"${MARKER}"}]}`,
      `{"people":[{"id":1,"\\u017fsn":"${MARKER}"}]}`,
    ]) {
      assert.throws(
        () => scanJsonBody(Buffer.from(text), 'application/json', R.limits, planFor(R.request)),
        (err: { code?: string; status?: number; message?: string }) =>
          err.code === 'json_duplicate_key' && err.status === 400 && !String(err.message).includes(MARKER),
        text,
      );
    }
    assert.equal(await encryptText('{"other":{"Number":1},"cards":2}', req(keys)), '{"other":{"Number":1},"cards":2}');
  });
});
