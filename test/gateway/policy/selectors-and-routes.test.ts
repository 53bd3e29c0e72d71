/** Selectors, route patterns, tenant sources and the position-tracking reader, unit by unit. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { KcmError } from '../../../common/src/errors.ts';
import { JsonSyntaxError, plainValue, readPositionedJson } from '../../../gateway/src/policy/json-position-reader.ts';
import { matchRoutePattern, parseRoutePattern } from '../../../gateway/src/policy/route-pattern.ts';
import {
  MAX_SELECTOR_SEGMENTS,
  parseSelector,
  SelectorSyntaxError,
  selectorsOverlap,
} from '../../../gateway/src/policy/selector.ts';
import { resolveTenant, TrustedPeers } from '../../../gateway/src/policy/tenant-source.ts';

describe('selectors', () => {
  it('parses names, quoted names and [*] into a canonical text', () => {
    const s = parseSelector('$["items"][*].card["odd key"].n_1');
    assert.equal(s.text, '$.items[*].card["odd key"].n_1');
    assert.deepEqual(s.segments, [
      { kind: 'member', name: 'items' },
      { kind: 'each' },
      { kind: 'member', name: 'card' },
      { kind: 'member', name: 'odd key' },
      { kind: 'member', name: 'n_1' },
    ]);
    assert.equal(parseSelector('$["a\\"]b"]').segments[0]?.kind, 'member');
  });

  it('refuses everything else', () => {
    for (const bad of [
      '',
      'a.b',
      '$',
      '$.',
      '$..a',
      '$.a[0]',
      '$.a[?(@.x)]',
      "$['a']",
      '$["a"',
      '$.1a',
      `$${'.a'.repeat(MAX_SELECTOR_SEGMENTS + 1)}`,
    ]) {
      assert.throws(() => parseSelector(bad), SelectorSyntaxError, bad);
    }
  });

  it('formats to text that parses back to the same segments', () => {
    const seg = fc.oneof(
      fc.constant({ kind: 'each' as const }),
      fc.string({ minLength: 1, maxLength: 6 }).map((name) => ({ kind: 'member' as const, name })),
    );
    fc.assert(
      fc.property(fc.array(seg, { minLength: 1, maxLength: 8 }), (segments) => {
        const text = `$${segments.map((s) => (s.kind === 'each' ? '[*]' : `[${JSON.stringify(s.name)}]`)).join('')}`;
        const parsed = parseSelector(text);
        assert.deepEqual(parsed.segments, segments);
        assert.deepEqual(parseSelector(parsed.text), parsed);
      }),
    );
  });

  it('overlap means equal or one inside the other', () => {
    const o = (a: string, b: string) => selectorsOverlap(parseSelector(a), parseSelector(b));
    assert.ok(o('$.a', '$.a.b'));
    assert.ok(o('$.a[*].b', '$.a[*]'));
    assert.ok(o('$.a', '$["a"]'));
    assert.ok(!o('$.a.b', '$.a.c'));
    assert.ok(!o('$.a[*]', '$.a.b'));
  });
});

describe('route patterns', () => {
  it('captures :params percent-decoded and * raw; refuses bad patterns', () => {
    const p = parseRoutePattern('/t/:tenant/files/*');
    assert.deepEqual({ ...matchRoutePattern(p, '/t/ac%20me/files/a/b%2Fc') }, { tenant: 'ac me', '*': 'a/b%2Fc' });
    assert.equal(matchRoutePattern(p, '/t//files/x'), undefined, 'a param is never empty');
    assert.equal(matchRoutePattern(p, '/t/%E0%A4%A/files/x'), undefined, 'bad percent-encoding never matches');
    assert.equal(matchRoutePattern(parseRoutePattern('/a/:id'), '/a/1/2'), undefined);
    assert.deepEqual({ ...matchRoutePattern(parseRoutePattern('/'), '/') }, {});
    for (const bad of ['a', '/a//b', '/:x/:x', '/*/a', '/a b']) assert.throws(() => parseRoutePattern(bad), Error, bad);
  });
});

