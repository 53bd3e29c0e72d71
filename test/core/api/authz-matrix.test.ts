/**
 * Every Core admin API endpoint × every identity class, over real mTLS
 * (startCore on a temp SQLite, certificates from makeTestPki, the test
 * policy): operator, auditor, edge of tenant A, edge of tenant B, app, no
 * certificate, and a foreign-CA client bearing operator-1's CN. Denied calls
 * get 403 `forbidden`, change nothing and leave an audit record; the
 * certificate-less, foreign, expired, not-yet-valid and serverAuth-only
 * clients are refused at the TLS layer with a log line. Also: the start-up
 * refusals of insecure configurations.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { writeTestPolicy } from '../../../common/src/authz/test-policy.ts';
import { KcmError } from '../../../common/src/errors.ts';
import { makeTestPki, type TestPki } from '../../../common/src/pki/index.ts';
import { startAdminServer } from '../../../core/src/api/admin-server.ts';
import { MemoryAuditSink } from '../../../core/src/audit/audit-sink.ts';
import { coreConfig } from '../../../core/src/config.ts';
import { type CoreService, startCore } from '../../../core/src/core-service.ts';
import { type ClientCert, type MtlsReply, mtlsRequest } from '../../support/mtls-request.ts';

type Cls = 'operator' | 'auditor' | 'edgeA' | 'edgeB' | 'app' | 'none' | 'foreign';
const CLASSES: Cls[] = ['auditor', 'edgeA', 'edgeB', 'app', 'none', 'foreign', 'operator'];

interface Endpoint {
  method: string;
  path: string;
  body?: unknown;
  /** Classes allowed past authorization (besides the operator). */
  alsoAllowed?: Cls[];
}

// Order matters: the operator's call runs last for each endpoint and moves the Core along
// (init → confirm → IVK work → seal → unseal), so every handler is reached in a real state.
const ENDPOINTS: Endpoint[] = [
  { method: 'GET', path: '/healthz', alsoAllowed: ['auditor', 'edgeA', 'edgeB', 'app'] },
  { method: 'GET', path: '/readyz', alsoAllowed: ['auditor', 'edgeA', 'edgeB', 'app'] },
  { method: 'GET', path: '/v1/sys/status', alsoAllowed: ['auditor'] },
  { method: 'POST', path: '/v1/sys/init', body: { threshold: 2, shares: 3 } },
  { method: 'POST', path: '/v1/sys/init/confirm' },
  { method: 'GET', path: '/v1/ivk', alsoAllowed: ['auditor'] },
  { method: 'POST', path: '/v1/ivk/rotate' },
  { method: 'POST', path: '/v1/ivk/1/revoke' },
  { method: 'DELETE', path: '/v1/ivk/1' },
  { method: 'POST', path: '/v1/sys/seal' },
  { method: 'POST', path: '/v1/sys/unseal', body: { share: 'SHARE0' } },
];

