/**
 * The response transform's two paths must answer alike: the one-call path
 * (openFieldsInto → dataKeyOpenSplice: every field opened and spliced in one
 * native call, all or nothing) and the general path (each ciphertext parsed,
 * opened with dataKeyOpenBatch, failures reported per field). For random
 * documents, policies and tampering, decryptResponseFields with the native
 * handles and with handles that decline the one-call path give the same
 * report and body bytes, or the same error with the same per-field reasons.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { KcmError } from '../../../common/src/errors.ts';
import type { FieldKeyProvider } from '../../../gateway/src/pipeline/key-provider.ts';
import { FieldDecryptionError } from '../../../gateway/src/pipeline/transform-json.ts';
import type { KeyHandle } from '../../../native/index.ts';
import { decryptValue, encryptValue, generalPathKeys, keysFor, nativeCrypto, routesOf } from './helpers.ts';

const crypto = nativeCrypto();

type Doc = { id: string; items: { note?: string; tag?: string }[]; card?: string; other?: number };

const text = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.string({ unit: 'binary', maxLength: 6 }),
  fc.constantFrom('', '"q"', 'a\\b', 'line\nbreak', '\u0000\u001f\u007f', 'é✓\u{1F600}'),
);
const doc: fc.Arbitrary<Doc> = fc.record(
  {
    id: fc.constantFrom('o-1', 'o-2'),
    items: fc.array(fc.record({ note: text, tag: text }, { requiredKeys: [] }), { maxLength: 4 }),
    card: text,
    other: fc.integer(),
  },
  { requiredKeys: ['id', 'items'] },
);

/** What one decryption gave: the report, or the error's code and per-field reasons. */
async function outcome(run: () => Promise<unknown>): Promise<unknown> {
  try {
    return await run();
  } catch (err) {
    assert.ok(err instanceof KcmError, String(err));
    return { code: err.code, failures: err instanceof FieldDecryptionError ? err.failures : undefined };
  }
}

