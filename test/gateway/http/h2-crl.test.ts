/**
 * Client-certificate revocation on the node:http2 mTLS front
 * (`fronts.h2Tls.crlFile`), with real certificates and real CRLs made by the
 * openssl CLI: a revoked certificate is refused in the handshake (h2 and
 * HTTP/1.1) while one of the same CA still works; a CRL written while the
 * gateway runs takes effect without a restart (new handshakes, the open
 * connection of the newly revoked client, and a TLS session resumed from
 * before the reload); a bad new file is logged and the CRLs in use stay; a
 * CRL past its nextUpdate, when loaded or later while in use, refuses every
 * client (fail closed, logged) until a fresh one is written; a bad crlFile
 * stops the start naming the field.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http2 from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import tls from 'node:tls';
import { type IssuedCert, issueCert, makeTestPki, type TestPki } from '../../../common/src/pki/index.ts';
import { gatewayConfig } from '../../../gateway/src/gateway-config.ts';
import { startConfiguredGateway } from '../../../gateway/src/start-configured-gateway.ts';
import { mtlsRequest } from '../../support/mtls-request.ts';
import { revoke, writeCrl } from '../../support/test-crl.ts';
import { type Fixture, h2TlsFront, startFixture } from '../api/gateway-fixture.ts';

const HOUR = 3_600_000;

async function waitFor(what: string, pred: () => boolean, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

interface RawReply {
  /** 0: no HTTP response (refused). */
  status: number;
  reused: boolean;
  session: Buffer | undefined;
}

/** GET /healthz over HTTP/1.1 on a fresh TLS connection (optionally resuming `session`). */
function rawGet(port: number, ca: string, c: IssuedCert, session?: Buffer): Promise<RawReply> {
  return new Promise((resolve) => {
    let text = '';
    let reused = false;
    let latest: Buffer | undefined;
    const s = tls.connect({
      port,
      host: '127.0.0.1',
      servername: 'localhost',
      ca,
      cert: c.certPem,
      key: c.keyPem,
      ALPNProtocols: ['http/1.1'],
      ...(session ? { session } : {}),
    });
    s.on('session', (b: Buffer) => {
      latest = b;
    });
    s.on('secureConnect', () => {
      reused = s.isSessionReused();
      s.write('GET /healthz HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n');
    });
    s.setEncoding('utf8');
    s.on('data', (d: string) => {
      text += d;
    });
    s.on('error', () => {});
    s.on('close', () => {
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
      resolve({ status: m ? Number(m[1]) : 0, reused, session: latest });
    });
  });
}

/** An h2 session with `c` that has answered one request, and a promise of its close. */
async function openH2(url: string, ca: string, c: IssuedCert) {
  const session = http2.connect(url, { ca, cert: c.certPem, key: c.keyPem, servername: 'localhost' });
  const closed = new Promise<void>((r) => session.on('close', () => r()));
  session.on('error', () => {});
  const status = await new Promise<number>((resolve, reject) => {
    // A refused handshake: the session closes (or errs) with no response.
    void closed.then(() => reject(new Error('session closed without a response')));
    const req = session.request({ ':path': '/healthz' });
    req.on('response', (h) => resolve(Number(h[':status'])));
    req.on('error', reject);
    req.resume();
    req.end();
  });
  return { session, closed, status };
}

