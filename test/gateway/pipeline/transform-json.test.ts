/** Field transforms on the native backend: one call per body, AAD binding, readers, policies for odd values. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseEnvelope } from '../../../common/src/format/envelope.ts';
import type { FieldDecryptionError } from '../../../gateway/src/pipeline/transform-json.ts';
import type { KeyHandle } from '../../../native/index.ts';
import {
  assertNoMarker,
  decryptDoc,
  encryptDoc,
  keysFor,
  MARKER,
  nativeCrypto,
  READER,
  rejectsCode,
  request,
  requestRoute,
  routesOf,
  STRANGER,
} from './helpers.ts';

const policy = {
  id: 'orders',
  key: 'k',
  defaults: { tenant: { from: 'cert' }, readers: { identities: ['billing'], others: 'mask', mask: '####' } },
  routes: [
    {
      method: 'POST',
      path: '/orders/:id',
      upstream: 'http://h',
      request: [
        { select: '$.card.number', field: 'card' },
        { select: '$.items[*].note', field: 'note', onMissing: 'skip' },
        { select: '$.email', field: 'email', onMissing: 'skip' },
        { select: '$.birth', field: 'birth', onMissing: 'skip', recordId: { pathParam: 'id' } },
        { select: '$.meta', field: 'meta', onMissing: 'skip', nonString: 'stringify' },
      ],
      response: [
        { select: '$.card.number', field: 'card' },
        { select: '$.items[*].note', field: 'note', onMissing: 'skip', onFailure: 'mask' },
        {
          select: '$.email',
          field: 'email',
          onMissing: 'skip',
          readers: { identities: ['billing'], others: 'ciphertext' },
        },
        { select: '$.birth', field: 'birth', onMissing: 'skip', recordId: { pathParam: 'id' } },
        { select: '$.meta', field: 'meta', onMissing: 'skip', nonString: 'stringify' },
      ],
    },
    {
      method: 'GET',
      path: '/orders',
      upstream: 'http://h',
      response: [{ select: '$.orders[*].card.number', field: 'card', onMissing: 'skip' }],
    },
    {
      method: 'POST',
      path: '/people',
      upstream: 'http://h',
      request: [{ select: '$.people[*].ssn', field: 'ssn', recordId: { select: '$.people[*].id' } }],
      response: [{ select: '$.people[*].ssn', field: 'ssn', recordId: { select: '$.people[*].id' } }],
    },
  ],
};

const crypto = nativeCrypto();
const [orderRoute, listRoute, peopleRoute] = routesOf(policy);
if (!orderRoute || !listRoute || !peopleRoute) throw new Error('fixture routes');
const params = { id: 'o-1' };

function order() {
  return {
    id: 'o-1',
    card: { number: `4111-${MARKER}` },
    items: [{ note: `gift ${MARKER}` }, { sku: 'x' }, null, { note: `second ${MARKER}` }],
    email: `a@${MARKER}.example`,
    birth: `1990-${MARKER}`,
    meta: { tags: [MARKER, 2, true, null], n: 1.5 },
    total: 17,
  };
}

/** Counts the native batch calls made through every handle of `keys`. */
function countCalls(keys: ReturnType<typeof keysFor>) {
  const counts = { seal: 0, open: 0, spliced: 0 };
  for (const tenant of ['acme', 'globex']) {
    const h = keys.decryptKey({ tenant, keyId: 'k', keyVersion: 1 }) as KeyHandle;
    const seal = h.dataKeySealBatch.bind(h);
    const splice = h.dataKeySealSplice.bind(h);
    const open = h.dataKeyOpenBatch.bind(h);
    h.dataKeySealBatch = (...a: Parameters<KeyHandle['dataKeySealBatch']>) => {
      counts.seal++;
      return seal(...a);
    };
    h.dataKeySealSplice = (...a: Parameters<KeyHandle['dataKeySealSplice']>) => {
      counts.seal++;
      counts.spliced++;
      return splice(...a);
    };
    h.dataKeyOpenBatch = (...a: Parameters<KeyHandle['dataKeyOpenBatch']>) => {
      counts.open++;
      return open(...a);
    };
  }
  return counts;
}