describe('admin API authorization matrix (mTLS)', () => {
  let dir: string;
  let pki: TestPki;
  let core: CoreService;
  const audit = new MemoryAuditSink();
  const logs: string[] = [];
  let shares: { payload: string }[] = [];

  const clientOf = (cls: Cls): ClientCert | null =>
    cls === 'none' ? null : cls === 'foreign' ? pki.foreignClient : pki[cls];
  const call = (cls: Cls | ClientCert | null, e: Endpoint): Promise<MtlsReply> => {
    const body = e.body && JSON.stringify(e.body).includes('SHARE0') ? { share: shares[0]?.payload } : e.body;
    return mtlsRequest({
      url: `${core.admin.url}${e.path}`,
      method: e.method,
      ...(e.method === 'GET' ? {} : { body: body ?? {} }),
      ca: pki.ca.certPem,
      client: typeof cls === 'string' ? clientOf(cls) : cls,
    });
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kcm-authz-matrix-'));
    pki = makeTestPki(join(dir, 'pki'));
    const policy = writeTestPolicy(join(dir, 'authz.json'), pki);
    const config = coreConfig(
      {
        dataDir: join(dir, 'data'),
        listen: {
          host: '127.0.0.1',
          port: 0,
          tls: { certFile: pki.core.certFile, keyFile: pki.core.keyFile, caFile: pki.ca.certFile },
        },
        authzPolicy: policy,
      },
      {},
    );
    core = await startCore(config, { audit, log: (m) => logs.push(m) });
    assert.match(core.admin.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  });

  after(async () => {
    await core.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers each endpoint × identity class as the policy says', async (t) => {
    const rows: string[] = [];
    for (const e of ENDPOINTS) {
      for (const cls of CLASSES) {
        const stateBefore = core.root.state;
        const auditBefore = audit.events.length;
        const r = await call(cls, e);
        const label = `${e.method} ${e.path} as ${cls}: ${r.status} ${r.body?.error?.code ?? r.error ?? ''}`;
        rows.push(label);
        if (cls === 'none' || cls === 'foreign') {
          assert.equal(r.status, 0, `${label}: refused at the TLS layer`);
          assert.equal(core.root.state, stateBefore, `${label}: nothing changed`);
        } else if (cls === 'operator' || e.alsoAllowed?.includes(cls)) {
          assert.ok(![0, 401, 403].includes(r.status), `${label}: should pass authorization`);
          if (e.path === '/v1/sys/init') shares = r.body.shares;
        } else {
          assert.deepEqual([r.status, r.body?.error?.code], [403, 'forbidden'], label);
          assert.equal(core.root.state, stateBefore, `${label}: nothing changed`);
          const rec = audit.events.slice(auditBefore).find((a) => a.outcome === 'failure');
          assert.ok(rec, `${label}: audited`);
          assert.equal(rec.resource, `${e.method} ${e.path}`);
          assert.match(rec.reason ?? '', /^forbidden: /);
          assert.ok(rec.actor && rec.actor !== 'anonymous', `${label}: actor named`);
        }
      }
    }
    for (const row of rows) t.diagnostic(row);
    assert.equal(rows.length, ENDPOINTS.length * CLASSES.length);
    assert.equal(shares.length, 3, 'the operator initialised the Core');
    assert.equal(core.root.state, 'unsealing', 'the operator sealed it and gave the first of two shares');
    const refusals = audit.events.filter((a) => a.action === 'tls.refused');
    assert.equal(refusals.length, ENDPOINTS.length * 2, 'every TLS refusal audited');
    assert.ok(logs.some((l) => /tls: refused client .*no client certificate \[NO_CERTIFICATE\]/.test(l)));
    assert.ok(logs.some((l) => /tls: refused client .*issuer CN=Foreign Test CA.*not issued by a trusted CA/.test(l)));
  });

  it('refuses expired, not-yet-valid and serverAuth-only clients at the TLS layer, with a log line', async () => {
    const cases: Array<[ClientCert, RegExp]> = [
      [pki.expiredClient, /tls: refused client .*CN=operator-1.*: certificate expired on .* \[CERT_HAS_EXPIRED\]/],
      [pki.notYetValidClient, /tls: refused client .*: certificate not valid before .* \[CERT_NOT_YET_VALID\]/],
      [pki.serverOnlyAsClient, /tls: refused client .*: extended key usage lacks clientAuth \[INVALID_PURPOSE\]/],
    ];
    for (const [client, line] of cases) {
      logs.length = 0;
      const r = await call(client, { method: 'GET', path: '/v1/sys/status' });
      assert.equal(r.status, 0);
      assert.ok(
        logs.some((l) => line.test(l)),
        `${line} in:\n${logs.join('\n')}`,
      );
    }
  });

  it('echoes the correlation id and gives it to the audit record of a denial', async () => {
    const r = await mtlsRequest({
      url: `${core.admin.url}/v1/sys/seal`,
      method: 'POST',
      body: {},
      ca: pki.ca.certPem,
      client: pki.auditor,
    });
    assert.equal(r.status, 403);
    const last = audit.events.at(-1);
    assert.equal(last?.actor, 'auditor-1');
    assert.match(last?.correlationId ?? '', /^[0-9a-f]{32}$/);
  });
});

describe('admin API start-up refusals', () => {
  let dir: string;
  let pki: TestPki;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'kcm-admin-refuse-'));
    pki = makeTestPki(dir);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const refuses = async (fn: () => Promise<unknown>, code: string, re: RegExp) =>
    assert.rejects(fn, (e) => e instanceof KcmError && e.code === code && re.test(e.message));
  const root = {} as never;

  it('refuses plain HTTP outside development mode, TLS without a CA or a policy, and a bad certificate', async () => {
    await refuses(
      () => startAdminServer(root, { host: '127.0.0.1', port: 0 }, () => {}),
      'invalid_config',
      /development mode only/,
    );
    const tls = { certFile: pki.core.certFile, keyFile: pki.core.keyFile };
    await refuses(
      () => startAdminServer(root, { host: '127.0.0.1', port: 0, tls }, () => {}),
      'invalid_config',
      /caFile is required/,
    );
    const mtls = { ...tls, caFile: pki.ca.certFile };
    await refuses(
      () => startAdminServer(root, { host: '127.0.0.1', port: 0, tls: mtls }, () => {}),
      'invalid_config',
      /authzPolicy is required/,
    );
    const policy = writeTestPolicy(join(dir, 'authz.json'), pki);
    const expired = {
      certFile: pki.expiredClient.certFile,
      keyFile: pki.expiredClient.keyFile,
      caFile: pki.ca.certFile,
    };
    await refuses(
      () => startAdminServer(root, { host: '127.0.0.1', port: 0, tls: expired }, () => {}, { authzPolicy: policy }),
      'invalid_certificate',
      /expired\.crt.*expired on/,
    );
    const clientCert = { certFile: pki.operator.certFile, keyFile: pki.operator.keyFile, caFile: pki.ca.certFile };
    await refuses(
      () => startAdminServer(root, { host: '127.0.0.1', port: 0, tls: clientCert }, () => {}, { authzPolicy: policy }),
      'invalid_certificate',
      /lacks serverAuth/,
    );
  });
});
