/** The Core's audit plumbing: config → AuditLog + Alerter (+ webhook), alerts implied by audit events. */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { AlertInput } from '../../../common/src/alerts/alert-types.ts';
import { verifyAuditLog } from '../../../common/src/audit/audit-verifier.ts';
import { KcmError } from '../../../common/src/errors.ts';
import { AlertingAuditSink, alertFor } from '../../../core/src/audit/alerting-sink.ts';
import { MemoryAuditSink } from '../../../core/src/audit/audit-sink.ts';
import { openCoreAudit } from '../../../core/src/audit/open-core-audit.ts';
import { coreConfig } from '../../../core/src/config.ts';
import { tempDir } from './log-fixture.ts';

const d = tempDir();
after(() => d.cleanup());

describe('Core audit wiring', () => {
  it('maps audit events to ADR-903 alerts', () => {
    const kinds = (e: Parameters<typeof alertFor>[0]) => alertFor(e)?.kind ?? null;
    assert.equal(kinds({ action: 'core.seal', outcome: 'success', reason: 'operator' }), 'core.seal');
    assert.equal(kinds({ action: 'core.unseal', outcome: 'success' }), 'core.unseal');
    assert.equal(kinds({ action: 'core.unseal.auto', outcome: 'failure' }), 'core.unseal');
    assert.equal(kinds({ action: 'core.unseal.share', outcome: 'success' }), null);
    assert.equal(
      kinds({ action: 'sys.write', outcome: 'failure', reason: 'not allowed [forbidden]' }),
      'auth.unauthorized',
    );
    assert.equal(
      kinds({ action: 'admin.request', outcome: 'failure', reason: 'unauthenticated: no cert' }),
      'auth.unauthorized',
    );
    assert.equal(kinds({ action: 'tls.refused', outcome: 'failure' }), 'auth.unauthorized');
    assert.equal(kinds({ action: 'tenant.revoke', outcome: 'success', tenant: 'acme' }), 'tenant.revoked');
    assert.equal(kinds({ action: 'l3.revoke', outcome: 'success' }), 'key.revoked');
    assert.equal(kinds({ action: 'l3.revoke_version', outcome: 'success', tenant: 'acme' }), 'key.revoked');
    assert.equal(kinds({ action: 'edge.lease', outcome: 'failure', reason: 'lease_refused' }), 'auth.unauthorized');
    assert.equal(kinds({ action: 'edge.lease', outcome: 'failure', reason: 'tenant_revoked' }), null);
    assert.equal(
      kinds({ action: 'store.integrity', outcome: 'failure', reason: 'record_tampered' }),
      'store.integrity',
    );
    assert.equal(kinds({ action: 'l3.use_encrypt', outcome: 'success' }), null);
    assert.equal(kinds({ action: 'approval.approve', outcome: 'success' }), null);
  });

  it('records first, then alerts; a failing record raises no alert and throws', () => {
    const got: AlertInput[] = [];
    const mem = new MemoryAuditSink();
    new AlertingAuditSink(mem, { alert: (a) => got.push(a) }).record({ action: 'core.seal', outcome: 'success' });
    assert.equal(mem.events.length, 1);
    assert.equal(got.length, 1);
    const failing = new AlertingAuditSink(
      {
        record() {
          throw new KcmError('audit_unavailable');
        },
      },
      { alert: (a) => got.push(a) },
    );
    assert.throws(() => failing.record({ action: 'core.seal', outcome: 'success' }), KcmError);
    assert.equal(got.length, 1);
  });

  it('openCoreAudit: a signed log at config.auditLog, alerts to the log and the configured webhook', async () => {
    const posted: string[] = [];
    const hook = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => {
        body += c.toString();
      });
      req.on('end', () => {
        posted.push(body);
        res.end();
      });
    });
    await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
    const config = coreConfig(
      {
        dataDir: d.dir,
        audit: { checkpointEvery: 2, fsync: false },
        alerts: { webhookUrl: `http://127.0.0.1:${(hook.address() as AddressInfo).port}/a` },
      },
      {},
    );
    assert.equal(config.audit?.checkpointEvery, 2);
    const lines: string[] = [];
    const a = openCoreAudit(config, (m) => lines.push(m));
    a.sink.record({ action: 'core.unseal', outcome: 'success', resource: 'kcm-0011223344556677' });
    a.sink.record({ action: 'core.seal', outcome: 'success', reason: 'shutdown' });
    await a.close();
    await new Promise<void>((r) => hook.close(() => r()));
    assert.equal(config.auditLog, join(d.dir, 'audit.jsonl'));
    const r = verifyAuditLog(config.auditLog, { publicKey: a.log.publicKey });
    assert.equal(r.ok, true, r.firstBad?.problem);
    assert.equal(r.events, 2);
    assert.deepEqual(
      posted.map((p) => (JSON.parse(p) as { kind: string }).kind),
      ['core.unseal', 'core.seal'],
    );
    assert.ok(lines.some((l) => l.includes(a.log.publicKey)));
    assert.ok(lines.some((l) => l.startsWith('[alert] ')));
  });

  it('rejects bad audit settings naming the field', () => {
    assert.throws(() => coreConfig({ audit: { checkpointEvery: 0 } }, {}), /audit.checkpointEvery/);
    assert.throws(() => coreConfig({ alerts: { webhookUrl: 'file:///x' } }, {}), /alerts.webhookUrl/);
  });
});