describe('JSON field transform', () => {
  it('encrypts every selected field in one native call and decrypts them in one', async () => {
    const keys = keysFor(crypto);
    const calls = countCalls(keys);
    const doc = order();
    const enc = await encryptDoc(doc, request(orderRoute, keys, { params }));
    assert.equal(enc.encrypted, 6);
    assert.equal(enc.keyVersion, 1, 'the version the proxy reports as one L3 use');
    assert.equal(calls.seal, 1);
    assert.ok(!JSON.stringify(doc).includes(MARKER), 'no plaintext left in the forwarded body');
    assert.equal(doc.total, 17);
    assert.deepEqual(doc.items[1], { sku: 'x' });
    assert.equal(doc.items[2], null);
    assert.equal(parseEnvelope(doc.card.number).tenant, 'acme');
    const dec = await decryptDoc(doc, { ...request(orderRoute, keys, { params }), caller: READER });
    assert.equal(dec.decrypted, 6);
    assert.equal(calls.open, 1);
    assert.deepEqual(doc, order());
  });

  it('seals in place when no value needs decoding, in any member order; an escaped value takes the decoding path', async () => {
    const keys = keysFor(crypto);
    const calls = countCalls(keys);
    // Members in another order than the rules: the spans are sorted before the call.
    const { card, meta, email, ...rest } = order();
    const reordered = { meta, email, ...rest, card };
    const enc = await encryptDoc(reordered, request(orderRoute, keys, { params }));
    assert.equal(enc.encrypted, 6);
    assert.deepEqual([calls.seal, calls.spliced], [1, 1]);
    assertNoMarker(JSON.stringify(reordered));
    await decryptDoc(reordered, { ...request(orderRoute, keys, { params }), caller: READER });
    assert.deepEqual(reordered, { meta, email, ...rest, card });
    // A quote and a newline are escaped in the body: that value is decoded, then sealed.
    const escaped = { ...order(), email: `"a"\n@${MARKER}` };
    await encryptDoc(escaped, request(orderRoute, keys, { params }));
    assert.deepEqual([calls.seal, calls.spliced], [2, 1]);
    assertNoMarker(JSON.stringify(escaped));
    await decryptDoc(escaped, { ...request(orderRoute, keys, { params }), caller: READER });
    assert.equal(escaped.email, `"a"\n@${MARKER}`);
  });

  it('both request paths report an oversized field by its place in rule order', async () => {
    const keys = keysFor(crypto);
    const route = requestRoute(
      [
        { select: '$.b', field: 'b' },
        { select: '$.a', field: 'a' },
      ],
      { limits: { bodyBytes: 4 << 20 } },
    );
    const big = 'x'.repeat((1 << 20) + 1);
    // "a" comes first in the body, "b" first in the rules; a quote in "a" is escaped in the body,
    // which sends the request down the decoding path.
    for (const a of ['small', 'sm"all']) {
      const err = await rejectsCode(encryptDoc({ a, b: big }, request(route, keys)), 'plaintext_too_large');
      assert.match(err.message, /item 0 /, a);
    }
  });

  it('masks for callers who may not read, without decrypting, or passes the ciphertext where the rule says so', async () => {
    const keys = keysFor(crypto);
    const doc = order();
    await encryptDoc(doc, request(orderRoute, keys, { params }));
    const emailCt = doc.email;
    const calls = countCalls(keys);
    const rep = await decryptDoc(doc, { ...request(orderRoute, keys, { params }), caller: STRANGER });
    assert.equal(calls.open, 0, 'no decryption for a caller who gets masks and ciphertext');
    assert.deepEqual({ masked: rep.masked, ciphertext: rep.ciphertext }, { masked: 5, ciphertext: 1 });
    assert.equal(doc.card.number, '####');
    assert.deepEqual(doc.meta, '####');
    assert.equal(doc.email, emailCt);
  });

  it('reads a role as well as an identity', async () => {
    const keys = keysFor(crypto);
    const [route] = routesOf({
      ...policy,
      defaults: { ...policy.defaults, readers: { roles: ['ops'], others: 'mask' } },
    });
    if (!route) throw new Error('route');
    const doc = { card: { number: `4111-${MARKER}` } };
    await encryptDoc(doc, request(route, keys, { params }));
    await decryptDoc(doc, { ...request(route, keys, { params }), caller: { roles: ['viewer', 'ops'] } });
    assert.equal(doc.card.number, `4111-${MARKER}`);
  });

  it('never passes a plaintext value as "ciphertext" to a non-reader', async () => {
    const keys = keysFor(crypto);
    const doc = { card: { number: 'x' }, email: `clear ${MARKER}` };
    const err = await rejectsCode(
      decryptDoc(doc, { ...request(orderRoute, keys, { params }), caller: STRANGER }),
      'field_decryption_failed',
    );
    assert.deepEqual((err as FieldDecryptionError).failures, [
      { path: '$.email', field: 'email', reason: 'format_prefix' },
    ]);
    assert.equal(doc.email, `clear ${MARKER}`, 'the document is unchanged when the transform fails');
  });

  it('refuses a ciphertext moved to another tenant, field or record, opaquely, with the reason for the audit log', async () => {
    const keys = keysFor(crypto);
    const a = order();
    await encryptDoc(a, request(orderRoute, keys, { params }));
    const g = order();
    await encryptDoc(g, request(orderRoute, keys, { params, tenant: 'globex' }));
    const b = order();
    await encryptDoc(b, request(orderRoute, keys, { params: { id: 'o-2' } }));
    const swaps: [string, (d: ReturnType<typeof order>) => void, string][] = [
      ['tenant', (d) => (d.card.number = g.card.number), 'wrong_tenant'],
      ['field', (d) => (d.card.number = a.email), 'auth_failed'],
      ['record', (d) => (d.birth = b.birth), 'auth_failed'],
      ['garbage', (d) => (d.card.number = `okcm:1:${MARKER}`), 'format_encoding'],
    ];
    for (const [what, swap, reason] of swaps) {
      const d = structuredClone(a);
      swap(d);
      const err = await rejectsCode(
        decryptDoc(d, { ...request(orderRoute, keys, { params }), caller: READER }),
        'field_decryption_failed',
      );
      assert.equal(err.status, 422);
      assert.equal(err.message, 'an encrypted field could not be decrypted', `${what}: opaque message`);
      const f = (err as FieldDecryptionError).failures;
      assert.equal(f.length, 1, what);
      assert.equal(f[0]?.reason, reason, what);
      assertNoMarker(f);
    }
  });

  it('binds list items to their own record id, not their array index', async () => {
    const keys = keysFor(crypto);
    const doc = {
      people: [
        { id: 'p1', ssn: `111-${MARKER}` },
        { id: 7, ssn: `222-${MARKER}` },
      ],
    };
    await encryptDoc(doc, request(peopleRoute, keys));
    const reordered = { people: [doc.people[1], doc.people[0]] };
    await decryptDoc(reordered, { ...request(peopleRoute, keys), caller: READER });
    assert.deepEqual(
      reordered.people.map((p) => p?.ssn),
      [`222-${MARKER}`, `111-${MARKER}`],
    );
    await encryptDoc(doc, request(peopleRoute, keys));
    const [p0, p1] = doc.people;
    if (!p0 || !p1) throw new Error('fixture');
    [p0.ssn, p1.ssn] = [p1.ssn, p0.ssn];
    const err = await rejectsCode(
      decryptDoc(doc, { ...request(peopleRoute, keys), caller: READER }),
      'field_decryption_failed',
    );
    assert.deepEqual(
      (err as FieldDecryptionError).failures.map((f) => f.path),
      ['$.people[0].ssn', '$.people[1].ssn'],
    );
    await rejectsCode(encryptDoc({ people: [{ ssn: MARKER }] }, request(peopleRoute, keys)), 'selector_missing');
  });

  it('decrypts a field written by one route through another route of the same policy', async () => {
    const keys = keysFor(crypto);
    const one = { card: { number: `4111-${MARKER}` } };
    await encryptDoc(one, request(orderRoute, keys, { params }));
    const list: { orders: { card: { number?: string } }[] } = {
      orders: [one, { card: {} }, { card: { number: one.card.number } }],
    };
    await decryptDoc(list, { ...request(listRoute, keys), caller: READER });
    assert.equal(list.orders[2]?.card.number, `4111-${MARKER}`);
  });

  it('masks a failed field where the rule says onFailure "mask", and reports it', async () => {
    const keys = keysFor(crypto);
    const doc = order();
    await encryptDoc(doc, request(orderRoute, keys, { params }));
    const note = doc.items[0];
    if (!note?.note) throw new Error('fixture');
    note.note = doc.email;
    const rep = await decryptDoc(doc, { ...request(orderRoute, keys, { params }), caller: READER });
    assert.equal(doc.items[0]?.note, '####');
    assert.deepEqual(rep.failures, [{ path: '$.items[0].note', field: 'note', reason: 'auth_failed' }]);
    assert.equal(doc.items[3]?.note, `second ${MARKER}`);
  });

  it('applies onMissing and nonString, and refuses unexpected shapes whatever onMissing says', async () => {
    const keys = keysFor(crypto);
    const req = request(orderRoute, keys, { params });
    await rejectsCode(encryptDoc({ card: {} }, req), 'selector_missing');
    await rejectsCode(encryptDoc({ card: { number: null } }, req), 'selector_missing');
    const e1 = await rejectsCode(encryptDoc({ card: { number: 4111 } }, req), 'selector_type_mismatch');
    assert.equal(e1.detail, '$.card.number is a number');
    await rejectsCode(encryptDoc({ card: `4111 ${MARKER}` }, req), 'selector_type_mismatch');
    await rejectsCode(encryptDoc({ card: { number: 'x' }, items: { note: MARKER } }, req), 'selector_type_mismatch');
    await rejectsCode(encryptDoc([MARKER], req), 'selector_type_mismatch');
    await rejectsCode(encryptDoc({ card: { number: `\ud800${MARKER}` } }, req), 'selector_type_mismatch');
    const skipped = { card: { number: 'x' }, items: [] };
    assert.equal((await encryptDoc(skipped, req)).encrypted, 1);
  });

  it('selects own members only: never the prototype, always an own "__proto__"', async () => {
    const keys = keysFor(crypto);
    const route = requestRoute([
      { select: '$.constructor', onMissing: 'skip' },
      { select: '$["__proto__"]', onMissing: 'error' },
    ]);
    const doc = JSON.parse(`{"__proto__": "${MARKER}"}`) as Record<string, unknown>;
    const rep = await encryptDoc(doc, request(route, keys));
    assert.equal(rep.encrypted, 1);
    assert.ok(Object.hasOwn(doc, '__proto__'));
    assert.ok(!JSON.stringify(doc).includes(MARKER));
    assert.ok(!Object.hasOwn(doc, 'constructor'));
  });

  it('stops at maxFields', async () => {
    const keys = keysFor(crypto);
    const [route] = routesOf({
      id: 'p',
      key: 'k',
      defaults: { tenant: { from: 'cert' }, limits: { maxFields: 3 } },
      routes: [{ method: 'POST', path: '/', upstream: 'http://h', request: [{ select: '$[*]' }] }],
    });
    if (!route) throw new Error('route');
    await rejectsCode(encryptDoc([MARKER, MARKER, MARKER, MARKER], request(route, keys)), 'too_many_fields');
    assert.equal((await encryptDoc(['a', 'b', 'c'], request(route, keys))).encrypted, 3);
  });

  it('awaits a key provider that answers with promises (a cold lease cache)', async () => {
    const keys = keysFor(crypto);
    const doc = order();
    await encryptDoc(doc, request(orderRoute, keys, { params }));
    let asked = 0;
    const cold = {
      encryptKey: async (t: string, k: string) => keys.encryptKey(t, k),
      decryptKey: async (ref: Parameters<typeof keys.decryptKey>[0]) => {
        asked++;
        return keys.decryptKey(ref);
      },
    };
    await decryptDoc(doc, { route: orderRoute, tenant: 'acme', params, keys: cold, caller: READER });
    assert.equal(asked, 1, 'one lookup per key version');
    assert.deepEqual(doc, order());
    const again = order();
    await encryptDoc(again, { route: orderRoute, tenant: 'acme', params, keys: cold });
    assert.equal(parseEnvelope(again.card.number).keyId, 'k');
  });

  it('does not resolve keys of another key id than the route names', async () => {
    const keys = keysFor(crypto).add('acme', 'other', 1, crypto.generateKey());
    const [otherRoute] = routesOf({ ...policy, key: 'other' });
    if (!otherRoute) throw new Error('route');
    const doc = { card: { number: MARKER } };
    await encryptDoc(doc, request(otherRoute, keys, { params }));
    const err = await rejectsCode(
      decryptDoc(doc, { ...request(orderRoute, keys, { params }), caller: READER }),
      'field_decryption_failed',
    );
    assert.equal((err as FieldDecryptionError).failures[0]?.reason, 'unknown_key');
  });
});