describe('h2 mTLS front: client certificate revocation (crlFile)', () => {
  let dir: string;
  let pki: TestPki;
  let f: Fixture;
  let port: number;
  let crlFile: string;
  let good: IssuedCert;
  let revoked: IssuedCert;
  let later: IssuedCert;
  const loads = () => f.logs.filter((l) => l.startsWith('tls: loaded CRL file')).length;
  const get = (c: IssuedCert, session?: Buffer) => rawGet(port, pki.ca.certPem, c, session);

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'okcm-gw-crl-'));
    pki = makeTestPki(dir);
    good = issueCert(pki.ca, { kind: 'client', cn: 'app-a', name: 'crl-good' });
    revoked = issueCert(pki.ca, { kind: 'client', cn: 'app-a', name: 'crl-revoked' });
    later = issueCert(pki.ca, { kind: 'client', cn: 'app-a', name: 'crl-later' });
    revoke(pki.ca, revoked.certFile);
    // Its own directory, as deployments keep it: the watch sees only this file.
    mkdirSync(join(dir, 'crl'));
    crlFile = join(dir, 'crl', 'clients.crl');
    writeCrl(pki.ca, crlFile);
    f = await startFixture({
      h2Tls: h2TlsFront(pki, { crlFile }),
    });
    port = f.gw.ports.h2Tls as number;
  });
  after(async () => {
    await f.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a revoked client certificate in the handshake; another of the same CA works (h2, HTTP/1.1)', async () => {
    const url = `https://127.0.0.1:${port}`;
    const ok = await openH2(url, pki.ca.certPem, good);
    assert.equal(ok.status, 200);
    ok.session.close();
    await assert.rejects(openH2(url, pki.ca.certPem, revoked));
    assert.equal((await get(good)).status, 200);
    assert.equal((await get(revoked)).status, 0);
    const h1 = await mtlsRequest({ url: `${url}/healthz`, ca: pki.ca.certPem, client: revoked });
    assert.equal(h1.status, 0, 'HTTP/1.1 over the same port: refused too');
    assert.equal((await mtlsRequest({ url: `${url}/healthz`, ca: pki.ca.certPem, client: good })).status, 200);
    assert.ok(f.logs.some((l) => /^tls: loaded CRL file .*clients\.crl: CN=OpenKCM Test CA.*1 revoked/.test(l)));
    // Refusals are logged with OpenSSL's reason (Node itself drops them without a word).
    await waitFor('the refusal log line', () =>
      f.logs.some((l) => l === 'tls: refused a client certificate: CERT_REVOKED'),
    );
    const bare = await new Promise<string>((resolve) => {
      const s = tls.connect({ port, host: '127.0.0.1', servername: 'localhost', ca: pki.ca.certPem });
      s.on('error', (e) => resolve(e.message));
      s.on('close', () => resolve('closed'));
    });
    assert.match(
      bare,
      /certificate required|handshake failure|closed|socket/,
      'a client without a certificate is refused',
    );
    await waitFor('the no-certificate log line', () =>
      f.logs.some((l) => /^tls: refused a client from [0-9a-f:.]+: no client certificate$/.test(l)),
    );
  });

  it('applies a CRL written while running: new handshakes, open connections and resumed sessions', async () => {
    const url = `https://127.0.0.1:${port}`;
    const open = await openH2(url, pki.ca.certPem, later);
    assert.equal(open.status, 200);
    const first = await get(later);
    assert.equal(first.status, 200);
    assert.ok(first.session, 'the server issued a session ticket');
    const resumed = await get(later, first.session);
    assert.equal(resumed.reused, true, 'control: resumption works before the reload');
    assert.equal(resumed.status, 200);

    const before = loads();
    revoke(pki.ca, later.certFile);
    writeCrl(pki.ca, crlFile);
    await waitFor('the CRL reload', () => loads() > before);

    assert.equal((await get(later)).status, 0, 'new handshake refused');
    const again = await get(later, first.session);
    assert.equal(again.reused, false, 'the new context has new ticket keys');
    assert.equal(again.status, 0);
    await open.closed;
    assert.ok(f.logs.some((l) => /^tls: closed the connection of .*CN=app-a.*: its certificate is revoked/.test(l)));
    assert.equal((await get(good)).status, 200, 'the others still work');
    assert.equal((await get(revoked)).status, 0);
  });

  it('keeps the CRLs in use when the new file is bad (logged)', async () => {
    const before = f.logs.length;
    writeFileSync(crlFile, '-----BEGIN X509 CRL-----\nnot a crl\n-----END X509 CRL-----\n');
    await waitFor('the refusal', () =>
      f.logs.slice(before).some((l) => /^tls: kept the current CRLs \(file change\): .*does not parse/.test(l)),
    );
    assert.equal((await get(good)).status, 200);
    assert.equal((await get(revoked)).status, 0);
    assert.equal((await get(later)).status, 0);
  });

  it('an expired CRL refuses every client (fail closed, logged) until a fresh one is written', async () => {
    let before = loads();
    writeCrl(pki.ca, crlFile, { lastUpdate: new Date(Date.now() - 2 * HOUR), nextUpdate: new Date(Date.now() - HOUR) });
    await waitFor('the expired CRL', () => loads() > before);
    assert.ok(
      f.logs.some((l) => /^tls: WARNING: the CRL from CN=OpenKCM Test CA .* is expired at .*CRL_HAS_EXPIRED/.test(l)),
    );
    assert.equal((await get(good)).status, 0, 'fail closed');
    before = loads();
    writeCrl(pki.ca, crlFile);
    await waitFor('the fresh CRL', () => loads() > before);
    assert.equal((await get(good)).status, 200);
    assert.equal((await get(revoked)).status, 0);
  });

  it('a CRL that expires while in use: logged when its nextUpdate passes, clients refused from then on', async () => {
    let before = loads();
    const warnings = () => f.logs.filter((l) => l.startsWith('tls: WARNING: the CRL from')).length;
    const warned = warnings();
    writeCrl(pki.ca, crlFile, { nextUpdate: new Date(Date.now() + 3_000) });
    await waitFor('the short-lived CRL', () => loads() > before);
    assert.equal((await get(good)).status, 200, 'current: serves');
    await waitFor('the expiry warning', () => warnings() > warned, 8_000);
    assert.match(
      f.logs.at(-1) ?? '',
      /is expired at .*\[CRL_HAS_EXPIRED\]: every client certificate under that CA is refused/,
    );
    assert.equal((await get(good)).status, 0, 'fail closed without any reload');
    before = loads();
    writeCrl(pki.ca, crlFile);
    await waitFor('the fresh CRL', () => loads() > before);
    assert.equal((await get(good)).status, 200);
  });
});

