/**
 * Approvals end to end over mTLS: an HTTPS listener whose routes are
 * approvalRoutes plus a tenant-revoke route wrapped by requireApproval, the
 * caller identity taken from the verified client certificate, and `kcm
 * approval` as two operators (operator-1 proposes, operator-2 approves).
 * Store: SQLite with MACs. The listener here stands in for the admin server
 * until the lead wires these routes into it.
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { TLSSocket } from 'node:tls';
import { main } from '../../../cli/main.ts';
import { KcmError } from '../../../common/src/errors.ts';
import { makeTestPki, type TestPki } from '../../../common/src/pki/test-pki.ts';
import { identityOf } from '../../../common/src/tls/identity.ts';
import { readJson, sendError, sendJson } from '../../../core/src/api/http-json.ts';
import { Router } from '../../../core/src/api/router.ts';
import { approvalRoutes, requireApproval } from '../../../core/src/api/routes/approvals.ts';
import { MemoryAuditSink } from '../../../core/src/audit/audit-sink.ts';
import { ApprovalService } from '../../../core/src/quorum/approval-service.ts';
import { ExecutorRegistry } from '../../../core/src/quorum/executor-registry.ts';
import { IntegrityStore } from '../../../core/src/store/integrity-store.ts';
import { openStore } from '../../../core/src/store/open-store.ts';
import { RecordMac } from '../../../core/src/store/record-mac.ts';
import type { Store } from '../../../core/src/store/store.ts';
import { defaultCrypto } from '../../../native/index.ts';
import { mtlsRequest } from '../../support/mtls-request.ts';

let dir: string;
let pki: TestPki;
let raw: Store;
let server: Server;
let url: string;
const revoked: string[] = [];
const audit = new MemoryAuditSink();

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'okcm-approval-api-'));
  pki = makeTestPki(join(dir, 'pki'));
  raw = await openStore({ kind: 'sqlite', path: join(dir, 'core.db') });
  const store = new IntegrityStore(raw);
  store.setMac(new RecordMac(defaultCrypto().generateKey()));
  const registry = new ExecutorRegistry().register('tenant.revoke', {
    summary: 'revoke a tenant (kill switch)',
    validate: (p: unknown) => {
      const tenant = (p as { tenant?: unknown }).tenant;
      if (typeof tenant !== 'string' || tenant.length === 0) throw new KcmError('invalid_tenant_id');
      return { tenant };
    },
    execute: async ({ tenant }) => {
      revoked.push(tenant);
      return { tenant, state: 'REVOKED' };
    },
  });
  const service = new ApprovalService({ store, registry, audit });
  const router = new Router([
    ...approvalRoutes(service, { mayCancelAny: (id) => id.cn === 'auditor-1' }),
    requireApproval(service, {
      method: 'POST',
      path: '/v1/tenants/:tenant/revoke',
      action: 'tenant.write',
      operation: 'tenant.revoke',
      params: (ctx) => ({ tenant: ctx.params.tenant }),
    }),
  ]);
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    try {
      const cert = (req.socket as TLSSocket).getPeerCertificate();
      const identity = cert?.raw ? identityOf(new X509Certificate(cert.raw)) : null;
      const { route, params } = router.match(req.method ?? 'GET', (req.url ?? '/').split('?')[0] as string);
      const body = route.method === 'GET' ? {} : await readJson(req);
      const correlationId = req.headers['x-correlation-id'];
      const ctx = { body, params, identity, ...(typeof correlationId === 'string' ? { correlationId } : {}) };
      const [status, out] = await route.handler(ctx);
      sendJson(res, status, out);
    } catch (err) {
      sendError(res, err);
    }
  };
  server = createServer(
    { cert: pki.core.certPem, key: pki.core.keyPem, ca: pki.ca.certPem, requestCert: true, rejectUnauthorized: true },
    (req, res) => void handle(req, res),
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `https://localhost:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  await new Promise<void>((r) => {
    server.close(() => r());
    server.closeAllConnections();
  });
  await raw.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Runs `kcm approval …` as the given operator; returns the exit code and the JSON it printed (or stderr). */
