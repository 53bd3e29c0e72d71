/**
 * The authorization engine against makeTestPki's identities: every action ×
 * identity class × tenant (A, B, none) against an expected table written out
 * by hand; deny by default; the dev loopback operator only when enabled;
 * policy validation naming file and field; reload without restart.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  ACTIONS,
  type Action,
  AuthzEngine,
  parsePolicy,
  ReloadableAuthz,
  testPolicyDocument,
  writeTestPolicy,
} from '../../../common/src/authz/index.ts';
import { KcmError } from '../../../common/src/errors.ts';
import { makeTestPki, TEST_IDS, type TestPki } from '../../../common/src/pki/index.ts';
import { DEV_LOOPBACK_IDENTITY, type Identity, identityOf } from '../../../common/src/tls/index.ts';

const A = TEST_IDS.tenantA;
const B = TEST_IDS.tenantB;

// What each identity class may do: `*` = any tenant and none; `A` = tenant A only; absent = never.
const EXPECTED: Record<string, Partial<Record<Action, '*' | 'A' | 'B'>>> = {
  operator: {
    'sys.read': '*',
    'sys.write': '*',
    'tenant.read': '*',
    'tenant.write': '*',
    'key.read': '*',
    'key.write': '*',
    'audit.read': '*',
    'approval.read': '*',
    'approval.propose': '*',
    'approval.approve': '*',
    'approval.cancel': '*',
  },
  auditor: { 'sys.read': '*', 'tenant.read': '*', 'key.read': '*', 'audit.read': '*', 'approval.read': '*' },
  edgeA: { lease: 'A' },
  edgeB: { lease: 'B' },
  app: { 'crypto.encrypt': 'A', 'crypto.decrypt': 'A' },
};

const UNSCOPED = new Set<Action>([
  'sys.read',
  'sys.write',
  'approval.read',
  'approval.propose',
  'approval.approve',
  'approval.cancel',
]);

function expected(cls: string, action: Action, tenant: string | undefined): boolean {
  const e = EXPECTED[cls]?.[action];
  if (e === undefined) return false;
  if (e === '*') return true;
  if (UNSCOPED.has(action)) return true;
  return tenant === (e === 'A' ? A : B);
}

describe('AuthzEngine', () => {
  let dir: string;
  let pki: TestPki;
  let engine: AuthzEngine;
  let ids: Record<string, Identity>;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'kcm-authz-'));
    pki = makeTestPki(dir);
    engine = new AuthzEngine(parsePolicy(testPolicyDocument(pki), 'test'));
    ids = {
      operator: identityOf(pki.operator.cert),
      operator2: identityOf(pki.operator2.cert),
      auditor: identityOf(pki.auditor.cert),
      edgeA: identityOf(pki.edgeA.cert),
      edgeB: identityOf(pki.edgeB.cert),
      app: identityOf(pki.app.cert),
      core: identityOf(pki.core.cert),
    };
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('decides every action × identity class × tenant as the role table says', () => {
    let checked = 0;
    for (const [cls, id] of Object.entries(ids)) {
      const table = cls === 'operator2' ? 'operator' : cls;
      for (const action of ACTIONS) {
        for (const tenant of [A, B, undefined]) {
          const d = engine.authorize(id, tenant === undefined ? { action } : { action, tenant });
          assert.equal(
            d.allowed,
            expected(table, action, tenant),
            `${cls} ${action} ${tenant ?? '(all)'}: ${d.reason}`,
          );
          checked++;
        }
      }
    }
    assert.equal(checked, 7 * ACTIONS.length * 3);
  });

  it('denies by default: no identity, unknown identity, unknown action, bad tenant id', () => {
    assert.deepEqual(engine.authorize(null, { action: 'sys.read' }), {
      allowed: false,
      reason: 'no verified client identity',
      roles: [],
    });
    const core = engine.authorize(ids.core as Identity, { action: 'sys.read' });
    assert.deepEqual([core.allowed, core.reason], [false, 'identity not in the policy']);
    assert.equal(engine.authorize(ids.operator as Identity, { action: 'sys.nuke' as Action }).allowed, false);
    assert.equal(engine.authorize(ids.edgeA as Identity, { action: 'lease', tenant: 'bad/tenant' }).allowed, false);
    const b = engine.authorize(ids.edgeA as Identity, { action: 'lease', tenant: B });
    assert.deepEqual([b.allowed, b.reason, b.roles], [false, `tenant ${B} not granted`, ['edge']]);
    const all = engine.authorize(ids.edgeA as Identity, { action: 'lease' });
    assert.equal(all.reason, 'lease for all tenants needs tenants "*"');
  });

  it('names the granting binding; matches by CN, URI SAN and fingerprint', () => {
    assert.equal(engine.authorize(ids.operator as Identity, { action: 'sys.write' }).binding, 'operator-1'); // cn
    assert.equal(engine.authorize(ids.operator2 as Identity, { action: 'sys.write' }).binding, 'operator-2'); // uri
    assert.equal(engine.authorize(ids.edgeB as Identity, { action: 'lease', tenant: B }).binding, 'edge-b'); // fingerprint
    // A foreign certificate with operator-1's CN would match by CN: chain verification (tls/) must come first.
    assert.equal(engine.bindingsOf(identityOf(pki.foreignClient.cert)).length, 1);
    // A re-issued edge-b (new key, same CN) is not edge-b: fingerprint bindings are pinned.
    assert.equal(engine.bindingsOf({ ...(ids.edgeB as Identity), fingerprint256: 'AA' }).length, 0);
  });

  it('lists the tenants an identity may act on', () => {
    assert.equal(engine.tenantsFor(ids.operator as Identity, 'key.read'), '*');
    assert.deepEqual(engine.tenantsFor(ids.edgeA as Identity, 'lease'), [A]);
    assert.deepEqual(engine.tenantsFor(ids.app as Identity, 'lease'), []);
    assert.deepEqual(engine.tenantsFor(null, 'lease'), []);
  });

  it('treats the dev loopback caller as an operator only when enabled', () => {
    assert.equal(engine.authorize(DEV_LOOPBACK_IDENTITY, { action: 'sys.read' }).allowed, false);
    const dev = new AuthzEngine(parsePolicy({ version: 1, identities: [] }, 'empty'), { devLoopbackOperator: true });
    const d = dev.authorize(DEV_LOOPBACK_IDENTITY, { action: 'sys.write' });
    assert.deepEqual([d.allowed, d.roles], [true, ['operator']]);
    assert.equal(dev.authorize(DEV_LOOPBACK_IDENTITY, { action: 'crypto.decrypt', tenant: A }).allowed, false);
    // A certificate whose CN is "local-operator" is not the dev loopback caller.
    assert.equal(
      dev.authorize({ ...(ids.operator as Identity), cn: 'local-operator' }, { action: 'sys.read' }).allowed,
      false,
    );
  });
});

describe('policy files', () => {
  const bad: Array<[unknown, RegExp]> = [
    [[], /p\.json: \(top level\) must be an object/],
    [{ version: 2, identities: [] }, /version must be 1/],
    [{ version: 1 }, /identities must be an array/],
    [{ version: 1, identities: [], extra: 1 }, /\(top level\)\.extra is not a known field/],
    [
      { version: 1, identities: [{ match: {}, roles: ['operator'], tenants: '*' }] },
      /identities\[0\]\.match must have exactly one of cn, uri, fingerprint/,
    ],
    [{ version: 1, identities: [{ match: { cn: 'a', uri: 'b' }, roles: ['operator'], tenants: '*' }] }, /exactly one/],
    [
      { version: 1, identities: [{ match: { fingerprint: 'ab:cd' }, roles: ['app'], tenants: ['t'] }] },
      /match\.fingerprint must be a SHA-256/,
    ],
    [
      { version: 1, identities: [{ match: { cn: 'a' }, roles: ['root'], tenants: '*' }] },
      /identities\[0\]\.roles\[0\] must be one of operator, auditor, edge, app/,
    ],
    [{ version: 1, identities: [{ match: { cn: 'a' }, roles: [], tenants: '*' }] }, /roles must be a non-empty array/],
    [
      { version: 1, identities: [{ match: { cn: 'a' }, roles: ['edge'], tenants: '*' }] },
      /tenants "\*" is only for operator and auditor, not edge/,
    ],
    [
      { version: 1, identities: [{ match: { cn: 'a' }, roles: ['app'], tenants: [] }] },
      /must list at least one tenant/,
    ],
    [
      { version: 1, identities: [{ match: { cn: 'a' }, roles: ['app'], tenants: ['ok', 'no way'] }] },
      /identities\[0\]\.tenants\[1\] must be a tenant id/,
    ],
    [
      { version: 1, identities: [{ match: { cn: 'a' }, roles: ['app'], tenants: ['t'], role: 'x' }] },
      /identities\[0\]\.role is not a known field/,
    ],
    [
      {
        version: 1,
        identities: [
          { match: { cn: 'a' }, roles: ['app'], tenants: ['t'] },
          { match: { cn: 'a' }, roles: ['edge'], tenants: ['t'] },
        ],
      },
      /identities\[1\]\.match repeats identities\[0\]\.match \(cn a\)/,
    ],
  ];
  for (const [doc, re] of bad) {
    it(`refuses ${JSON.stringify(doc).slice(0, 90)}`, () => {
      assert.throws(
        () => parsePolicy(doc, 'p.json'),
        (e) => e instanceof KcmError && e.code === 'invalid_policy' && re.test(e.message),
      );
    });
  }

  it('accepts the shipped example policy', async () => {
    const { loadPolicyFile } = await import('../../../common/src/authz/index.ts');
    const p = loadPolicyFile(new URL('../../../policies/authz.example.json', import.meta.url).pathname);
    assert.ok(p.bindings.length >= 4);
    assert.ok(new Set(p.bindings.flatMap((b) => b.roles)).size === 4, 'every role appears in the example');
  });
});

describe('ReloadableAuthz', () => {
  let dir: string;
  let pki: TestPki;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'kcm-authz-reload-'));
    pki = makeTestPki(dir);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('applies a changed policy without a restart and keeps the old one when the new is bad', async () => {
    const file = writeTestPolicy(join(dir, 'authz.json'), pki);
    const logs: string[] = [];
    const authz = new ReloadableAuthz(file, { debounceMs: 30, log: (m) => logs.push(m) });
    try {
      const edgeA = identityOf(pki.edgeA.cert);
      assert.equal(authz.authorize(edgeA, { action: 'lease', tenant: B }).allowed, false);
      const doc = testPolicyDocument(pki) as { identities: Array<{ name: string; tenants: unknown }> };
      (doc.identities.find((i) => i.name === 'edge-a') as { tenants: unknown }).tenants = [A, B];
      writeFileSync(file, JSON.stringify(doc));
      const until = Date.now() + 5000;
      while (authz.version === 1 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      assert.equal(authz.authorize(edgeA, { action: 'lease', tenant: B }).allowed, true);

      writeFileSync(file, '{"version": 1, "identities": [{"match": {"cn": "x"}, "roles": ["god"], "tenants": "*"}]}');
      while (!logs.some((l) => l.includes('kept the current policy')) && Date.now() < until + 5000) {
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.match(
        logs.join('\n'),
        /authz: kept the current policy \(file change\): .*authz\.json: identities\[0\]\.roles\[0\] must be one of/,
      );
      assert.equal(authz.authorize(edgeA, { action: 'lease', tenant: B }).allowed, true, 'old policy still in force');
      assert.equal(authz.version, 2);
    } finally {
      authz.close();
    }
  });

  it('refuses to start on a bad file, naming it', () => {
    const file = join(dir, 'broken.json');
    writeFileSync(file, '{ nope');
    assert.throws(
      () => new ReloadableAuthz(file, { watch: false }),
      (e) =>
        e instanceof KcmError && e.code === 'invalid_policy' && e.message.includes(`${file}: (file) is not valid JSON`),
    );
  });
});
