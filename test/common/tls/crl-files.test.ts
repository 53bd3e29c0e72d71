/**
 * CRL files (common/src/tls/crl-files.ts) with real CRLs made by the openssl
 * CLI: what the loader reads and refuses, and what OpenSSL 3 does with the
 * `crl` option on a real node:tls listener, which the loader's checks and
 * docs/gateway.md rely on: a revoked client is refused (CERT_REVOKED); a
 * buffer of several CRLs loads only the first; every CA needs a CRL
 * (UNABLE_TO_GET_CRL), intermediates a client sends included, and a revoked
 * intermediate refuses its clients; a CRL past its nextUpdate refuses every
 * client of its CA (CRL_HAS_EXPIRED: fail closed).
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import tls, { type TLSSocket } from 'node:tls';
import { type Ca, createCa, type IssuedCert, issueCert } from '../../../common/src/pki/index.ts';
import { openssl } from '../../../common/src/pki/openssl.ts';
import { crlTimeProblem, loadCrlFile, parsePemCrls, revokedInChain } from '../../../common/src/tls/index.ts';
import { crlPem, revoke, writeCrl } from '../../support/test-crl.ts';

const HOUR = 3_600_000;

/** The verification result of one handshake with `client` against a listener with `crl`. */
async function handshake(
  o: { ca: string; crl?: string | string[]; server: IssuedCert; serverCa: Ca },
  client: IssuedCert,
): Promise<string> {
  const server = tls.createServer({
    key: o.server.keyPem,
    cert: o.server.certPem,
    ca: o.ca,
    ...(o.crl ? { crl: o.crl } : {}),
    requestCert: true,
    rejectUnauthorized: false,
  });
  let result = 'no handshake';
  server.on('secureConnection', (s: TLSSocket) => {
    result = s.authorized ? 'OK' : String(s.authorizationError);
    s.end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    await new Promise<void>((resolve) => {
      const port = (server.address() as AddressInfo).port;
      const c = tls.connect({
        port,
        host: '127.0.0.1',
        servername: 'localhost',
        ca: o.serverCa.certPem,
        cert: client.certPem,
        key: client.keyPem,
      });
      c.on('data', () => {});
      c.on('error', () => resolve());
      c.on('close', () => resolve());
    });
  } finally {
    await new Promise<void>((r) => server.close(() => r()));
  }
  return result;
}

/**
 * A CA made with the openssl CLI directly (createCa's CAs have pathlen 0):
 * a root without a path length limit, or an intermediate signed by `parent`.
 * Shaped like a Ca, with an empty issuing database for CRLs.
 */
function cliCa(dir: string, cn: string, parent?: Ca): Ca {
  mkdirSync(join(dir, '.openssl'), { recursive: true });
  writeFileSync(join(dir, '.openssl', 'index.txt'), '');
  const keyFile = join(dir, 'ca.key');
  const certFile = join(dir, 'ca.crt');
  const ext = join(dir, 'ca.ext');
  writeFileSync(
    ext,
    'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n',
  );
  openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', keyFile]);
  if (parent) {
    const csr = join(dir, 'ca.csr');
    openssl(['req', '-new', '-key', keyFile, '-subj', `/CN=${cn}`, '-out', csr]);
    openssl(
      ['x509', '-req', '-in', csr, '-CA', parent.certFile, '-CAkey', parent.keyFile, '-set_serial', '77'].concat([
        '-days',
        '30',
        '-extfile',
        ext,
        '-out',
        certFile,
      ]),
    );
  } else {
    openssl(['req', '-x509', '-new', '-key', keyFile, '-subj', `/CN=${cn}`, '-days', '30', '-out', certFile]);
    openssl(['x509', '-in', certFile, '-out', certFile]);
  }
  const certPem = readFileSync(certFile, 'utf8');
  return { dir, certFile, keyFile, certPem, cert: new X509Certificate(certPem) };
}

describe('CRL files', () => {
  let dir: string;
  let caA: Ca;
  let caB: Ca;
  let server: IssuedCert;
  let goodA: IssuedCert;
  let badA: IssuedCert;
  let goodB: IssuedCert;
  let badB: IssuedCert;
  let bothCas: string;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'kcm-crl-'));
    caA = createCa(join(dir, 'a'), { cn: 'CRL Test CA A' });
    caB = createCa(join(dir, 'b'), { cn: 'CRL Test CA B' });
    server = issueCert(caA, { kind: 'server', cn: 'localhost' });
    goodA = issueCert(caA, { kind: 'client', cn: 'good-a' });
    badA = issueCert(caA, { kind: 'client', cn: 'bad-a' });
    goodB = issueCert(caB, { kind: 'client', cn: 'good-b' });
    badB = issueCert(caB, { kind: 'client', cn: 'bad-b' });
    revoke(caA, badA.certFile);
    revoke(caB, badB.certFile);
    bothCas = caA.certPem + caB.certPem;
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('reads issuer, dates and the revoked serial numbers', () => {
    const next = new Date(Math.floor(Date.now() / 1000) * 1000 + 5 * HOUR);
    const [crl] = parsePemCrls(crlPem(caA, { nextUpdate: next }), 'mem');
    assert.ok(crl);
    assert.equal(crl.issuer, 'CN=CRL Test CA A');
    assert.equal(crl.nextUpdate?.toISOString(), next.toISOString());
    assert.deepEqual([...crl.revoked], [badA.cert.serialNumber.replace(/^(00)+(?=.)/, '')]);
    assert.equal(revokedInChain(badA.cert, [crl]), true);
    assert.equal(revokedInChain(goodA.cert, [crl]), false);
    assert.equal(revokedInChain(badB.cert, [crl]), false, 'same serial space, other issuer');
    assert.equal(crlTimeProblem(crl), null);
  });

  it('loads one CRL per CA and gives one PEM string each', () => {
    const file = join(dir, 'both.crl');
    writeCrl([caA, caB], file);
    const loaded = loadCrlFile(file, [caA.cert, caB.cert]);
    assert.equal(loaded.crls.length, 2);
    assert.equal(loaded.pems.length, 2);
    assert.ok(loaded.pems.every((p) => p.startsWith('-----BEGIN X509 CRL-----') && p.trimEnd().endsWith('CRL-----')));
  });

  it('refuses a missing file, no CRL, a corrupt CRL, a CA without a CRL and a CRL not signed by its CA', () => {
    const bad = (name: string, text: string | null, cas: Ca[], want: RegExp) => {
      const file = join(dir, name);
      if (text !== null) writeFileSync(file, text);
      assert.throws(
        () =>
          loadCrlFile(
            file,
            cas.map((c) => c.cert),
          ),
        (e: Error & { code?: string }) => e.code === 'invalid_certificate' && want.test(e.message),
        name,
      );
    };
    bad('absent.crl', null, [caA], /absent\.crl: cannot read \(ENOENT\)/);
    bad('cert.crl', caA.certPem, [caA], /cert\.crl: no PEM X509 CRL found/);
    const good = crlPem(caA);
    const lines = good.split('\n');
    lines[2] = 'A'.repeat((lines[2] as string).length);
    bad('corrupt.crl', lines.join('\n'), [caA], /corrupt\.crl: CRL 1 does not parse/);
    bad('truncated.crl', `${good.slice(0, 200)}\n-----END X509 CRL-----\n`, [caA], /CRL 1 does not parse/);
    bad('only-a.crl', good, [caA, caB], /no CRL from CA CN=CRL Test CA B \(certificate 2 of the CA file\)/);
    // Same name as CA A, another key: the issuer matches, the signature does not.
    const impostor = createCa(join(dir, 'impostor'), { cn: 'CRL Test CA A' });
    bad('forged.crl', crlPem(impostor), [caA], /the CRL from CN=CRL Test CA A is not signed by CA CN=CRL Test CA A/);
  });

  it('OpenSSL refuses a revoked client and accepts the others (one PEM string per CRL)', async () => {
    const file = join(dir, 'both-ok.crl');
    writeCrl([caA, caB], file);
    const o = { ca: bothCas, crl: loadCrlFile(file, [caA.cert, caB.cert]).pems, server, serverCa: caA };
    assert.equal(await handshake(o, goodA), 'OK');
    assert.equal(await handshake(o, goodB), 'OK');
    assert.equal(await handshake(o, badA), 'CERT_REVOKED');
    assert.equal(await handshake(o, badB), 'CERT_REVOKED');
  });

  it('OpenSSL reads only the first CRL of one buffer, and needs a CRL for every CA', async () => {
    const text = crlPem(caA) + crlPem(caB);
    const o = { ca: bothCas, crl: text, server, serverCa: caA };
    assert.equal(await handshake(o, goodA), 'OK');
    assert.equal(await handshake(o, goodB), 'UNABLE_TO_GET_CRL', 'CA B’s CRL was ignored');
    assert.equal(await handshake({ ...o, crl: crlPem(caA) }, goodB), 'UNABLE_TO_GET_CRL');
  });

  it('OpenSSL needs a CRL from an intermediate the client sends, and refuses clients of a revoked intermediate', async () => {
    const root = cliCa(join(dir, 'root'), 'CRL Test Root');
    const inter = cliCa(join(dir, 'inter'), 'CRL Test Intermediate', root);
    const leaf = issueCert(inter, { kind: 'client', cn: 'leaf' });
    const chained = { ...leaf, certPem: leaf.certPem + inter.certPem };
    const rootServer = issueCert(root, { kind: 'server', cn: 'localhost', name: 'root-server' });
    const o = { ca: root.certPem, server: rootServer, serverCa: root };
    assert.equal(await handshake(o, chained), 'OK', 'control: no CRL');
    assert.equal(await handshake({ ...o, crl: [crlPem(root)] }, chained), 'UNABLE_TO_GET_CRL');
    assert.equal(await handshake({ ...o, crl: [crlPem(root), crlPem(inter)] }, chained), 'OK');
    revoke(root, inter.certFile);
    assert.equal(await handshake({ ...o, crl: [crlPem(root), crlPem(inter)] }, chained), 'CERT_REVOKED');
    const [rootCrl, interCrl] = parsePemCrls(crlPem(root) + crlPem(inter), 'mem');
    // As a TLS socket gives it: the leaf linked to the intermediate it was sent with.
    const peer = { raw: leaf.cert.raw, fingerprint256: leaf.fingerprint256, issuerCertificate: inter.cert };
    assert.equal(
      revokedInChain(peer as unknown as X509Certificate, [rootCrl as never, interCrl as never]),
      true,
      'through the chain',
    );
    assert.equal(revokedInChain(leaf.cert, [rootCrl as never, interCrl as never]), false, 'the leaf alone is not');
  });

  it('a CRL past its nextUpdate makes OpenSSL refuse every client of its CA (fail closed)', async () => {
    const file = join(dir, 'expired.crl');
    writeCrl(caA, file, { lastUpdate: new Date(Date.now() - 2 * HOUR), nextUpdate: new Date(Date.now() - HOUR) });
    const loaded = loadCrlFile(file, [caA.cert]);
    assert.match(crlTimeProblem(loaded.crls[0] as never) ?? '', /^expired at .* \[CRL_HAS_EXPIRED\]$/);
    const o = { ca: caA.certPem, crl: loaded.pems, server, serverCa: caA };
    assert.equal(await handshake(o, goodA), 'CRL_HAS_EXPIRED');
    assert.equal(await handshake(o, badA), 'CRL_HAS_EXPIRED');
    const future = crlPem(caA, {
      lastUpdate: new Date(Date.now() + HOUR),
      nextUpdate: new Date(Date.now() + 2 * HOUR),
    });
    assert.match(crlTimeProblem(parsePemCrls(future, 'f')[0] as never) ?? '', /\[CRL_NOT_YET_VALID\]$/);
    assert.equal(await handshake({ ...o, crl: future }, goodA), 'CRL_NOT_YET_VALID');
    assert.ok(readFileSync(file, 'utf8').includes('BEGIN X509 CRL'));
  });
});
