/**
 * Client-certificate refusal on a real node:https mTLS listener: no
 * certificate, a foreign CA (with a trusted identity's very CN), expired,
 * not yet valid, and serverAuth-only are each disconnected with one clear log
 * line; a good client gets its identity. Without the guard, peerIdentity
 * still fails closed.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { TLSSocket } from 'node:tls';
import { makeTestPki, TEST_IDS, type TestPki } from '../../../common/src/pki/index.ts';
import { guardTlsServer, peerIdentity, ReloadableTls, usageProblem } from '../../../common/src/tls/index.ts';
import { mtlsRequest } from '../../support/mtls-request.ts';

async function listen(server: Server): Promise<string> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `https://localhost:${(server.address() as AddressInfo).port}/`;
}

function close(server: Server): Promise<void> {
  return new Promise((r) => {
    server.close(() => r());
    server.closeAllConnections();
  });
}

describe('mTLS client refusal', () => {
  let dir: string;
  let pki: TestPki;
  let tls: ReloadableTls;
  let guarded: Server;
  let bare: Server;
  let guardedUrl: string;
  let bareUrl: string;
  const logs: string[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kcm-peer-'));
    pki = makeTestPki(dir);
    tls = new ReloadableTls(
      { certFile: pki.core.certFile, keyFile: pki.core.keyFile, caFile: pki.ca.certFile },
      { role: 'server', watch: false, log: (m) => logs.push(m) },
    );
    const handler = (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => {
      const who = peerIdentity(req.socket as TLSSocket);
      res.writeHead(who ? 200 : 401, { 'content-type': 'application/json' });
      res.end(JSON.stringify(who ?? { error: 'unauthenticated' }));
    };
    guarded = createServer(tls.serverOptions(true), handler);
    guardTlsServer(guarded, { log: (m) => logs.push(m) });
    bare = createServer(tls.serverOptions(true), handler);
    guardedUrl = await listen(guarded);
    bareUrl = await listen(bare);
  });

  after(async () => {
    tls.close();
    await Promise.all([close(guarded), close(bare)]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('accepts a client of the trusted CA and reads its identity', async () => {
    const r = await mtlsRequest({ url: guardedUrl, ca: pki.ca.certPem, client: pki.operator });
    assert.equal(r.status, 200);
    assert.equal(r.body.cn, TEST_IDS.operator.cn);
    assert.deepEqual(r.body.uris, [TEST_IDS.operator.uri]);
    assert.equal(r.body.fingerprint256, pki.operator.fingerprint256);
  });

  const cases: Array<[string, (p: TestPki) => { certPem: string; keyPem: string } | null, RegExp]> = [
    ['no certificate', () => null, /^tls: refused client 127\.0\.0\.1:\d+: no client certificate \[NO_CERTIFICATE\]$/],
    [
      'a foreign CA',
      (p) => p.foreignClient,
      /^tls: refused client 127\.0\.0\.1:\d+ \(CN=operator-1, issuer CN=Foreign Test CA, sha256 [0-9A-F:]{95}\): not issued by a trusted CA \(issuer CN=Foreign Test CA\) \[UNABLE_TO_VERIFY_LEAF_SIGNATURE\]$/,
    ],
    [
      'an expired certificate',
      (p) => p.expiredClient,
      /^tls: refused client .*CN=operator-1.*: certificate expired on \d{4}-\d\d-\d\dT.*Z \[CERT_HAS_EXPIRED\]$/,
    ],
    [
      'a not-yet-valid certificate',
      (p) => p.notYetValidClient,
      /^tls: refused client .*CN=operator-1.*: certificate not valid before \d{4}-.*Z \[CERT_NOT_YET_VALID\]$/,
    ],
    [
      'a serverAuth-only certificate',
      (p) => p.serverOnlyAsClient,
      /^tls: refused client .*CN=operator-1.*: extended key usage lacks clientAuth \[INVALID_PURPOSE\]$/,
    ],
  ];

  for (const [name, client, line] of cases) {
    it(`disconnects ${name} with a clear log line`, async () => {
      logs.length = 0;
      const r = await mtlsRequest({ url: guardedUrl, ca: pki.ca.certPem, client: client(pki) });
      assert.equal(r.status, 0, `refused at the TLS layer, got ${r.status}`);
      assert.ok(
        logs.some((l) => line.test(l)),
        `expected a log line like ${line}, got:\n${logs.join('\n')}`,
      );
      assert.ok(!logs.join('\n').includes('PRIVATE KEY'));
    });

    it(`answers ${name} with 401 even without the guard (fail closed)`, async () => {
      const r = await mtlsRequest({ url: bareUrl, ca: pki.ca.certPem, client: client(pki) });
      assert.equal(r.status, 401);
    });
  }

  it('treats a certificate without EKU as unusable for either role', () => {
    assert.equal(usageProblem(pki.ca.cert, 'client'), 'extended key usage lacks clientAuth');
    assert.equal(usageProblem(pki.ca.cert, 'both'), 'extended key usage lacks serverAuth and clientAuth');
    assert.equal(usageProblem(pki.edgeA.cert, 'both'), null);
  });
});