async function kcm(as: 'operator' | 'operator2' | 'auditor', ...args: string[]) {
  const who = pki[as];
  const out: string[] = [];
  const err: string[] = [];
  const [log, error] = [console.log, console.error];
  console.log = (s: string) => out.push(s);
  console.error = (s: string) => err.push(s);
  try {
    const code = await main([
      'approval',
      ...args,
      '--addr',
      url,
      '--cert',
      who.certFile,
      '--key',
      who.keyFile,
      '--ca',
      pki.ca.certFile,
    ]);
    // biome-ignore lint/suspicious/noExplicitAny: printed JSON, checked field by field
    return { code, json: out.length > 0 ? (JSON.parse(out.join('\n')) as any) : undefined, stderr: err.join('\n') };
  } finally {
    [console.log, console.error] = [log, error];
  }
}

describe('approvals over the admin API and kcm approval', () => {
  it('operator-1 proposes tenant revoke; their own approval is refused; operator-2 approves; it runs once', async () => {
    const proposed = await kcm('operator', 'propose', 'tenant.revoke', '--params', '{"tenant":"acme"}');
    assert.equal(proposed.code, 0, proposed.stderr);
    assert.equal(proposed.json.state, 'PENDING');
    assert.equal(proposed.json.proposer, 'operator-1');
    const id: string = proposed.json.id;

    const self = await kcm('operator', 'approve', id);
    assert.equal(self.code, 1);
    assert.match(self.stderr, /403 approval_self/);

    const listed = await kcm('operator2', 'list');
    assert.deepEqual(
      listed.json.approvals.map((a: { id: string }) => a.id),
      [id],
    );
    assert.deepEqual(listed.json.operations, [
      { operation: 'tenant.revoke', summary: 'revoke a tenant (kill switch)', required: 2 },
    ]);

    const done = await kcm('operator2', 'approve', id);
    assert.equal(done.code, 0, done.stderr);
    assert.equal(done.json.state, 'EXECUTED');
    assert.equal(done.json.outcome, 'succeeded');
    assert.deepEqual(
      done.json.approvals.map((a: { actor: string }) => a.actor),
      ['operator-2'],
    );
    assert.deepEqual(revoked, ['acme']);

    const again = await kcm('auditor', 'approve', id);
    assert.match(again.stderr, /409 approval_closed/);
    assert.deepEqual(revoked, ['acme']);
    assert.equal((await kcm('auditor', 'show', id)).json.state, 'EXECUTED');
    assert.deepEqual(
      (await kcm('auditor', 'list', '--state', 'executed')).json.approvals.map((a: { id: string }) => a.id),
      [id],
    );
  });

  it('a high-risk route wrapped by requireApproval answers 202 with a proposal instead of acting', async () => {
    const reply = await mtlsRequest({
      url: `${url}/v1/tenants/globex/revoke`,
      method: 'POST',
      body: {},
      ca: pki.ca.certPem,
      client: pki.operator,
    });
    assert.equal(reply.status, 202, JSON.stringify(reply.body));
    assert.equal(reply.body.approval.operation, 'tenant.revoke');
    assert.deepEqual(reply.body.approval.params, { tenant: 'globex' });
    assert.ok(!revoked.includes('globex'), 'nothing ran yet');

    const other = await kcm('operator2', 'cancel', reply.body.approval.id);
    assert.match(other.stderr, /403 forbidden/);
    const rejected = await kcm('operator2', 'reject', reply.body.approval.id, '--reason', 'wrong tenant');
    assert.equal(rejected.json.state, 'REJECTED');
    assert.deepEqual(rejected.json.result, { reason: 'wrong tenant' });

    const p2 = await kcm(
      'operator',
      'propose',
      'tenant.revoke',
      '--params',
      '{"tenant":"initech"}',
      '--ttl-days',
      '30',
    );
    assert.equal(p2.json.expiresAt - p2.json.createdAt, 30 * 86_400_000);
    const tooLong = await kcm('operator', 'propose', 'tenant.revoke', '--params', '{"tenant":"x"}', '--ttl-days', '31');
    assert.match(tooLong.stderr, /400 bad_request/);
    const cancelled = await kcm('auditor', 'cancel', p2.json.id, '--reason', 'superseded');
    assert.equal(cancelled.json.state, 'CANCELLED');
    assert.equal(cancelled.json.decidedBy, 'auditor-1');
    assert.ok(!revoked.includes('initech'));
  });

  it('refuses a request without a caller identity (fail closed)', async () => {
    const routes = approvalRoutes(new ApprovalService({ store: {} as never, registry: new ExecutorRegistry(), audit }));
    for (const r of routes) {
      await assert.rejects(
        r.handler({ body: {}, params: { id: 'x', state: 'PENDING' } }),
        (e: unknown) => e instanceof KcmError && e.code === 'unauthenticated',
      );
    }
  });
});
