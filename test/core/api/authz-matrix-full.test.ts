/**
 * Every endpoint of a fully wired Core × every identity class, over real
 * mTLS (issue 7). The admin endpoints are the admin server's own route table
 * (`core.admin.routes`), so an endpoint added without an expectation here
 * fails the test; the edge endpoints are EDGE_PATHS, likewise.
 *
 * The Core: startCore with a TLS admin listener, the edge API, the test
 * policy plus `operator-a` (an operator bound to tenant-a only), SQLite in a
 * temp dir, Shamir init through the API. Classes: operator (tenants "*"),
 * operator-a, auditor, edge of tenant A, edge of tenant B, app, no
 * certificate, and a foreign-CA client bearing operator-1's CN.
 *
 * Admin API: no certificate / foreign CA → refused at the TLS layer; edges and
 * the app → 403 `forbidden` (audited); the auditor passes only read routes;
 * operator-a passes non-tenant routes and routes of tenant-a, never tenant-b
 * nor all-tenant routes; the operator passes everything.
 * Edge API: edge A may lease/report usage for tenant-a only, edge B for
 * tenant-b only; operators, the auditor and the app are refused 403 on every
 * edge route; no certificate / foreign CA are refused at the handshake.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { type ClientHttp2Session, connect, type IncomingHttpHeaders } from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { testPolicyDocument } from '../../../common/src/authz/test-policy.ts';
import { EDGE_PATHS } from '../../../common/src/format/edge-wire.ts';
import { type IssuedCert, issueCert, makeTestPki, TEST_IDS, type TestPki } from '../../../common/src/pki/index.ts';
import { MemoryAuditSink } from '../../../core/src/audit/audit-sink.ts';
import { coreConfig } from '../../../core/src/config.ts';
import { type CoreService, startCore } from '../../../core/src/core-service.ts';
import { type ClientCert, type MtlsReply, mtlsRequest } from '../../support/mtls-request.ts';

type Cls = 'operator' | 'operatorA' | 'auditor' | 'edgeA' | 'edgeB' | 'app' | 'none' | 'foreign';
/** Refused classes first, the operators last: their calls move the Core along. */
const CLASSES: Cls[] = ['none', 'foreign', 'app', 'edgeA', 'edgeB', 'auditor', 'operatorA', 'operator'];

const A = TEST_IDS.tenantA;
const B = TEST_IDS.tenantB;

/**
 * Who may call a route: `operator` = operators only, `reader` = operators and
 * the auditor. Scope: `global` (not tenant-scoped: any operator binding),
 * `all` (tenant-scoped without a tenant: needs tenants "*"), `tenant` (the
 * `:tenant` of the path: operator-a only for tenant-a; run for A and B).
 */
interface Expect {
  who: 'operator' | 'reader';
  scope: 'global' | 'all' | 'tenant';
  /** Values of the path parameters other than :tenant. */
  params?: Record<string, string>;
  body?: (cls: Cls) => unknown;
  /** Run order (default 0, then route-table order): sealing goes last. */
  phase?: number;
}

let seq = 0;
let unsealShares: string[] = [];
let approvalId = '';

