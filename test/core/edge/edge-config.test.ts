/**
 * The `edge` configuration section and the edge API started from it:
 * certificate files through ReloadableTls, edges and tenants from the
 * authorization policy file.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { writeTestPolicy } from '../../../common/src/authz/index.ts';
import { MemoryAuditSink } from '../../../core/src/audit/audit-sink.ts';
import { coreConfig } from '../../../core/src/config.ts';
import { edgeConfig } from '../../../core/src/edge/edge-config.ts';
import { startConfiguredEdge } from '../../../core/src/edge/start-edge.ts';
import { FixtureLeaseSource, h2Connect, h2Json, makeEdgeEnv, testPki } from './edge-fixtures.ts';

describe('edge configuration', () => {
  const tls = { certFile: 'c.pem', keyFile: 'k.pem', caFile: 'ca.pem' };

  it('defaults and bounds (ADR-602: 5-60 min leases)', () => {
    assert.equal(edgeConfig(undefined), undefined);
    const c = edgeConfig({ tls });
    assert.deepEqual(c?.leaseTtl, { defaultSeconds: 300, minSeconds: 300, maxSeconds: 3600 });
    assert.equal(c?.port, 8443);
    assert.equal(coreConfig({ edge: { tls, port: 9443 } }, {}).edge?.port, 9443);
    assert.equal(coreConfig({}, {}).edge, undefined);
    const bad = [
      {},
      { tls: { certFile: 'c', keyFile: 'k' } },
      { tls, leaseTtl: { defaultSeconds: 60 } },
      { tls, leaseTtl: { maxSeconds: 7200 } },
      { tls, leaseTtl: { minSeconds: 1200, defaultSeconds: 600 } },
      { tls, port: 70000 },
      { tls, heartbeatMs: 5 },
    ];
    for (const b of bad) assert.throws(() => edgeConfig(b), { code: 'invalid_config' }, JSON.stringify(b));
  });

  it('starts from files and the policy; refuses to start without a policy', async () => {
    const pki = testPki();
    const dir = mkdtempSync(join(tmpdir(), 'okcm-edge-cfg-'));
    const env = await makeEdgeEnv();
    const policy = join(dir, 'authz.json');
    writeTestPolicy(policy, pki);
    const config = edgeConfig({
      port: 0,
      tls: { certFile: pki.core.certFile, keyFile: pki.core.keyFile, caFile: pki.ca.certFile },
    });
    assert.ok(config);
    const source = new FixtureLeaseSource(env.crypto);
    source.add('tenant-a', 'orders', 1);
    const deps = {
      crypto: env.crypto,
      source,
      bus: env.bus,
      store: env.store,
      audit: new MemoryAuditSink(),
      log: () => {},
    };
    await assert.rejects(startConfiguredEdge(config, undefined, deps), { code: 'invalid_config' });
    const edge = await startConfiguredEdge(config, policy, deps);
    try {
      const s = await h2Connect(edge.url, pki.ca.certPem, pki.edgeA);
      const r = await h2Json(s, 'POST', '/v1/edge/lease', { tenant: 'tenant-a', service: 'orders' });
      s.close();
      assert.equal(r.status, 200);
    } finally {
      await edge.close();
      source.destroy();
      await env.cleanup();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
