/**
 * Certificate rotation under load on the real Core admin API over mTLS:
 * while clients call GET /v1/sys/status without pause (half with a fresh
 * handshake per request, half on keep-alive connections), the server
 * certificate is re-issued every 250 ms, the CA bundle grows a new CA and
 * the policy file is rewritten. No request may fail, and clients must see
 * several server certificates. ~5 s by default; RUN_LONG=1 runs 30 s.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { testPolicyDocument, writeTestPolicy } from '../../../common/src/authz/test-policy.ts';
import { createCa, issueCert, makeTestPki, type TestPki } from '../../../common/src/pki/index.ts';
import { MemoryAuditSink } from '../../../core/src/audit/audit-sink.ts';
import { coreConfig } from '../../../core/src/config.ts';
import { type CoreService, startCore } from '../../../core/src/core-service.ts';
import { mtlsRequest } from '../../support/mtls-request.ts';

const RUN_MS = process.env.RUN_LONG === '1' ? 30_000 : 5_000;

describe('certificate rotation under load', () => {
  let dir: string;
  let pki: TestPki;
  let core: CoreService;
  const logs: string[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kcm-rotation-'));
    pki = makeTestPki(join(dir, 'pki'));
    const config = coreConfig(
      {
        dataDir: join(dir, 'data'),
        listen: {
          host: '127.0.0.1',
          port: 0,
          tls: { certFile: pki.core.certFile, keyFile: pki.core.keyFile, caFile: pki.ca.certFile },
        },
        authzPolicy: writeTestPolicy(join(dir, 'authz.json'), pki),
      },
      {},
    );
    core = await startCore(config, { audit: new MemoryAuditSink(), log: (m) => logs.push(m) });
  });

  after(async () => {
    await core.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it(`keeps serving every request while certificates, CA bundle and policy change (${RUN_MS / 1000} s)`, async (t) => {
    const url = `${core.admin.url}/v1/sys/status`;
    const end = Date.now() + RUN_MS;
    const seen = new Set<string>();
    const failures: string[] = [];
    let ok = 0;
    const agents: Agent[] = [];

    const worker = async (keepAlive: boolean, client: typeof pki.operator) => {
      const agent = keepAlive
        ? new Agent({ keepAlive: true, maxSockets: 1, ca: pki.ca.certPem, cert: client.certPem, key: client.keyPem })
        : undefined;
      if (agent) agents.push(agent);
      while (Date.now() < end) {
        const r = await mtlsRequest({ url, ca: pki.ca.certPem, client, ...(agent ? { agent } : {}) });
        if (r.status === 200) {
          ok++;
          if (r.serverFingerprint) seen.add(r.serverFingerprint);
        } else failures.push(`${r.status} ${r.error ?? r.body?.error?.code ?? ''}`);
      }
    };

    let rotations = 0;
    const rotator = (async () => {
      const extraCas: string[] = [];
      while (Date.now() < end - 300) {
        await new Promise((r) => setTimeout(r, 250));
        issueCert(pki.ca, { kind: 'server', cn: 'core', name: 'core' });
        rotations++;
        if (rotations % 4 === 0) {
          // The CA bundle gains a CA (trust for a coming CA rollover); the policy is rewritten.
          extraCas.push(createCa(join(dir, `ca-next-${rotations}`), { cn: `Next CA ${rotations}` }).certPem);
          writeFileSync(pki.ca.certFile, [pki.ca.certPem, ...extraCas].join(''));
          const doc = testPolicyDocument(pki) as { identities: unknown[] };
          doc.identities.reverse();
          writeFileSync(join(dir, 'authz.json'), JSON.stringify(doc));
        }
      }
    })();

    const clients = [pki.operator, pki.operator2, pki.auditor];
    await Promise.all([
      rotator,
      ...clients.map((c) => worker(false, c)),
      ...clients.map((c) => worker(true, c)),
      worker(false, pki.operator),
    ]);
    for (const a of agents) a.destroy();

    const tlsVersion = core.admin.tls?.version ?? 0;
    t.diagnostic(
      `${ok} requests ok, ${failures.length} failed, ${rotations} certificate rotations, ` +
        `${seen.size} server certificates seen, TLS context version ${tlsVersion}`,
    );
    assert.deepEqual(failures.slice(0, 5), [], `${failures.length} failed requests`);
    // Throughput depends on the machine (2 shared cores here); what matters is that load spanned the rotations.
    assert.ok(ok > rotations, `only ${ok} requests for ${rotations} rotations`);
    assert.ok(seen.size >= 3, `clients saw ${seen.size} server certificates`);
    assert.ok(tlsVersion >= 3, `TLS context reloaded ${tlsVersion - 1} times`);
    assert.ok(!logs.some((l) => l.includes('kept the current policy')), logs.join('\n'));
  });
});
