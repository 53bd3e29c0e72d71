/**
 * Request paths in canonical form and lenient literal matching
 * (gateway/src/policy/route-pattern.ts): every spelling an upstream could
 * normalise to a route's path is either refused by the route stage's check
 * or matched by that route, and the lenient match is no wider than
 * "percent-decoded, lower-cased, one trailing slash".
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { KcmError } from '../../../common/src/errors.ts';
import { PolicySet } from '../../../gateway/src/policy/policy-loader.ts';
import { compilePolicy } from '../../../gateway/src/policy/policy-schema.ts';
import {
  isCanonicalPath,
  matchesExactly,
  matchRoutePattern,
  parseRoutePattern,
  patternShape,
} from '../../../gateway/src/policy/route-pattern.ts';

const REFUSED: readonly (readonly [string, string])[] = [
  ['', 'empty'],
  ['orders', 'no leading slash'],
  ['*', 'asterisk-form'],
  ['http://x/orders', 'absolute-form'],
  ['\\orders', 'backslash first'],
  ['/orders\\', 'raw backslash'],
  ['/static\\..\\orders', 'raw backslashes'],
  ['/orders%2f', '%2f'],
  ['/static/..%2Forders', '%2F'],
  ['/a%5cb', '%5c'],
  ['/a%5Cb', '%5C'],
  ['/a%00b', '%00'],
  ['/a%0Ab', 'escaped LF'],
  ['/a%1fb', 'escaped control'],
  ['/a%7Fb', 'escaped DEL'],
  ['/orders/%ff', 'an escaped byte that is not UTF-8 (a :param could not capture it)'],
  ['/orders/%C3', 'a truncated UTF-8 sequence'],
  ['/orders/%C0%AF', 'an overlong UTF-8 form of /'],
  ['/orders/%ED%A0%80', 'a UTF-8 surrogate'],
  ['/a\u0000b', 'raw NUL'],
  ['/a\tb', 'raw tab'],
  ['/a b', 'raw space'],
  ['/a\u007fb', 'raw DEL'],
  ['/ord\u00e9rs', 'raw non-ASCII'],
  ['/.', 'dot'],
  ['/..', 'dot dot'],
  ['/./orders', 'dot segment'],
  ['/static/../orders', 'dot-dot segment'],
  ['/static/%2e%2e/orders', '%2e%2e'],
  ['/static/%2E%2E/orders', '%2E%2E'],
  ['/static/.%2e/orders', '.%2e'],
  ['/static/%2E./orders', '%2E.'],
  ['/%2e/orders', '%2e'],
  ['/orders/.', 'final dot'],
  ['/orders/..', 'final dot dot'],
  ['/orders/%2e%2e', 'final %2e%2e'],
  ['/a//b', 'empty segment'],
  ['//orders', 'leading empty segment'],
  ['/orders//', 'two trailing slashes'],
  ['//', 'only slashes'],
  ['/orders;x=1', 'matrix parameter'],
  ['/orders;', 'bare semicolon'],
  ['/a;b/c', 'semicolon inside'],
  ['/orders%3bx', '%3b'],
  ['/orders#x', 'raw fragment'],
  ['/a%', 'truncated escape'],
  ['/a%2', 'truncated escape'],
  ['/a%zz', 'not hex'],
  ['/a%g0', 'not hex'],
  ['/a%%30', 'percent then escape'],
  ['/ord%2565rs', 'a double-encoded escape: an upstream decoding twice reads /orders'],
  ['/static/%252e%252e/orders', 'double-encoded dots'],
  ['/a%2525', '%25 then 25'],
  ['/a%252F', 'a double-encoded slash'],
];

const ACCEPTED = [
  '/',
  '/orders',
  '/orders/',
  '/Orders',
  '/%6Frders',
  '/a/.../b',
  '/a/.b',
  '/a/..b',
  '/a/b.',
  '/a/%2e%2e%2e',
  '/a%20b',
  '/caf%C3%A9',
  '/a%25b',
  '/a%25zz',
  '/files/100%25',
  '/a%25/b',
  '/a%23b',
  '/a%3Fb',
  "/a/b~c-d_e!$&'()*+,=@:x",
  '/t/acme/files/x.json',
];

describe('isCanonicalPath', () => {
  it('refuses every non-canonical spelling', () => {
    for (const [path, why] of REFUSED) assert.equal(isCanonicalPath(path), false, `${JSON.stringify(path)}: ${why}`);
  });

  it('accepts plain paths, one trailing slash, case and well-formed escapes', () => {
    for (const path of ACCEPTED) assert.equal(isCanonicalPath(path), true, JSON.stringify(path));
  });
});

describe('lenient literal matching', () => {
  const orders = parseRoutePattern('/orders');

  it('matches a literal case-insensitively, percent-decoded, with one trailing slash', () => {
    for (const path of [
      '/orders',
      '/Orders',
      '/ORDERS',
      '/%6Frders',
      '/%6frders',
      '/orders/',
      '/OrDeRs/',
      '/%4F%52DERS',
    ]) {
      assert.deepEqual({ ...matchRoutePattern(orders, path) }, {}, path);
    }
    for (const path of ['/orders/x', '/order', '/ordersx', '/orders%20', '/', '/orders//', '/orders%2f', 'orders']) {
      assert.equal(matchRoutePattern(orders, path), undefined, path);
    }
  });

  it('keeps :param captures percent-decoded in their case and * captures raw', () => {
    const byId = parseRoutePattern('/orders/:id');
    assert.deepEqual({ ...matchRoutePattern(byId, '/ORDERS/AbC%20d/') }, { id: 'AbC d' });
    assert.equal(matchRoutePattern(byId, '/orders/'), undefined, 'a param is never empty');
    const files = parseRoutePattern('/static/*');
    assert.deepEqual({ ...matchRoutePattern(files, '/Static/A%2Fb/') }, { '*': 'A%2Fb/' });
    assert.deepEqual({ ...matchRoutePattern(files, '/static/') }, { '*': '' });
    assert.deepEqual({ ...matchRoutePattern(files, '/STATIC') }, { '*': '' });
    assert.deepEqual({ ...matchRoutePattern(parseRoutePattern('/'), '/') }, {});
  });

  it('folds the pattern the same way: escapes, sub-delimiters, %25 and UTF-8 escapes', () => {
    const m = (pattern: string, path: string) => matchRoutePattern(parseRoutePattern(pattern), path) !== undefined;
    assert.ok(m('/%6Frders', '/orders'));
    assert.ok(m('/a!b', '/a%21b'));
    assert.ok(m('/a!b', '/A%21B'));
    assert.ok(m('/caf%C3%A9', '/CAF%c3%a9'));
    assert.ok(m('/a%25b', '/a%25b'));
    assert.ok(!m('/a%25b', '/a%2525b'), '%25 is not decoded twice');
  });

  it('refuses patterns no checked path could match', () => {
    for (const bad of [
      '/a/./b',
      '/a/../b',
      '/%2e',
      '/x/%2E%2e',
      '/a;b',
      '/a%2fb',
      '/a%5C',
      '/a%',
      '/a%zz',
      '/a%00',
      '/a%2541', // a double-encoded escape: refused in request paths
    ]) {
      assert.throws(() => parseRoutePattern(bad), Error, bad);
    }
  });

  it('tells an exact spelling from a lenient one', () => {
    const byId = parseRoutePattern('/orders/:id');
    assert.ok(matchesExactly(orders, '/orders'));
    assert.ok(matchesExactly(byId, '/orders/AbC'));
    for (const path of ['/Orders', '/%6Frders', '/orders/']) assert.ok(!matchesExactly(orders, path), path);
    assert.ok(!matchesExactly(byId, '/orders/7/'));
  });
});

describe('routes of one shape under lenient matching', () => {
  const policy = (id: string, routes: { method: string; path: string }[]) =>
    compilePolicy(
      `${id}.routes.json`,
      JSON.stringify({
        id,
        key: 'k',
        defaults: { tenant: { from: 'cert' } },
        routes: routes.map((r) => ({ ...r, upstream: 'http://127.0.0.1:9' })),
      }),
    );

  it('gives /Orders, /orders and /%6Frders one shape', () => {
    const shapes = ['/Orders/:a', '/orders/:b', '/%6Frders/:c', '/ORDERS/:d'].map((p) =>
      patternShape(parseRoutePattern(p)),
    );
    assert.deepEqual(new Set(shapes), new Set(['/orders/:']));
  });

  it('refuses two routes of one method whose patterns differ only in case or escapes, at start-up', () => {
    for (const [a, b] of [
      ['/orders', '/Orders'],
      ['/orders/:id', '/%6Frders/:x'],
      ['/a!b/*', '/a%21B/*'],
    ] as const) {
      assert.throws(
        () => new PolicySet([policy('p', [{ method: 'POST', path: a }]), policy('q', [{ method: 'POST', path: b }])]),
        (err: unknown) =>
          err instanceof KcmError &&
          err.code === 'invalid_policy' &&
          (err.detail ?? '').includes(`POST ${b} is already routed at p.routes.json`),
        `${a} vs ${b}`,
      );
    }
    const set = new PolicySet([
      policy('p', [
        { method: 'POST', path: '/orders' },
        { method: 'GET', path: '/Orders' },
      ]),
    ]);
    assert.equal(set.routes.length, 2, 'other methods may share a shape');
  });
});

describe('PolicySet.match: a lenient match that an exact upstream reads as another route', () => {
  const card = [{ select: '$.card', field: 'card' }];
  const set = (routes: { method: string; path: string; request?: unknown; response?: unknown }[]) =>
    new PolicySet([
      compilePolicy(
        'p.routes.json',
        JSON.stringify({
          id: 'p',
          key: 'k',
          defaults: { tenant: { from: 'cert' }, readers: { identities: ['billing'], others: 'mask' } },
          routes: routes.map((r) => ({ ...r, upstream: 'http://127.0.0.1:9' })),
        }),
      ),
    ]);
  const ambiguous = (err: unknown) =>
    err instanceof KcmError && err.code === 'bad_request' && err.status === 400 && err.detail === 'path is ambiguous';
  const chosen = (s: PolicySet, method: string, path: string) => s.match(method, path).route.pattern.text;

  const orders = set([
    { method: 'PUT', path: '/orders/:id', request: card },
    { method: 'PUT', path: '/orders/import' },
    { method: 'GET', path: '/orders/:id', response: card },
    { method: 'GET', path: '/orders/new' },
    { method: '*', path: '/*' },
  ]);

  it('refuses when the exact reading is a route with request or response rules', () => {
    for (const [method, path] of [
      ['PUT', '/orders/IMPORT'],
      ['PUT', '/orders/%69mport'],
      ['PUT', '/orders/Import'],
      ['PUT', '/orders/IMPORT/'],
      ['GET', '/orders/NEW'],
      ['GET', '/orders/n%65w/'],
    ] as const) {
      assert.throws(() => orders.match(method, path), ambiguous, `${method} ${path}`);
    }
  });

  it('keeps the lenient choice when no other route with rules reads the path exactly', () => {
    assert.equal(chosen(orders, 'PUT', '/orders/import'), '/orders/import', 'exact: no second look');
    assert.equal(chosen(orders, 'PUT', '/orders/import/'), '/orders/import', 'its own route without the slash');
    assert.equal(chosen(orders, 'PUT', '/Orders/Import'), '/orders/import', 'only `/*` (no rules) reads it exactly');
    assert.equal(chosen(orders, 'PUT', '/ORDERS/7'), '/orders/:id');
    assert.equal(chosen(orders, 'POST', '/orders/IMPORT'), '/*', 'other methods are not compared');
    // A rule-less exact reading is never a reason to refuse: the lenient route has the rules.
    const withRules = set([
      { method: 'PUT', path: '/orders/:id' },
      { method: 'PUT', path: '/orders/import', request: card },
    ]);
    assert.equal(chosen(withRules, 'PUT', '/orders/IMPORT'), '/orders/import');
  });

  it('compares routes of any compatible method, `*` included, and any rules', () => {
    const star = set([
      { method: 'PUT', path: '/orders/import' },
      { method: '*', path: '/orders/IMPORT', response: card },
    ]);
    assert.equal(chosen(star, 'PUT', '/orders/import'), '/orders/import');
    assert.throws(() => star.match('PUT', '/orders/IMPORT/'), ambiguous);
    const both = set([
      { method: 'PUT', path: '/orders/:id', request: card },
      { method: 'PUT', path: '/orders/import', request: [{ select: '$.other', field: 'other' }] },
    ]);
    assert.throws(() => both.match('PUT', '/orders/IMPORT'), ambiguous, 'the chosen route has other rules');
  });

  it('still answers 404 and 405 before any ambiguity', () => {
    const s = set([
      { method: 'PUT', path: '/orders/:id', request: card },
      { method: 'PUT', path: '/orders/import' },
    ]);
    assert.throws(
      () => s.match('GET', '/orders/IMPORT'),
      (e: unknown) => e instanceof KcmError && e.code === 'method_not_allowed',
    );
    assert.throws(
      () => s.match('PUT', '/other'),
      (e: unknown) => e instanceof KcmError && e.code === 'not_found',
    );
  });
});

/** How upstreams read a path before routing it; undefined when they would refuse it. */
/** The pathname WHATWG URL reads (dot segments, `%2e` and `\` resolved; `//host` is an authority). */
const whatwg = (s: string | undefined): string | undefined => {
  if (s === undefined) return undefined;
  try {
    return new URL(s, 'http://x').pathname;
  } catch {
    return undefined;
  }
};
const decode = (s: string | undefined): string | undefined => {
  if (s === undefined) return undefined;
  try {
    return decodeURIComponent(s);
  } catch {
    return undefined;
  }
};
const relaxed = (s: string | undefined): string | undefined => s?.toLowerCase().replace(/(.)\/$/, '$1');
const UPSTREAM_READINGS: readonly (readonly [string, (p: string) => string | undefined])[] = [
  ['WHATWG URL', whatwg],
  ['WHATWG URL, then percent-decoded (Go ServeMux)', (p) => decode(whatwg(p))],
  ['percent-decoded, then WHATWG URL', (p) => whatwg(decode(p))],
  ['case-insensitive, trailing slash ignored (Express)', (p) => relaxed(p)],
  ['WHATWG URL, decoded, case-insensitive, trailing slash ignored', (p) => relaxed(decode(whatwg(p)))],
  ['matrix parameters stripped, then decoded (Tomcat, Spring)', (p) => decode(whatwg(p.replace(/;[^/]*/g, '')))],
];

