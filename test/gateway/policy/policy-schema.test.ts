/** Policy files: the example compiles; every schema mistake names file:line:column and the field path. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { KcmError } from '../../../common/src/errors.ts';
import { loadPolicies } from '../../../gateway/src/policy/policy-loader.ts';
import { compilePolicy } from '../../../gateway/src/policy/policy-schema.ts';

const POLICIES = new URL('../../../policies/', import.meta.url).pathname;

/** A valid policy, as text with one item per line, so tests can predict line numbers. */
function policyText(route: Record<string, unknown>, top: Record<string, unknown> = {}): string {
  const doc = {
    id: 'p',
    key: 'k',
    defaults: { tenant: { from: 'cert' }, readers: { roles: ['r'], others: 'mask' } },
    routes: [{ method: 'POST', path: '/x', upstream: 'http://127.0.0.1:9', ...route }],
    ...top,
  };
  return JSON.stringify(doc, null, 2);
}

function lineOf(text: string, needle: string): number {
  const i = text.indexOf(needle);
  assert.ok(i >= 0, `fixture lacks ${needle}`);
  return text.slice(0, i).split('\n').length;
}

function schemaError(text: string, file = 'policies/t.routes.json'): string {
  try {
    compilePolicy(file, text);
  } catch (err) {
    assert.ok(err instanceof KcmError, String(err));
    assert.equal(err.code, 'invalid_policy');
    return err.detail ?? '';
  }
  assert.fail('the policy compiled');
}

describe('policy schema', () => {
  it('compiles the example file and routes its requests', () => {
    const set = loadPolicies(POLICIES, { examples: true });
    const byId = set.match('GET', '/orders/o-17');
    assert.equal(byId.route.pattern.text, '/orders/:orderId');
    assert.deepEqual({ ...byId.params }, { orderId: 'o-17' });
    assert.equal(byId.route.upstream.name, 'orders-app');
    assert.equal(byId.route.upstream.url.href, 'http://127.0.0.1:8081/');
    assert.equal(byId.route.limits.maxDepth, 32);
    assert.equal(byId.route.response.length, 4);
    const list = set.match('GET', '/orders');
    assert.equal(list.route.response[0]?.selector.text, '$.orders[*].card.number');
    const profile = set.match('PATCH', '/t/acme/profiles/p1');
    assert.equal(profile.route.tenant.from, 'pathParam');
    assert.equal(profile.route.limits.bodyBytes, 65536);
    assert.equal(profile.route.limits.maxFields, 500, 'unset limits come from defaults');
    assert.throws(() => set.match('DELETE', '/orders'), { code: 'method_not_allowed' });
    assert.throws(() => set.match('GET', '/nowhere'), { code: 'not_found' });
  });

  it('reads example files only when asked', () => {
    assert.throws(() => loadPolicies(POLICIES), { code: 'invalid_config' });
  });

  it('names file, line, column and field path of each mistake, all in one error', () => {
    const text = policyText({
      metod: 'GET',
      request: [{ select: '$.a..b' }, { select: '$.c', onMissing: 'ignore' }],
    });
    const msg = schemaError(text);
    const lines = msg.split('\n');
    assert.equal(lines.length, 3, msg);
    assert.match(
      lines[0] ?? '',
      new RegExp(`^policies/t\\.routes\\.json:${lineOf(text, '"metod"')}:7: routes\\[0\\]\\.metod: unknown field`),
    );
    assert.match(
      lines[1] ?? '',
      new RegExp(`:${lineOf(text, '"$.a..b"')}:\\d+: routes\\[0\\]\\.request\\[0\\]\\.select: bad selector`),
    );
    assert.match(
      lines[2] ?? '',
      new RegExp(
        `:${lineOf(text, '"ignore"')}:\\d+: routes\\[0\\]\\.request\\[1\\]\\.onMissing: must be one of "error", "skip"`,
      ),
    );
  });

  it('reports JSON syntax errors and duplicate keys at their position', () => {
    assert.match(
      schemaError('{\n  "id": "p",\n  "key": "k",,\n}'),
      /^policies\/t\.routes\.json:3:14: \(top level\): JSON syntax: expected a "quoted" key/,
    );
    assert.match(schemaError('{\n  "id": "p",\n  "id": "q"\n}'), /:3:3: .*duplicate key "id"/);
    assert.match(schemaError('[]'), /:1:1: \(top level\): expected an object, found an array/);
  });

  const cases: [string, string, Record<string, unknown>, Record<string, unknown>?][] = [
    ['missing method', 'routes[0]: missing required field "method"', { method: undefined }],
    ['a bad path', 'routes[0].path: bad path pattern: "*" may only be the last segment', { path: '/a/*/b' }],
    ['an unknown upstream name', 'routes[0].upstream: no upstream named "nope"', { upstream: 'nope' }],
    ['an upstream with credentials', 'routes[0].upstream: must not hold credentials', { upstream: 'http://u:p@h/' }],
    [
      'a tenant path param absent from the path',
      'routes[0].tenant: the route path has no :t',
      { tenant: { from: 'pathParam', param: 't' } },
    ],
    [
      'an empty trusted peer list',
      'routes[0].tenant.trustedPeers: list at least one peer',
      { tenant: { from: 'header', header: 'x-t', trustedPeers: [] } },
    ],
    [
      'a bad trusted peer',
      'routes[0].tenant.trustedPeers: "10.0.0.0/33" has a bad prefix length',
      { tenant: { from: 'header', header: 'x-t', trustedPeers: ['10.0.0.0/33'] } },
    ],
    [
      'a limit out of range',
      'routes[0].limits.maxDepth: must be an integer from 1 to 512',
      { limits: { maxDepth: 0 } },
    ],
    [
      'overlapping selectors',
      'routes[0].request[1]: $.a.b overlaps $.a (rule 0)',
      { request: [{ select: '$.a' }, { select: '$.a.b' }] },
    ],
    [
      'a record id that is encrypted',
      'routes[0].request[0]: encrypts the record id $.id of another rule',
      { request: [{ select: '$.id' }, { select: '$.x', recordId: { select: '$.id' } }] },
    ],
    [
      'a record id with other wildcards',
      'routes[0].request[0].recordId.select: its [*] segments must be those of the field $.a[*].x',
      { request: [{ select: '$.a[*].x', recordId: { select: '$.b[*].id' } }] },
    ],
    [
      'a record id path param absent from the path',
      'routes[0].request[0].recordId.pathParam: the route path has no :id',
      { request: [{ select: '$.x', recordId: { pathParam: 'id' } }] },
    ],
    [
      'a response rule with no readers anywhere',
      'routes[0].response[0]: no "readers"',
      { response: [{ select: '$.x' }] },
      { defaults: { tenant: { from: 'cert' } } },
    ],
    ['a policy id with bad characters', 'id: must be 1-64 characters of A-Z a-z 0-9 - . _ ~', {}, { id: 'a b' }],
    ['a route without a tenant', 'routes[0]: no "tenant" here or in "defaults"', {}, { defaults: {} }],
  ];
  for (const [what, expected, route, top] of cases) {
    it(`refuses ${what}`, () => {
      const msg = schemaError(policyText(route, top));
      assert.ok(msg.includes(expected), `${msg}\n  lacks: ${expected}`);
      assert.match(msg, /^policies\/t\.routes\.json:\d+:\d+: /);
    });
  }

  it('refuses one logical field bound two ways in one policy', () => {
    const text = JSON.stringify({
      id: 'p',
      key: 'k',
      defaults: { tenant: { from: 'cert' }, readers: { others: 'mask' } },
      routes: [
        { method: 'POST', path: '/a', upstream: 'http://h', request: [{ select: '$.x', field: 'f' }] },
        {
          method: 'GET',
          path: '/a',
          upstream: 'http://h',
          response: [{ select: '$.y', field: 'f', nonString: 'stringify' }],
        },
      ],
    });
    assert.match(
      schemaError(text),
      /field "f" is bound as nonString=stringify, recordId unset at .* but as nonString=error, recordId unset/,
    );
  });
});

