/**
 * mTLS identity: a request that arrived with a verified client certificate is
 * identified by that certificate only, never by its address. A certificate
 * the CA issued whose subject has no CN, or several, is refused with 401
 * `unauthenticated` (the message never quotes the subject), even from
 * loopback, which would otherwise make the caller a trusted peer of any
 * tenant. Real certificates issued here with the openssl CLI.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Agent, request } from 'undici';
import { KcmError } from '../../../common/src/errors.ts';
import { makeTestPki, type TestPki } from '../../../common/src/pki/index.ts';
import { openssl } from '../../../common/src/pki/openssl.ts';
import { cnIsTenant, identifyCaller, loopbackOnly } from '../../../gateway/src/pipeline/caller.ts';
import { h2Request } from '../../support/h2-request.ts';
import { b64, type Fixture, h2TlsFront, startFixture } from '../api/gateway-fixture.ts';

interface Pem {
  cert: string;
  key: string;
}

/** A clientAuth certificate of `ca` with exactly the subject given (`-subj` syntax). */
function issueSubject(pki: TestPki, name: string, subject: string, multiValued = false): Pem {
  const base = join(pki.dir, name);
  writeFileSync(
    `${base}.ext`,
    'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n',
  );
  openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${base}.key`]);
  openssl(
    ['req', '-new', '-key', `${base}.key`, '-subj', subject, '-out', `${base}.csr`].concat(
      multiValued ? ['-multivalue-rdn'] : [],
    ),
  );
  openssl(
    ['x509', '-req', '-in', `${base}.csr`, '-CA', pki.ca.certFile, '-CAkey', pki.ca.keyFile, '-set_serial', '7'].concat(
      ['-days', '2', '-extfile', `${base}.ext`, '-out', `${base}.crt`],
    ),
  );
  return { cert: readFileSync(`${base}.crt`, 'utf8'), key: readFileSync(`${base}.key`, 'utf8') };
}

function h2(
  url: string,
  tls: { ca: string; cert: string; key: string },
  path: string,
  o: { body?: unknown; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: string }> {
  return h2Request(url, path, { tls, ...o });
}

describe('mTLS identity: the certificate, never the address', () => {
  let pki: TestPki;
  let f: Fixture;
  let url: string;
  const odd: Record<string, Pem> = {};
  const SUBJECT_WORDS = ['Example', 'secret-unit', 'tenant-a', 'tenant-b'];

  before(async () => {
    pki = makeTestPki(mkdtempSync(join(tmpdir(), 'okcm-mtls-id-')));
    odd['no CN'] = issueSubject(pki, 'nocn', '/O=Example/OU=secret-unit');
    odd['two CNs'] = issueSubject(pki, 'twocn', '/CN=tenant-a/CN=tenant-b');
    odd['a multi-valued CN RDN'] = issueSubject(pki, 'mvcn', '/CN=tenant-a+CN=tenant-b', true);
    // The default trust (loopback) applies: every client below connects from 127.0.0.1.
    f = await startFixture({
      h2Tls: h2TlsFront(pki),
    });
    url = `https://127.0.0.1:${f.gw.ports.h2Tls}`;
  });
  after(async () => {
    await f.close();
    rmSync(pki.dir, { recursive: true, force: true });
  });

  const refused = (r: { status: number; body: string }, what: string) => {
    assert.equal(r.status, 401, `${what}: ${r.body}`);
    const err = JSON.parse(r.body).error;
    assert.equal(err.code, 'unauthenticated');
    for (const w of SUBJECT_WORDS) assert.ok(!err.message.includes(w), `${what}: the message quotes the subject`);
  };

  it('refuses over h2 a verified certificate without exactly one CN (401), even from loopback', async () => {
    for (const [what, c] of Object.entries(odd)) {
      const tls = { ca: pki.ca.certPem, ...c };
      for (const tenant of ['tenant-b', 'victim-corp']) {
        const r = await h2(url, tls, '/v1/encrypt/orders', {
          body: { plaintext: b64('x') },
          headers: { 'x-okcm-tenant': tenant },
        });
        refused(r, `${what} for ${tenant}`);
      }
      refused(await h2(url, tls, '/healthz'), `${what} /healthz`);
    }
  });

  it('refuses over HTTP/1.1 (ALPN) on the same port', async () => {
    for (const [what, c] of Object.entries(odd)) {
      const agent = new Agent({ connect: { ca: pki.ca.certPem, ...c, servername: 'localhost' } });
      try {
        const res = await request(`${url}/v1/encrypt/orders`, {
          method: 'POST',
          dispatcher: agent,
          headers: { 'content-type': 'application/json', 'x-okcm-tenant': 'tenant-b' },
          body: JSON.stringify({ plaintext: b64('x') }),
        });
        refused({ status: res.statusCode, body: await res.body.text() }, what);
      } finally {
        await agent.close();
      }
    }
  });

  it('a certificate with one CN acts for its tenant only, though loopback would trust its address', async () => {
    const tls = { ca: pki.ca.certPem, cert: pki.app.certPem, key: pki.app.keyPem };
    const other = await h2(url, tls, '/v1/encrypt/orders', {
      body: { plaintext: b64('x') },
      headers: { 'x-okcm-tenant': 'tenant-b' },
    });
    assert.equal(other.status, 403);
    const own = await h2(url, tls, '/v1/encrypt/orders', { body: { plaintext: b64('x') } });
    assert.equal(own.status, 200, own.body);
  });

  it('identifyCaller never falls back to the address of a peer that presented a certificate', () => {
    const unusable = { unusable: 'the client certificate must name exactly one CN', fingerprint256: 'AA' };
    assert.throws(
      () => identifyCaller({ address: '127.0.0.1', certificate: unusable }, loopbackOnly, cnIsTenant),
      (e: unknown) => e instanceof KcmError && e.code === 'unauthenticated',
    );
    const usable = { cn: 'app-a', uris: [], fingerprint256: 'AA' };
    const c = identifyCaller({ address: '127.0.0.1', certificate: usable }, () => true, cnIsTenant);
    assert.equal(c?.kind, 'certificate');
    assert.deepEqual(c?.tenants, new Set(['app-a']));
  });
});