const SEGMENT_CHARS = ['a', 'b', 'o', 'r', 'd', 's', '1', '-', '.', '_', '~'];
const literal = fc
  .array(fc.constantFrom(...SEGMENT_CHARS), { minLength: 1, maxLength: 4 })
  .map((cs) => cs.join(''))
  .filter((s) => s !== '.' && s !== '..');

/** One char of a literal as a client may spell it: as is, upper-cased, or percent-encoded (either hex case). */
const spelling = (c: string) =>
  fc.constantFrom(
    c,
    c.toUpperCase(),
    `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
    `%${c.charCodeAt(0).toString(16)}`,
  );
const spelled = (seg: string) => fc.tuple(...[...seg].map(spelling)).map((cs) => cs.join(''));

const PREFIXES = ['', '', '', '/', '/.', '/x/..', '/x/%2e%2e', '/x/.%2E', '\\x\\..', '/x/..%2f', '/x;y/..'];
const SEPARATORS = ['/', '/', '/', '/', '//', '\\', '%2f', '%5C', '/./', '/%2e/', '/x/../', '/x/%2E%2e/', '/x;y/../'];
const SUFFIXES = ['', '', '', '/', '//', '/.', '/..', '/x/..', ';x', '%2f', '\\', '#x', '%00', '/%2e'];

/** A literal pattern and a path that spells it with odd case, escapes, dot and empty segments, `\`, `;`, `#`. */
const patternAndPath = fc.array(literal, { minLength: 1, maxLength: 3 }).chain((segs) =>
  fc
    .tuple(
      fc.constantFrom(...PREFIXES),
      fc.tuple(...segs.map(spelled)),
      fc.array(fc.constantFrom(...SEPARATORS), { minLength: segs.length, maxLength: segs.length }),
      fc.constantFrom(...SUFFIXES),
    )
    .map(([prefix, parts, seps, suffix]) => ({
      pattern: `/${segs.join('/')}`,
      path: prefix + parts.map((p, i) => (i === 0 ? '/' : (seps[i] as string)) + p).join('') + suffix,
    })),
);

describe('property: no upstream reading of an accepted path escapes its route', () => {
  it('a path an upstream reads as the route path is refused or matched by that route', () => {
    let refused = 0;
    let matched = 0;
    fc.assert(
      fc.property(patternAndPath, ({ pattern, path }) => {
        const p = parseRoutePattern(pattern);
        for (const [name, read] of UPSTREAM_READINGS) {
          if (read(path) !== pattern) continue;
          if (!isCanonicalPath(path)) refused++;
          else if (matchRoutePattern(p, path)) matched++;
          else
            assert.fail(`${JSON.stringify(path)} reads as ${pattern} under "${name}" but is accepted and not matched`);
        }
      }),
      { numRuns: 3000 },
    );
    assert.ok(refused > 100 && matched > 100, `both outcomes seen: refused ${refused}, matched ${matched}`);
  });

  it('an accepted path a literal route matches is that route path once decoded, lower-cased, without a trailing /', () => {
    fc.assert(
      fc.property(patternAndPath, ({ pattern, path }) => {
        if (!isCanonicalPath(path) || !matchRoutePattern(parseRoutePattern(pattern), path)) return;
        assert.equal(relaxed(decode(whatwg(path))), pattern, path);
      }),
      { numRuns: 3000 },
    );
  });
});