/** One entry per admin route ("METHOD /path" exactly as the router has it). */
const ADMIN: Record<string, Expect> = {
  'GET /v1/sys/status': { who: 'reader', scope: 'global' },
  'POST /v1/sys/init': { who: 'operator', scope: 'global', body: () => ({ threshold: 2, shares: 3 }) },
  'POST /v1/sys/init/confirm': { who: 'operator', scope: 'global' },
  'POST /v1/sys/unseal': {
    who: 'operator',
    scope: 'global',
    phase: 2,
    body: (cls) => ({ share: cls === 'operatorA' || cls === 'operator' ? unsealShares.shift() : 'x' }),
  },
  'POST /v1/sys/seal': { who: 'operator', scope: 'global', phase: 1 },
  'POST /v1/sys/shares/rekey': { who: 'operator', scope: 'global', body: () => ({ threshold: 2, shares: 3 }) },
  'GET /v1/ivk': { who: 'reader', scope: 'global' },
  'POST /v1/ivk/rotate': { who: 'operator', scope: 'global' },
  'POST /v1/ivk/:version/revoke': { who: 'operator', scope: 'global', params: { version: '999' } },
  'DELETE /v1/ivk/:version': { who: 'operator', scope: 'global', params: { version: '999' } },
  'GET /v1/tenants': { who: 'reader', scope: 'all' },
  'POST /v1/tenants': { who: 'operator', scope: 'all', body: () => ({ id: `matrix-${++seq}` }) },
  'GET /v1/tenants/:tenant': { who: 'reader', scope: 'tenant' },
  'POST /v1/tenants/:tenant/suspend': { who: 'operator', scope: 'tenant', body: () => ({ reason: 'matrix' }) },
  'POST /v1/tenants/:tenant/resume': { who: 'operator', scope: 'tenant' },
  'POST /v1/tenants/:tenant/revoke': { who: 'operator', scope: 'tenant', body: () => ({ reason: 'matrix' }) },
  'POST /v1/tenants/:tenant/l1': {
    who: 'operator',
    scope: 'tenant',
    body: () => ({ l1: { provider: 'none-configured', keyId: 'k' }, keyMode: 'byok' }),
  },
  'POST /v1/tenants/:tenant/l1/unlink': { who: 'operator', scope: 'tenant' },
  'POST /v1/tenants/:tenant/l1/probe': { who: 'operator', scope: 'tenant' },
  'POST /v1/tenants/:tenant/prewarm': { who: 'operator', scope: 'tenant' },
  'GET /v1/tenants/:tenant/keys': { who: 'reader', scope: 'tenant' },
  'POST /v1/tenants/:tenant/keys': { who: 'operator', scope: 'tenant', body: () => ({ service: `svc-${++seq}` }) },
  'GET /v1/tenants/:tenant/keys/:service': { who: 'reader', scope: 'tenant', params: { service: 'orders' } },
  'POST /v1/tenants/:tenant/keys/:service/rotate': { who: 'operator', scope: 'tenant', params: { service: 'orders' } },
  'POST /v1/tenants/:tenant/keys/:service/settings': {
    who: 'operator',
    scope: 'tenant',
    params: { service: 'orders' },
    body: () => ({ rotatePeriodMs: 7 * 86_400_000 }),
  },
  'POST /v1/tenants/:tenant/keys/:service/min-decrypt': {
    who: 'operator',
    scope: 'tenant',
    params: { service: 'orders' },
    body: () => ({ version: 1 }),
  },
  'POST /v1/tenants/:tenant/keys/:service/versions/:version/revoke': {
    who: 'operator',
    scope: 'tenant',
    params: { service: 'orders', version: '1' },
  },
  'POST /v1/approvals': {
    who: 'operator',
    scope: 'global',
    body: () => ({ operation: 'ivk.rotate_emergency', params: {} }),
  },
  'GET /v1/approvals': { who: 'reader', scope: 'global' },
  'GET /v1/approvals/state/:state': { who: 'reader', scope: 'global', params: { state: 'PENDING' } },
  'GET /v1/approvals/:id': { who: 'reader', scope: 'global' },
  'POST /v1/approvals/:id/approve': { who: 'operator', scope: 'global' },
  'POST /v1/approvals/:id/reject': { who: 'operator', scope: 'global', body: () => ({ reason: 'matrix' }) },
  'POST /v1/approvals/:id/cancel': { who: 'operator', scope: 'global' },
  'GET /v1/edges': { who: 'reader', scope: 'global' },
  'GET /v1/events': { who: 'reader', scope: 'global' },
  'GET /v1/events/:seq/acks': { who: 'reader', scope: 'global', params: { seq: '1' } },
  'GET /v1/leases': { who: 'reader', scope: 'all' },
  'GET /v1/tenants/:tenant/leases': { who: 'reader', scope: 'tenant' },
};

/** Whether `cls` should pass authorization for a route `e` concerning `tenant` (undefined: none in the path). */
function adminAllowed(cls: Cls, e: Expect, tenant: string | undefined): boolean {
  switch (cls) {
    case 'operator':
      return true;
    case 'auditor':
      return e.who === 'reader';
    case 'operatorA':
      return e.scope === 'global' || (e.scope === 'tenant' && tenant === A);
    default:
      return false;
  }
}