describe('response transform: the one-call path and the general path agree', () => {
  it('on random documents, policies and tampering', async () => {
    const keys = keysFor(crypto);
    let oneCall = 0;
    const acme = keys.decryptKey({ tenant: 'acme', keyId: 'k', keyVersion: 1 }) as KeyHandle;
    const splice = acme.dataKeyOpenSplice.bind(acme);
    acme.dataKeyOpenSplice = (...a: Parameters<KeyHandle['dataKeyOpenSplice']>) => {
      const out = splice(...a);
      if (out !== null) oneCall++;
      return out;
    };
    const general = generalPathKeys(keys);
    const scenario = fc.record({
      d: doc,
      bindRecord: fc.boolean(),
      onFailure: fc.constantFrom('error', 'mask'),
      // Weighted so that about half the runs can take the one-call path.
      cardReaders: fc.constantFrom('reader', 'reader', 'reader', 'nobody'),
      tamper: fc.oneof(
        { arbitrary: fc.constant(undefined), weight: 3 },
        { arbitrary: fc.tuple(fc.nat(), fc.nat()), weight: 1 },
      ),
      swap: fc.constantFrom(false, false, false, true),
      readAs: fc.constantFrom('o-1', 'o-1', 'o-1', 'o-2'),
    });
    await fc.assert(
      fc.asyncProperty(scenario, async ({ d, bindRecord, onFailure, cardReaders, tamper, swap, readAs }) => {
        const rule = (select: string, field: string) => ({
          select,
          field,
          onMissing: 'skip',
          ...(bindRecord ? { recordId: { pathParam: 'id' } } : {}),
        });
        const out = (select: string, field: string) => ({ ...rule(select, field), onFailure });
        const [route] = routesOf({
          id: 'paths',
          key: 'k',
          defaults: { tenant: { from: 'cert' }, readers: { identities: ['reader'], others: 'mask', mask: '***' } },
          routes: [
            {
              method: 'POST',
              path: '/x/:id',
              upstream: 'http://h',
              request: [rule('$.items[*].note', 'note'), rule('$.card', 'card')],
              response: [
                out('$.items[*].note', 'note'),
                { ...out('$.card', 'card'), readers: { identities: [cardReaders], others: 'mask', mask: '***' } },
              ],
            },
          ],
        });
        assert.ok(route);
        const enc = await encryptValue(d, { route, tenant: 'acme', params: { id: d.id }, keys });
        const sealed = enc.value as Doc;
        // Tampering: one character of one envelope changed, or two envelopes swapped.
        const envelopes: [object, 'note' | 'card'][] = [
          ...sealed.items.filter((i) => i.note !== undefined).map((i): [object, 'note'] => [i, 'note']),
          ...(sealed.card !== undefined ? [[sealed, 'card'] as [object, 'card']] : []),
        ];
        const at = (k: number) => envelopes[k % Math.max(1, envelopes.length)];
        if (tamper && envelopes.length > 0) {
          const [obj, key] = at(tamper[0]) as [Record<string, string>, string];
          const v = obj[key] as string;
          const i = 7 + (tamper[1] % Math.max(1, v.length - 7));
          obj[key] = `${v.slice(0, i)}${v[i] === 'A' ? 'B' : 'A'}${v.slice(i + 1)}`;
        }
        if (swap && envelopes.length > 1) {
          const [a, ka] = at(0) as [Record<string, string>, string];
          const [b, kb] = at(1) as [Record<string, string>, string];
          [a[ka], b[kb]] = [b[kb] as string, a[ka] as string];
        }
        const req = { route, tenant: 'acme', params: { id: readAs }, caller: { identity: 'reader', roles: [] } };
        const fast = await outcome(() => decryptValue(sealed, { ...req, keys }).then((r) => r.report));
        const slow = await outcome(() => decryptValue(sealed, { ...req, keys: general }).then((r) => r.report));
        assert.deepEqual(fast, slow);
      }),
      { numRuns: 300 },
    );
    // The one-call path must have been taken often enough for the comparison to mean something.
    assert.ok(oneCall >= 60, `one-call path taken ${oneCall} times`);
  });

  it('a decline after the one-call path resolved the key does not ask for it again (one cache lookup per version)', async () => {
    const keys = keysFor(crypto);
    let asked = 0;
    const counting: FieldKeyProvider = {
      encryptKey: (tenant, keyId) => keys.encryptKey(tenant, keyId),
      decryptKey: (ref) => {
        asked++;
        return keys.decryptKey(ref);
      },
    };
    const field = (select: string, name: string) => ({ select, field: name });
    const masked = (select: string, name: string) => ({ ...field(select, name), onFailure: 'mask' });
    const [route] = routesOf({
      id: 'once',
      key: 'k',
      defaults: { tenant: { from: 'cert' }, readers: { identities: ['reader'], others: 'mask', mask: '***' } },
      routes: [
        {
          method: 'POST',
          path: '/x',
          upstream: 'http://h',
          request: [field('$.a', 'a'), field('$.b', 'b')],
          response: [masked('$.a', 'a'), masked('$.b', 'b')],
        },
      ],
    });
    assert.ok(route);
    const sealed = (await encryptValue({ a: 'one', b: 'two' }, { route, tenant: 'acme', params: {}, keys })).value as {
      a: string;
      b: string;
    };
    // A field from another field's envelope: its AAD fails, so the one-call path declines after resolving the key.
    const tampered = { a: sealed.a, b: sealed.a };
    const req = { route, tenant: 'acme', params: {}, caller: { identity: 'reader', roles: [] }, keys: counting };
    const { report, value } = await decryptValue(tampered, req);
    assert.deepEqual(value, { a: 'one', b: '***' });
    assert.equal(report.masked, 1);
    assert.equal(asked, 1);
  });
});