describe('h2 mTLS front: a bad crlFile stops the start', () => {
  let dir: string;
  let pki: TestPki;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'okcm-gw-crl-bad-'));
    pki = makeTestPki(dir);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const start = (crlFile: string, caFile = pki.ca.certFile) => {
    process.env.KCM_DEV = '1';
    const c = gatewayConfig(
      {
        dev: true,
        fronts: {
          h2Plain: { port: 0 },
          h2Tls: { port: 0, certFile: pki.edgeA.certFile, keyFile: pki.edgeA.keyFile, caFile, crlFile },
        },
        limits: { drainMs: 0 },
      },
      dir,
      { KCM_DEV: '1' },
    );
    return startConfiguredGateway(c, { log: () => {} });
  };

  it('names the field: unreadable, not a PEM CRL, a CA of caFile without a CRL', async () => {
    const refused = async (crlFile: string, want: RegExp, caFile?: string) =>
      assert.rejects(
        start(crlFile, caFile),
        (e: Error & { code?: string }) =>
          e.code === 'invalid_config' && /fronts\.h2Tls\.crlFile: /.test(e.message) && want.test(e.message),
      );
    await refused('missing.crl', /missing\.crl: cannot read \(ENOENT\)/);
    await refused(pki.ca.certFile, /no PEM X509 CRL found/);
    writeFileSync(join(dir, 'junk.crl'), '-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n');
    await refused('junk.crl', /junk\.crl: CRL 1 does not parse/);
    writeCrl(pki.ca, join(dir, 'ours.crl'));
    writeFileSync(join(dir, 'two-cas.pem'), pki.ca.certPem + pki.foreignCa.certPem);
    await refused('ours.crl', /no CRL from CA CN=.*\(certificate 2 of the CA file\)/, join(dir, 'two-cas.pem'));
    const gw = await start('ours.crl');
    assert.ok(gw.server.ports.h2Tls);
    await gw.close();
  });

  it('the config accepts crlFile (path resolved) and refuses an empty one', () => {
    const fronts = (crlFile: unknown) => ({
      dev: true,
      fronts: { h2Tls: { port: 1, certFile: 'c', keyFile: 'k', caFile: 'ca', crlFile } },
    });
    assert.equal(
      gatewayConfig(fronts('tls/ca.crl'), '/etc/kcm', { KCM_DEV: '1' }).fronts.h2Tls?.crlFile,
      '/etc/kcm/tls/ca.crl',
    );
    assert.throws(
      () => gatewayConfig(fronts(''), '/etc/kcm', { KCM_DEV: '1' }),
      /fronts\.h2Tls\.crlFile: must be a non-empty string/,
    );
  });
});