type EdgeOutcome = 'ok' | 'lease_refused' | 'forbidden';
interface EdgeExpect {
  method: 'GET' | 'POST';
  /** Tenant-scoped routes run once per tenant. */
  tenantScoped: boolean;
  body?: (tenant: string) => unknown;
}

let latestSeq = 0;
const activeVersion: Record<string, number> = {};
const EDGE: Record<string, EdgeExpect> = {
  [EDGE_PATHS.lease]: { method: 'POST', tenantScoped: true, body: (t) => ({ tenant: t, service: 'orders' }) },
  [EDGE_PATHS.events]: { method: 'GET', tenantScoped: false },
  [EDGE_PATHS.ack]: { method: 'POST', tenantScoped: false, body: () => ({ seq: latestSeq }) },
  [EDGE_PATHS.usage]: {
    method: 'POST',
    tenantScoped: true,
    body: (t) => ({ tenant: t, service: 'orders', version: activeVersion[t], count: 1 }),
  },
};

function edgeOutcome(cls: Cls, tenantScoped: boolean, tenant: string | undefined): EdgeOutcome {
  if (cls !== 'edgeA' && cls !== 'edgeB') return 'forbidden';
  if (!tenantScoped) return 'ok';
  return (cls === 'edgeA' ? A : B) === tenant ? 'ok' : 'lease_refused';
}

/** One h2 request; for the event stream, resolves at the first NDJSON line and closes the stream. */
function h2Call(
  s: ClientHttp2Session,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve) => {
    const text = body === undefined ? '' : JSON.stringify(body);
    const req = s.request({
      ':method': method,
      ':path': path,
      ...(text ? { 'content-type': 'application/json' } : {}),
    });
    let status = 0;
    let data = '';
    const done = (b: unknown) => {
      resolve({ status, body: b });
      req.close();
    };
    req.setEncoding('utf8');
    req.on('response', (h: IncomingHttpHeaders) => {
      status = Number(h[':status']);
    });
    req.on('data', (c: string) => {
      data += c;
      const nl = data.indexOf('\n');
      if (status === 200 && path === EDGE_PATHS.events && nl >= 0) done(JSON.parse(data.slice(0, nl)));
    });
    req.on('error', () => resolve({ status: 0, body: null }));
    req.on('end', () => done(data ? JSON.parse(data) : null));
    req.end(text || undefined);
  });
}

/** Connects with `client` and runs one request; a refused handshake or reset stream is status 0. */
async function edgeRequest(
  url: string,
  ca: string,
  client: ClientCert | null,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: unknown }> {
  const s = connect(url, { ca, ...(client ? { cert: client.certPem, key: client.keyPem } : {}) });
  s.on('error', () => {});
  try {
    const ok = await new Promise<boolean>((resolve) => {
      s.once('connect', () => resolve(true));
      s.once('error', () => resolve(false));
      s.once('close', () => resolve(false));
    });
    // TLS 1.3 reports a refused client certificate after the client's handshake completes: the stream resets.
    return ok ? await h2Call(s, method, path, body) : { status: 0, body: null };
  } finally {
    s.destroy();
  }
}