describe('tenant sources', () => {
  const facts = { peerAddress: '10.1.2.3', headers: { 'x-tenant': 'acme' }, params: { t: 'globex' } };
  const header = { from: 'header' as const, header: 'x-tenant', trustedPeers: new TrustedPeers(['10.0.0.0/8', '::1']) };
  const code = (fn: () => unknown) => {
    try {
      return fn();
    } catch (err) {
      assert.ok(err instanceof KcmError);
      return err.code;
    }
  };

  it('takes the header only from trusted peers (IPv4-mapped included)', () => {
    assert.equal(resolveTenant(header, facts), 'acme');
    assert.equal(resolveTenant(header, { ...facts, peerAddress: '::ffff:10.9.9.9' }), 'acme');
    assert.equal(resolveTenant(header, { ...facts, peerAddress: '::1' }), 'acme');
    assert.equal(
      code(() => resolveTenant(header, { ...facts, peerAddress: '192.168.0.1' })),
      'forbidden',
    );
    assert.equal(
      code(() => resolveTenant(header, { ...facts, headers: {} })),
      'tenant_unresolved',
    );
    assert.equal(
      code(() => resolveTenant(header, { ...facts, headers: { 'x-tenant': ['a', 'b'] } })),
      'tenant_unresolved',
    );
    assert.equal(
      code(() => resolveTenant(header, { ...facts, headers: { 'x-tenant': 'a/b' } })),
      'invalid_tenant_id',
    );
  });

  it('takes the certificate tenant or a path parameter, never falling back', () => {
    assert.equal(
      code(() => resolveTenant({ from: 'cert' }, facts)),
      'unauthenticated',
    );
    assert.equal(resolveTenant({ from: 'cert' }, { ...facts, certificateTenant: 'acme' }), 'acme');
    assert.equal(resolveTenant({ from: 'pathParam', param: 't' }, facts), 'globex');
    assert.equal(
      code(() => resolveTenant({ from: 'pathParam', param: 't' }, { ...facts, params: { t: 'x'.repeat(41) } })),
      'invalid_tenant_id',
    );
  });

  it('trusted peers: IPv6 blocks trust IPv6 peers only, IPv4-mapped blocks and IPv4 blocks trust IPv4 peers in any spelling', () => {
    const uwsMapped = '0000:0000:0000:0000:0000:ffff:0a01:0203'; // 10.1.2.3 as uWS bound to :: reports it
    const cases: [string, Record<string, boolean>][] = [
      ['::/0', { '10.1.2.3': false, [uwsMapped]: false, '2001:db8::1': true, '0:0:0:0:0:0:0:1': true }],
      ['::/64', { '10.1.2.3': false, '::ffff:10.1.2.3': false, '::1': true }],
      ['::ffff:10.0.0.0/104', { '10.1.2.3': true, [uwsMapped]: true, '11.0.0.1': false, '2001:db8::1': false }],
      ['::ffff:0:0/96', { '10.1.2.3': true, '11.0.0.1': true, '::1': false }],
      ['10.0.0.0/8', { '10.1.2.3': true, '::ffff:a01:203': true, [uwsMapped]: true, '::1': false }],
      ['2001:db8::/32', { '2001:DB8::1': true, '2001:db9::1': false, '10.1.2.3': false }],
    ];
    for (const [entry, peers] of cases) {
      const trusted = new TrustedPeers([entry]);
      for (const [peer, want] of Object.entries(peers)) assert.equal(trusted.has(peer), want, `${entry} ∋ ${peer}`);
    }
  });

  it('refuses malformed peer entries', () => {
    for (const bad of ['host.example', '10.0.0.0/33', '10.0.0.1/8/1', '::1/129', ''])
      assert.throws(() => new TrustedPeers([bad]), Error, bad);
  });
});

describe('position-tracking JSON reader', () => {
  it('reads what JSON.parse reads', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 5 }), fc.boolean(), (v, pretty) => {
        const text = JSON.stringify(v, null, pretty ? 2 : undefined);
        assert.deepEqual(plainValue(readPositionedJson(text)), JSON.parse(text));
      }),
      { numRuns: 300 },
    );
  });

  it('gives line and column of values, keys and errors', () => {
    const root = readPositionedJson('{\n  "a": [1,\n    true]\n}');
    assert.equal(root.kind, 'object');
    if (root.kind !== 'object') return;
    const entry = root.entries[0];
    assert.deepEqual(entry?.keyPos, { line: 2, column: 3 });
    assert.deepEqual(entry?.value.pos, { line: 2, column: 8 });
    if (entry?.value.kind !== 'array') assert.fail('array');
    assert.deepEqual(entry.value.items[1]?.pos, { line: 3, column: 5 });
    for (const [text, line, column] of [
      ['{"a": 1,}', 1, 9],
      ['[1 2]', 1, 4],
      ['{"a": 01}', 1, 7],
      ['"\n"', 1, 2],
      ['{"a":1}\n  x', 2, 3],
      [`${'['.repeat(40)}${']'.repeat(40)}`, 1, 34],
    ] as const) {
      assert.throws(
        () => readPositionedJson(text),
        (err: unknown) => {
          assert.ok(err instanceof JsonSyntaxError);
          assert.deepEqual(err.pos, { line, column }, text);
          return true;
        },
      );
    }
  });
});