describe('policy loader', () => {
  it('reads *.routes.json only and refuses a reused policy id or a route routed twice', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kcm-policies-'));
    try {
      writeFileSync(join(dir, 'a.routes.json'), policyText({}));
      writeFileSync(join(dir, 'authz.json'), '{"not": "a route policy"}');
      assert.equal(loadPolicies(dir).routes.length, 1);
      writeFileSync(join(dir, 'b.routes.json'), policyText({}, { id: 'p' }));
      assert.throws(
        () => loadPolicies(dir),
        (err: KcmError) => /b\.routes\.json: policy id "p" is already used by .*a\.routes\.json/.test(err.detail ?? ''),
      );
      writeFileSync(
        join(dir, 'b.routes.json'),
        policyText({ path: '/:other' }, { id: 'q' }).replace('"/:other"', '"/x"'),
      );
      assert.throws(
        () => loadPolicies(dir),
        (err: KcmError) =>
          /b\.routes\.json:\d+:\d+: POST \/x is already routed at .*a\.routes\.json/.test(err.detail ?? ''),
      );
      writeFileSync(join(dir, 'b.routes.json'), '{"id": 1}');
      assert.throws(
        () => loadPolicies(dir),
        (err: KcmError) => /b\.routes\.json:1:8: id: expected a string/.test(err.detail ?? ''),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('prefers literal over :param over *, and an exact method over *', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kcm-policies-'));
    try {
      const routes = [
        { method: '*', path: '/a/*', upstream: 'http://h/1' },
        { method: 'GET', path: '/a/:id', upstream: 'http://h/2' },
        { method: 'GET', path: '/a/me', upstream: 'http://h/3' },
        { method: '*', path: '/a/me', upstream: 'http://h/4' },
        { method: 'GET', path: '/a', upstream: 'http://h/5' },
      ];
      writeFileSync(
        join(dir, 'a.routes.json'),
        JSON.stringify({ id: 'p', key: 'k', defaults: { tenant: { from: 'cert' } }, routes }),
      );
      const set = loadPolicies(dir);
      const up = (m: string, p: string) => set.match(m, p).route.upstream.url.pathname;
      assert.equal(up('GET', '/a/me'), '/3');
      assert.equal(up('POST', '/a/me'), '/4');
      assert.equal(up('GET', '/a/17'), '/2');
      assert.equal(up('POST', '/a/17'), '/1');
      assert.equal(up('GET', '/a'), '/5');
      assert.equal(up('POST', '/a'), '/1', '* matches zero segments');
      assert.equal(set.match('GET', '/a/x/y').params['*'], 'x/y');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
