/**
 * ReloadableTls on a real node:https mTLS listener: a re-issued server
 * certificate reaches new handshakes through the file watch and through
 * SIGHUP; a request in flight during the swap completes; a bad or expired
 * replacement is refused with a log line and the old certificate keeps
 * serving; a CA bundle change admits clients of the new CA.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { TLSSocket } from 'node:tls';
import { createCa, issueCert, makeTestPki, type TestPki } from '../../../common/src/pki/index.ts';
import { guardTlsServer, peerIdentity, ReloadableTls } from '../../../common/src/tls/index.ts';
import { mtlsRequest } from '../../support/mtls-request.ts';

async function waitFor(what: string, pred: () => boolean, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('ReloadableTls', () => {
  let dir: string;
  let pki: TestPki;
  let tls: ReloadableTls;
  let server: Server;
  let url: string;
  const logs: string[] = [];
  const log = (m: string) => logs.push(m);

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kcm-reload-'));
    pki = makeTestPki(dir);
    tls = new ReloadableTls(
      { certFile: pki.core.certFile, keyFile: pki.core.keyFile, caFile: pki.ca.certFile },
      { role: 'server', debounceMs: 50, sighup: true, log },
    );
    server = createServer(tls.serverOptions(true), (req, res) => {
      const who = peerIdentity(req.socket as TLSSocket);
      const delay = req.url === '/slow' ? 400 : 0;
      setTimeout(() => {
        res.writeHead(who ? 200 : 401);
        res.end(JSON.stringify({ cn: who?.cn ?? null }));
      }, delay);
    });
    tls.attach(server);
    guardTlsServer(server, { log });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `https://localhost:${(server.address() as AddressInfo).port}`;
  });

  after(async () => {
    tls.close();
    await new Promise<void>((r) => {
      server.close(() => r());
      server.closeAllConnections();
    });
    rmSync(dir, { recursive: true, force: true });
  });

  const get = (path = '/', client = pki.operator) => mtlsRequest({ url: `${url}${path}`, ca: pki.ca.certPem, client });

  it('serves the new certificate after a re-issue, finishing the request in flight', async () => {
    const before = await get();
    assert.equal(before.serverFingerprint, pki.core.fingerprint256);
    const v = tls.version;
    const slow = get('/slow');
    await new Promise((r) => setTimeout(r, 50));
    const next = issueCert(pki.ca, { kind: 'server', cn: 'core', name: 'core' });
    await waitFor('the reload', () => tls.version > v);
    const after = await get();
    assert.equal(after.status, 200);
    assert.equal(after.serverFingerprint, next.fingerprint256);
    const inFlight = await slow;
    assert.deepEqual([inFlight.status, inFlight.serverFingerprint], [200, pki.core.fingerprint256]);
    assert.ok(logs.some((l) => l.startsWith(`tls: loaded ${pki.core.certFile} (file change): CN=core`)));
    pki.core = next;
  });

  it('keeps the current certificate when the new file is bad or expired, and says why', async () => {
    const v = tls.version;
    logs.length = 0;
    writeFileSync(pki.core.certFile, 'garbage');
    await waitFor('a refusal log line', () => logs.some((l) => l.includes('kept the current certificate')));
    assert.match(logs.join('\n'), /tls: kept the current certificate \(file change\): .*core\.crt: no PEM certificate/);
    assert.equal((await get()).serverFingerprint, pki.core.fingerprint256, 'still the old certificate');

    logs.length = 0;
    issueCert(pki.ca, {
      kind: 'server',
      cn: 'core',
      name: 'core',
      notBefore: new Date(Date.now() - 10 * 86_400_000),
      notAfter: new Date(Date.now() - 86_400_000),
    });
    await waitFor('an expiry log line', () => logs.some((l) => /kept the current certificate.*expired on/.test(l)));
    const r = await get();
    assert.deepEqual([r.status, r.serverFingerprint], [200, pki.core.fingerprint256]);
    assert.equal(tls.version, v);
  });

  it('reloads on SIGHUP', async () => {
    const quiet = new ReloadableTls(
      { certFile: pki.edgeA.certFile, keyFile: pki.edgeA.keyFile },
      { role: 'both', watch: false, sighup: true, log },
    );
    try {
      const next = issueCert(pki.ca, {
        kind: 'both',
        cn: 'edge-a',
        name: 'edge-a',
        sans: ['URI:spiffe://openkcm.test/edge/edge-a'],
      });
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(quiet.version, 1, 'no watcher: nothing yet');
      process.kill(process.pid, 'SIGHUP');
      await waitFor('the SIGHUP reload', () => quiet.version === 2);
      assert.equal(quiet.current.leaf.fingerprint256, next.fingerprint256);
    } finally {
      quiet.close();
    }
  });

  it('admits clients of a CA added to the bundle, without a restart', async () => {
    const ca2 = createCa(join(dir, 'ca2'), { cn: 'Second CA' });
    const c2 = issueCert(ca2, { kind: 'client', cn: 'operator-9', name: 'op9' });
    assert.equal((await get('/', c2)).status, 0, 'unknown CA refused');
    issueCert(pki.ca, { kind: 'server', cn: 'core', name: 'core' }); // a valid cert again after the expired one
    const v = tls.version;
    writeFileSync(pki.ca.certFile, pki.ca.certPem + ca2.certPem);
    await waitFor('the bundle reload', () => tls.version > v);
    const r = await get('/', c2);
    assert.deepEqual([r.status, r.body.cn], [200, 'operator-9']);
    assert.equal((await get()).status, 200, 'the old CA still works');
  });
});
