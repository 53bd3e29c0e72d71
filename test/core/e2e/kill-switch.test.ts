/**
 * The kill switch end to end on real processes (issues 4 and 7): a real
 * `kcm core` child (production mode: TLS admin API with mTLS and the policy,
 * the edge API, Shamir seal, SQLite in a temp dir), driven by the real `kcm`
 * CLI with operator certificates, and two gateway CoreEdgeClients:
 * edge A (policy: tenant-a only) and edge B (policy: tenant-a and tenant-b).
 *
 * Tenant revoke is a four-eyes request: the proposer's own approval is
 * refused (approval_self), a second operator's executes it. From the Core's
 * commit of `tenant.revoked` to both edges having destroyed tenant-a's key
 * handles and acknowledged must take < 1 s (measured on the Core's clock by
 * the event's createdAt and each edge's ackedAt, GET /v1/events/:seq/acks).
 * Leases of tenant-a then get 410, also after the Core is SIGKILLed and
 * restarted on the same data dir (and unsealed again); tenant-b keeps working.
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { testPolicyDocument } from '../../../common/src/authz/test-policy.ts';
import type { KcmError } from '../../../common/src/errors.ts';
import type { WireEvent } from '../../../common/src/format/edge-wire.ts';
import { type IssuedCert, makeTestPki, TEST_IDS, type TestPki } from '../../../common/src/pki/index.ts';
import { CoreEdgeClient } from '../../../gateway/src/keys/core-edge-client.ts';
import { defaultCrypto } from '../../../native/index.ts';
import { type MtlsReply, mtlsRequest } from '../../support/mtls-request.ts';
import { h2Connect, h2Json } from '../edge/edge-fixtures.ts';
import { CoreChild, cleanupAll, kcm, sleep, tempDir } from './core-process.ts';

after(cleanupAll);

const A = TEST_IDS.tenantA;
const B = TEST_IDS.tenantB;

const until = async (cond: () => boolean, ms: number, what: string) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(1);
  }
};

describe('kill switch on real processes: kcm core + kcm CLI + two edge clients', () => {
  let dir: string;
  let pki: TestPki;
  let config: Record<string, unknown>;
  let core: CoreChild;
  let edgeUrl = '';
  let shares: string[] = [];
  const clients: CoreEdgeClient[] = [];

  /** `kcm …` against the running Core as `who` (certificate + key + CA flags). */
  const cli = (who: IssuedCert, ...args: string[]) =>
    kcm([...args, '--addr', core.url, '--cert', who.certFile, '--key', who.keyFile, '--ca', pki.ca.certFile]);
  const admin = (who: IssuedCert, method: string, path: string, body?: unknown): Promise<MtlsReply> =>
    mtlsRequest({
      url: `${core.url}${path}`,
      method,
      ...(method === 'GET' ? {} : { body: body ?? {} }),
      ca: pki.ca.certPem,
      client: who,
    });
  /** One lease request straight to the Core's edge API (no client cache, no tombstone). */
  const rawLease = async (who: IssuedCert, tenant: string) => {
    const s = await h2Connect(edgeUrl, pki.ca.certPem, who);
    try {
      const r = await h2Json(s, 'POST', '/v1/edge/lease', { tenant, service: 'orders' });
      return { status: r.status, code: r.body?.error?.code as string | undefined };
    } finally {
      s.close();
    }
  };

  const startCore = async (edgePort: number, adminPort: number) => {
    config = { ...config, edge: { ...(config.edge as object), port: edgePort } };
    core = await CoreChild.start({
      dataDir: join(dir, 'data'),
      config,
      // Production mode: no KCM_DEV; the admin API is TLS with mTLS and the policy.
      env: { KCM_DEV: undefined, KCM_LISTEN: `127.0.0.1:${adminPort}` },
    });
    assert.match(core.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    await until(() => /edge API on https:\/\/\S+/.test(core.output), 10_000, 'the edge API to listen');
    edgeUrl = (/edge API on (https:\/\/\S+)/.exec(core.output) as RegExpExecArray)[1] as string;
  };

  const unseal = async () => {
    for (const share of shares) {
      const r = await admin(pki.operator, 'POST', '/v1/sys/unseal', { share });
      assert.equal(r.status, 200, `unseal: ${JSON.stringify(r.body?.error)}`);
    }
    const s = await admin(pki.auditor, 'GET', '/v1/sys/status');
    assert.equal(s.body.state, 'active');
  };

  before(async () => {
    dir = tempDir('okcm-kill-switch-');
    pki = makeTestPki(join(dir, 'pki'));
    mkdirSync(join(dir, 'data'));
    // The test policy, with edge B also allowed tenant A: both edges must apply its revocation.
    const doc = testPolicyDocument(pki);
    for (const b of doc.identities as { name: string; tenants: unknown }[]) {
      if (b.name === 'edge-b') b.tenants = [A, B];
    }
    const policy = join(dir, 'authz.json');
    writeFileSync(policy, JSON.stringify(doc));
    const tls = { certFile: pki.core.certFile, keyFile: pki.core.keyFile, caFile: pki.ca.certFile };
    config = {
      listen: { host: '127.0.0.1', port: 0, tls },
      authzPolicy: policy,
      edge: { host: '127.0.0.1', port: 0, tls },
    };
    await startCore(0, 0);
  });

  after(async () => {
    for (const c of clients) await c.close();
  });

  it('revoke A through four eyes: both edges drop A within 1 s of the commit; A stays revoked across a restart; B unaffected', async (t) => {
    const t0 = performance.now();
    // Initialise (Shamir 2-of-3) through the mTLS admin API; the shares stay in this process.
    const init = await admin(pki.operator, 'POST', '/v1/sys/init', { threshold: 2, shares: 3 });
    assert.equal(init.status, 200);
    shares = init.body.shares.map((s: { payload: string }) => s.payload).slice(0, 2);
    assert.equal((await admin(pki.operator, 'POST', '/v1/sys/init/confirm')).status, 200);

    // Tenants and service keys with the CLI, as operator 1.
    for (const id of [A, B]) {
      const created = await cli(pki.operator, 'tenant', 'create', id);
      assert.equal(created.code, 0, created.err);
      assert.equal(JSON.parse(created.out).state, 'ACTIVE');
      const key = await cli(pki.operator, 'key', 'create', id, 'orders');
      assert.equal(key.code, 0, key.err);
    }

    // Two gateways' clients.
    const applied: { client: string; seq: number; at: number }[] = [];
    const acked: { client: string; seq: number; at: number }[] = [];
    const edge = (name: string, cert: IssuedCert) => {
      const c = new CoreEdgeClient({
        url: edgeUrl,
        tls: { cert: cert.certPem, key: cert.keyPem, ca: pki.ca.certPem },
        crypto: defaultCrypto(),
        backoff: { baseMs: 50, maxMs: 500 },
        log: () => {},
        onEvent: (e: WireEvent) => {
          if (e.type === 'tenant.revoked' && e.tenant === A) applied.push({ client: name, seq: e.seq, at: Date.now() });
        },
        onAck: (seq) => acked.push({ client: name, seq, at: Date.now() }),
      });
      clients.push(c);
      return c;
    };
    const edgeA = edge('edge-a', pki.edgeA);
    const edgeB = edge('edge-b', pki.edgeB);
    const keyA1 = await edgeA.encryptionKey(A, 'orders');
    const keyA2 = await edgeB.encryptionKey(A, 'orders');
    const keyB2 = await edgeB.encryptionKey(B, 'orders');
    await assert.rejects(
      edgeA.encryptionKey(B, 'orders'),
      (e: KcmError) => e.code === 'lease_refused' && e.status === 403,
      'edge A is not allowed tenant B',
    );
    edgeA.start();
    edgeB.start();
    await until(() => edgeA.subscribed && edgeB.subscribed, 5_000, 'both event subscriptions');

    // The kill switch: a proposal, not an action.
    const revoke = await cli(pki.operator, 'tenant', 'revoke', A, '--reason', 'kill switch e2e');
    assert.equal(revoke.code, 0, revoke.err);
    const approval = JSON.parse(revoke.out).approval;
    assert.equal(approval.state, 'PENDING');
    assert.equal(approval.operation, 'tenant.revoke');
    assert.equal(approval.proposer, TEST_IDS.operator.cn);
    assert.equal((await rawLease(pki.edgeA, A)).status, 200, 'nothing revoked before the quorum');
    assert.equal(keyA1.key.info().destroyed, false);

    const self = await cli(pki.operator, 'approval', 'approve', approval.id);
    assert.equal(self.code, 1, 'the proposer cannot approve');
    assert.match(self.err, /403 approval_self/);
    assert.equal(applied.length, 0);

    const approveStart = performance.now();
    const approved = await cli(pki.operator2, 'approval', 'approve', approval.id);
    const approveDone = performance.now();
    assert.equal(approved.code, 0, approved.err);
    const executed = JSON.parse(approved.out);
    assert.equal(executed.state, 'EXECUTED');
    assert.equal(executed.outcome, 'succeeded');
    assert.deepEqual(executed.result, { tenant: A, state: 'REVOKED', revokedAt: executed.result.revokedAt });

    // Both edges apply and acknowledge the revocation.
    await until(
      () => new Set(acked.filter((a) => a.seq >= (applied[0]?.seq ?? Infinity)).map((a) => a.client)).size === 2,
      5_000,
      'both edges to ack',
    );
    const ackedAfterCli = performance.now() - approveDone;
    const seq = applied[0]?.seq as number;
    assert.ok(applied.every((a) => a.seq === seq));
    assert.ok(keyA1.key.info().destroyed, "edge A destroyed tenant A's handle");
    assert.ok(keyA2.key.info().destroyed, "edge B destroyed tenant A's handle");
    assert.equal(keyB2.key.info().destroyed, false, "edge B keeps tenant B's handle");

    // The operator's view, on the Core's clock: commit (event createdAt) → each edge's stored ack.
    const view = await admin(pki.auditor, 'GET', `/v1/events/${seq}/acks`);
    assert.equal(view.status, 200);
    assert.equal(view.body.event.type, 'tenant.revoked');
    assert.equal(view.body.event.tenant, A);
    assert.deepEqual(
      view.body.acked.map((e: { edgeId: string }) => e.edgeId),
      [TEST_IDS.edgeA.cn, TEST_IDS.edgeB.cn],
    );
    assert.deepEqual(view.body.pending, []);
    const commitToAck = view.body.acked.map((e: { ackedAt: number }) => e.ackedAt - view.body.event.createdAt);
    const worst = Math.max(...commitToAck);
    t.diagnostic(
      `revocation latency: Core commit → ack stored: ${commitToAck.map((ms: number) => `${ms} ms`).join(', ')}` +
        ` (edge-a, edge-b); commit → applied in this process: ${applied.map((a) => `${a.client} ${a.at - view.body.event.createdAt} ms`).join(', ')}` +
        `; approve CLI ran ${(approveDone - approveStart).toFixed(0)} ms, both acked ${ackedAfterCli.toFixed(0)} ms after it exited`,
    );
    assert.ok(worst >= 0 && worst < 1000, `commit → both edges acked in ${worst} ms`);

    // The Core refuses tenant A from now on; tenant B goes on.
    assert.deepEqual(await rawLease(pki.edgeA, A), { status: 410, code: 'tenant_revoked' });
    assert.deepEqual(await rawLease(pki.edgeB, A), { status: 410, code: 'tenant_revoked' });
    await assert.rejects(edgeA.encryptionKey(A, 'orders'), (e: KcmError) => e.code === 'tenant_revoked');
    const freshB = await edgeB.refresh(B, 'orders');
    assert.ok(freshB.active, 'tenant B still leases');

    // SIGKILL and restart on the same data dir, addresses and certificates; unseal again.
    const adminPort = Number(new URL(core.url).port);
    const edgePort = Number(new URL(edgeUrl).port);
    const killed = await core.kill();
    assert.equal(killed.signal, 'SIGKILL');
    await startCore(edgePort, adminPort);
    assert.equal((await admin(pki.auditor, 'GET', '/v1/sys/status')).body.state, 'sealed');
    assert.deepEqual(await rawLease(pki.edgeB, B), { status: 503, code: 'sealed' });
    await unseal();
    assert.deepEqual(await rawLease(pki.edgeA, A), { status: 410, code: 'tenant_revoked' });
    assert.deepEqual(await rawLease(pki.edgeB, A), { status: 410, code: 'tenant_revoked' });
    const shown = await cli(pki.auditor, 'tenant', 'show', A);
    assert.equal(shown.code, 0, shown.err);
    assert.equal(JSON.parse(shown.out).state, 'REVOKED');
    const showB = await cli(pki.auditor, 'tenant', 'show', B);
    assert.equal(JSON.parse(showB.out).state, 'ACTIVE');
    assert.deepEqual(await rawLease(pki.edgeB, B), { status: 200, code: undefined });
    // The running client reconnects to the restarted Core and leases B again; A stays refused.
    const againB = await edgeB.refresh(B, 'orders');
    assert.ok(againB.active);
    await assert.rejects(edgeB.refresh(A, 'orders'), (e: KcmError) => e.code === 'tenant_revoked' && e.status === 410);
    const after = await admin(pki.auditor, 'GET', `/v1/events/${seq}/acks`);
    assert.deepEqual(
      after.body.acked.map((e: { edgeId: string }) => e.edgeId),
      [TEST_IDS.edgeA.cn, TEST_IDS.edgeB.cn],
      'the acks survive the restart',
    );
    t.diagnostic(
      `whole scenario ${(performance.now() - t0).toFixed(0)} ms; Core restart to listening ${core.startMs.toFixed(0)} ms`,
    );
  });
});
