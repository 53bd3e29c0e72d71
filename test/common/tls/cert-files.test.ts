/**
 * Loading a service's own certificate: every defect is refused at load with
 * an `invalid_certificate` naming the file; identities come out of real
 * certificates (CN, URI/DNS SANs, fingerprint).
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { KcmError } from '../../../common/src/errors.ts';
import { issueCert, makeTestPki, TEST_IDS, type TestPki } from '../../../common/src/pki/index.ts';
import { identityOf, loadTlsFiles, type TlsFiles, type TlsRole } from '../../../common/src/tls/index.ts';

function refused(files: TlsFiles, role: TlsRole, pattern: RegExp): void {
  assert.throws(
    () => loadTlsFiles(files, role),
    (e) => e instanceof KcmError && e.code === 'invalid_certificate' && pattern.test(e.message),
    `${JSON.stringify(files)} as ${role} should fail with ${pattern}`,
  );
}

describe('loadTlsFiles', () => {
  let dir: string;
  let pki: TestPki;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'kcm-tls-'));
    pki = makeTestPki(dir);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('loads a good server set with its CA bundle', () => {
    const t = loadTlsFiles(
      { certFile: pki.core.certFile, keyFile: pki.core.keyFile, caFile: pki.ca.certFile },
      'server',
    );
    assert.equal(t.leaf.fingerprint256, pki.core.fingerprint256);
    assert.equal(t.caCerts.length, 1);
    assert.ok(t.ca && t.ca.length > 0);
    const both = loadTlsFiles({ certFile: pki.edgeA.certFile, keyFile: pki.edgeA.keyFile }, 'both');
    assert.equal(both.caCerts.length, 0);
  });

  it('refuses expired, not-yet-valid and wrong-usage certificates, naming the file', () => {
    const c = (x: { certFile: string; keyFile: string }) => ({ certFile: x.certFile, keyFile: x.keyFile });
    refused(c(pki.expiredClient), 'client', new RegExp(`${pki.expiredClient.certFile}.*expired on \\d{4}-`));
    refused(c(pki.notYetValidClient), 'client', /not-yet-valid\.crt.*not valid before/);
    refused(c(pki.core), 'client', /core\.crt.*lacks clientAuth \(needed as a client\)/);
    refused(c(pki.operator), 'server', /operator-1\.crt.*lacks serverAuth/);
    refused(c(pki.operator), 'both', /lacks serverAuth/);
  });

  it('refuses a key that does not match, a missing file, garbage and a non-CA bundle', () => {
    refused({ certFile: pki.core.certFile, keyFile: pki.operator.keyFile }, 'server', /operator-1\.key does not match/);
    refused(
      { certFile: join(dir, 'nope.crt'), keyFile: pki.core.keyFile },
      'server',
      /nope\.crt: cannot read \(ENOENT\)/,
    );
    const junk = join(dir, 'junk.pem');
    writeFileSync(junk, 'not a pem');
    refused({ certFile: junk, keyFile: pki.core.keyFile }, 'server', /junk\.pem: no PEM certificate/);
    refused({ certFile: pki.core.certFile, keyFile: junk }, 'server', /key file .*junk\.pem: not a PEM private key/);
    refused(
      { certFile: pki.core.certFile, keyFile: pki.core.keyFile, caFile: pki.operator.certFile },
      'server',
      /CA file .*operator-1\.crt: certificate 1 \(CN=operator-1\) is not a CA/,
    );
  });

  it('never puts key material in its messages', () => {
    const keyCopy = join(dir, 'copy.key');
    copyFileSync(pki.operator.keyFile, keyCopy);
    try {
      loadTlsFiles({ certFile: pki.core.certFile, keyFile: keyCopy }, 'server');
      assert.fail('should refuse');
    } catch (e) {
      const body = pki.operator.keyPem.split('\n')[1] as string;
      assert.ok(!(e as Error).message.includes(body.slice(0, 20)));
      assert.ok(!(e as Error).message.includes('PRIVATE KEY'));
    }
  });
});

describe('identityOf', () => {
  let dir: string;
  let pki: TestPki;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'kcm-id-'));
    pki = makeTestPki(dir);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('reads CN, URI and DNS SANs, emails and the fingerprint', () => {
    const id = identityOf(pki.edgeA.cert);
    assert.deepEqual(id, {
      source: 'certificate',
      cn: 'edge-a',
      subject: 'CN=edge-a',
      issuer: 'CN=OpenKCM Test CA',
      uris: [TEST_IDS.edgeA.uri],
      dnsNames: ['localhost'],
      emails: [],
      fingerprint256: pki.edgeA.fingerprint256,
    });
    const mail = issueCert(pki.ca, {
      kind: 'client',
      cn: 'ops team',
      sans: ['email:ops@example.test', 'URI:urn:kcm:ops', 'URI:spiffe://x/y'],
      name: 'mail',
    });
    const m = identityOf(new X509Certificate(mail.certPem));
    assert.equal(m.cn, 'ops team');
    assert.deepEqual(m.emails, ['ops@example.test']);
    assert.deepEqual(m.uris, ['urn:kcm:ops', 'spiffe://x/y']);
  });

  it('handles a certificate without SANs', () => {
    const bare = issueCert(pki.ca, { kind: 'client', cn: 'bare', sans: [], name: 'bare' });
    const id = identityOf(bare.cert);
    assert.equal(id.cn, 'bare');
    assert.deepEqual([id.uris, id.dnsNames, id.emails], [[], [], []]);
  });
});