describe('authorization matrix: every Core endpoint × identity class (mTLS)', () => {
  let dir: string;
  let pki: TestPki;
  let operatorA: IssuedCert;
  let core: CoreService;
  const audit = new MemoryAuditSink();
  const logs: string[] = [];

  const clientOf = (cls: Cls): ClientCert | null =>
    cls === 'none' ? null : cls === 'foreign' ? pki.foreignClient : cls === 'operatorA' ? operatorA : pki[cls];
  const admin = (cls: Cls | ClientCert, method: string, path: string, body?: unknown): Promise<MtlsReply> =>
    mtlsRequest({
      url: `${core.admin.url}${path}`,
      method,
      ...(method === 'GET' ? {} : { body: body ?? {} }),
      ca: pki.ca.certPem,
      client: typeof cls === 'string' ? clientOf(cls) : cls,
    });
  const ok = async (cls: Cls | ClientCert, method: string, path: string, body?: unknown) => {
    const r = await admin(cls, method, path, body);
    assert.ok(r.status >= 200 && r.status < 300, `${method} ${path}: ${r.status} ${JSON.stringify(r.body?.error)}`);
    return r.body;
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kcm-authz-full-'));
    pki = makeTestPki(join(dir, 'pki'));
    operatorA = issueCert(pki.ca, {
      kind: 'client',
      cn: 'operator-a',
      sans: ['URI:spiffe://openkcm.test/operator/operator-a'],
      name: 'operator-a',
    });
    const doc = testPolicyDocument(pki);
    (doc.identities as unknown[]).push({
      name: 'operator-a',
      match: { cn: 'operator-a' },
      roles: ['operator'],
      tenants: [A],
    });
    const policy = join(dir, 'authz.json');
    writeFileSync(policy, JSON.stringify(doc));
    const tls = { certFile: pki.core.certFile, keyFile: pki.core.keyFile, caFile: pki.ca.certFile };
    const config = coreConfig(
      {
        dataDir: join(dir, 'data'),
        listen: { host: '127.0.0.1', port: 0, tls },
        authzPolicy: policy,
        edge: { host: '127.0.0.1', port: 0, tls },
      },
      {},
    );
    core = await startCore(config, { audit, log: (m) => logs.push(m) });
    // Initialise and populate through the API: tenants A and B with service `orders`, and a
    // pending approval proposed by operator-2 (so operator-1 and operator-a may approve it).
    const init = await ok('operator', 'POST', '/v1/sys/init', { threshold: 2, shares: 3 });
    unsealShares = init.shares.map((s: { payload: string }) => s.payload).slice(0, 2);
    await ok('operator', 'POST', '/v1/sys/init/confirm');
    for (const t of [A, B]) {
      await ok('operator', 'POST', '/v1/tenants', { id: t });
      await ok('operator', 'POST', `/v1/tenants/${t}/keys`, { service: 'orders' });
    }
    const proposed = await ok(pki.operator2, 'POST', '/v1/approvals', {
      operation: 'ivk.rotate_emergency',
      params: {},
    });
    approvalId = proposed.id;
  });

  after(async () => {
    await core?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('derives the admin endpoints from the router and has an expectation for each (no extras)', () => {
    const table = core.admin.routes.map((r) => `${r.method} ${r.path}`);
    const missing = table.filter((k) => !(k in ADMIN));
    assert.deepEqual(missing, [], 'routes without an expectation in the matrix');
    const stale = Object.keys(ADMIN).filter((k) => !table.includes(k));
    assert.deepEqual(stale, [], 'expectations for routes that no longer exist');
    assert.equal(new Set(table).size, table.length, 'no duplicate routes');
  });

  it('answers each admin endpoint × identity class as the policy says', async (t) => {
    const calls: { key: string; method: string; path: string; tenant?: string; e: Expect }[] = [];
    for (const r of core.admin.routes) {
      const key = `${r.method} ${r.path}`;
      const e = ADMIN[key];
      assert.ok(e, `${key}: no expectation`);
      const fill = (tenant?: string) =>
        r.path.replace(/:(\w+)/g, (_, name: string) => {
          if (name === 'tenant') return tenant as string;
          if (name === 'id') return approvalId;
          const v = e.params?.[name];
          assert.ok(v, `${key}: no sample value for :${name}`);
          return v;
        });
      if (r.path.includes(':tenant')) {
        assert.equal(e.scope, 'tenant', `${key}: a :tenant route must be scoped by its tenant`);
        for (const tenant of [A, B]) calls.push({ key, method: r.method, path: fill(tenant), tenant, e });
      } else calls.push({ key, method: r.method, path: fill(), e });
    }
    // Stable by phase: sealing and unsealing go last.
    calls.sort((x, y) => (x.e.phase ?? 0) - (y.e.phase ?? 0));
    calls.unshift(
      { key: 'GET /healthz', method: 'GET', path: '/healthz', e: { who: 'reader', scope: 'global' } },
      { key: 'GET /readyz', method: 'GET', path: '/readyz', e: { who: 'reader', scope: 'global' } },
    );
    const rows: string[] = [];
    const counts = { refusedTls: 0, forbidden: 0, allowed: 0 };
    for (const c of calls) {
      for (const cls of CLASSES) {
        const stateBefore = core.root.state;
        const auditBefore = audit.events.length;
        const r = await admin(cls, c.method, c.path, c.e.body?.(cls));
        const label = `${c.method} ${c.path} as ${cls}: ${r.status} ${r.body?.error?.code ?? r.error ?? ''}`;
        rows.push(label);
        const authzRefusal = audit.events
          .slice(auditBefore)
          .find((a) => a.resource === `${c.method} ${c.path}` && /^(forbidden|unauthenticated): /.test(a.reason ?? ''));
        // /healthz and /readyz answer any verified certificate (no route, no action).
        const isProbe = c.path === '/healthz' || c.path === '/readyz';
        if (cls === 'none' || cls === 'foreign') {
          assert.equal(r.status, 0, `${label}: refused at the TLS layer`);
          assert.equal(core.root.state, stateBefore, `${label}: nothing changed`);
          counts.refusedTls++;
        } else if (isProbe || adminAllowed(cls, c.e, c.tenant)) {
          assert.ok(![0, 401, 403].includes(r.status), `${label}: should pass authorization`);
          assert.equal(authzRefusal, undefined, `${label}: no authorization refusal audited`);
          counts.allowed++;
        } else {
          assert.deepEqual([r.status, r.body?.error?.code], [403, 'forbidden'], label);
          assert.equal(core.root.state, stateBefore, `${label}: nothing changed`);
          assert.ok(authzRefusal, `${label}: the refusal is audited`);
          assert.match(authzRefusal.reason ?? '', /^forbidden: /);
          assert.ok(authzRefusal.actor && authzRefusal.actor !== 'anonymous', `${label}: actor named`);
          counts.forbidden++;
        }
      }
    }
    for (const row of rows) t.diagnostic(row);
    t.diagnostic(`admin matrix: ${rows.length} calls (${JSON.stringify(counts)})`);
    assert.equal(core.root.state, 'active', 'sealed by the operators, then unsealed with two shares');
    assert.equal(
      audit.events.filter((a) => a.action === 'tls.refused').length,
      calls.length * 2,
      'every TLS refusal audited',
    );
    // Spot checks that the handlers really ran for the allowed callers.
    const approval = await ok('auditor', 'GET', `/v1/approvals/${approvalId}`);
    assert.equal(approval.state, 'EXECUTED', "operator-2's proposal executed by another operator's approval");
    const tenants = await ok('auditor', 'GET', '/v1/tenants');
    const created = tenants.tenants.filter((x: { id: string }) => x.id.startsWith('matrix-'));
    assert.equal(created.length, 1, 'only the all-tenants operator created a tenant');
    const revokes = (await ok('auditor', 'GET', '/v1/approvals')).approvals.filter(
      (x: { operation: string; params: { tenant?: string } }) => x.operation === 'tenant.revoke',
    );
    assert.deepEqual(
      revokes.map((x: { proposer: string; params: { tenant: string } }) => `${x.proposer} ${x.params.tenant}`).sort(),
      [`operator-1 ${A}`, `operator-1 ${B}`, `operator-a ${A}`],
      'revocations only proposed, each by an operator allowed the tenant',
    );
    for (const id of [A, B]) assert.equal((await ok('auditor', 'GET', `/v1/tenants/${id}`)).state, 'ACTIVE');
  });

  it('answers each edge endpoint × identity class: edges per tenant, everyone else refused', async (t) => {
    const edge = core.edge;
    assert.ok(edge, 'the edge API is configured');
    latestSeq = (await ok('auditor', 'GET', '/v1/events')).latestSeq;
    assert.ok(latestSeq > 0, 'the admin matrix produced key events');
    for (const id of [A, B])
      activeVersion[id] = (await ok('auditor', 'GET', `/v1/tenants/${id}/keys/orders`)).activeVersion;
    const paths = Object.values(EDGE_PATHS);
    assert.deepEqual(
      paths.filter((p) => !(p in EDGE)),
      [],
      'edge routes without an expectation',
    );
    const rows: string[] = [];
    const logMark = logs.length;
    const auditMark = audit.events.length;
    let refused = 0;
    let notEdge = 0;
    for (const path of paths) {
      const e = EDGE[path] as EdgeExpect;
      for (const tenant of e.tenantScoped ? [A, B] : [undefined]) {
        for (const cls of CLASSES) {
          const r = await edgeRequest(
            edge.url,
            pki.ca.certPem,
            clientOf(cls),
            e.method,
            path,
            e.body?.(tenant as string),
          );
          const body = r.body as { error?: { code?: string }; kind?: string } | null;
          const label = `${e.method} ${path}${tenant ? ` (${tenant})` : ''} as ${cls}: ${r.status} ${body?.error?.code ?? ''}`;
          rows.push(label);
          if (cls === 'none' || cls === 'foreign') {
            assert.equal(r.status, 0, `${label}: refused at the handshake`);
            refused++;
            continue;
          }
          const want = edgeOutcome(cls, e.tenantScoped, tenant);
          if (want === 'ok') {
            assert.equal(r.status, 200, label);
            if (path === EDGE_PATHS.events) assert.equal(body?.kind, 'hello', label);
          } else {
            assert.deepEqual([r.status, body?.error?.code], [403, want], label);
            if (want === 'forbidden') notEdge++;
          }
        }
      }
    }
    for (const row of rows) t.diagnostic(row);
    t.diagnostic(`edge matrix: ${rows.length} calls`);
    const edgeTlsLogs = () =>
      logs.slice(logMark).filter((l) => /^edge API: tls: (refused client|handshake failed)/.test(l)).length;
    for (let i = 0; i < 100 && edgeTlsLogs() < refused; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(edgeTlsLogs(), refused, 'every handshake refusal logged by the edge API');
    const notEdgeAudits = audit.events
      .slice(auditMark)
      .filter((a) => a.action === 'edge.request' && a.outcome === 'failure' && a.reason?.startsWith('forbidden'));
    assert.equal(notEdgeAudits.length, notEdge, 'every non-edge caller refused and audited');
    // Only the edges ever became edges: refused identities left no edge row and no ack.
    const edges = (await ok('auditor', 'GET', '/v1/edges')).edges.map((x: { edgeId: string }) => x.edgeId).sort();
    assert.deepEqual(edges, [TEST_IDS.edgeA.cn, TEST_IDS.edgeB.cn]);
  });

  it("keeps a tenant-scoped operator to its tenants' approval requests (propose, approve, reject, cancel)", async () => {
    const code = async (cls: Cls | ClientCert, method: string, path: string, body?: unknown) => {
      const r = await admin(cls, method, path, body);
      return `${r.status} ${r.body?.error?.code ?? ''}`.trim();
    };
    // Proposing a revoke of tenant-b through the generic route needs tenant.write on tenant-b.
    assert.equal(
      await code('operatorA', 'POST', '/v1/approvals', { operation: 'tenant.revoke', params: { tenant: B } }),
      '403 forbidden',
    );
    assert.equal(
      (await admin('operatorA', 'POST', '/v1/approvals', { operation: 'tenant.revoke', params: { tenant: A } })).status,
      201,
    );
    // A revoke of tenant-b proposed by operator-2: operator-a may neither approve, reject nor cancel it.
    const b = await ok(pki.operator2, 'POST', '/v1/approvals', { operation: 'tenant.revoke', params: { tenant: B } });
    assert.equal(await code('operatorA', 'POST', `/v1/approvals/${b.id}/approve`), '403 forbidden');
    assert.equal(await code('operatorA', 'POST', `/v1/approvals/${b.id}/reject`, { reason: 'x' }), '403 forbidden');
    assert.equal(await code('operatorA', 'POST', `/v1/approvals/${b.id}/cancel`), '403 forbidden');
    assert.equal((await ok('auditor', 'GET', `/v1/approvals/${b.id}`)).state, 'PENDING');
    // The all-tenants operator may; operator-2 then cancels its own request.
    assert.equal((await ok(pki.operator2, 'POST', `/v1/approvals/${b.id}/cancel`)).state, 'CANCELLED');
    assert.equal((await ok('auditor', 'GET', `/v1/tenants/${B}`)).state, 'ACTIVE');
  });
});
