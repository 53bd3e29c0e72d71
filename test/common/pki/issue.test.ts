/**
 * The development PKI: what createCa/issueCert/makeTestPki put in the
 * certificates (checked with Node's X509Certificate), key file modes, the
 * refusal of names that could inject OpenSSL config, and re-issuing in place.
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { KcmError } from '../../../common/src/errors.ts';
import { createCa, issueCert, loadCa, makeTestPki, TEST_IDS, type TestPki } from '../../../common/src/pki/index.ts';

const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

function code(err: unknown): string {
  assert.ok(err instanceof KcmError, String(err));
  return err.code;
}

describe('development PKI', () => {
  let dir: string;
  let pki: TestPki;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'kcm-pki-'));
    pki = makeTestPki(dir);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('makes a P-256 CA with CA:TRUE that signed every trusted certificate', () => {
    const ca = pki.ca.cert;
    assert.equal(ca.ca, true);
    assert.equal(ca.subject, 'CN=OpenKCM Test CA');
    assert.equal(ca.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
    for (const c of [pki.core, pki.edgeA, pki.edgeB, pki.operator, pki.operator2, pki.auditor, pki.app]) {
      assert.equal(c.cert.ca, false, c.name);
      assert.ok(c.cert.checkIssued(ca) && c.cert.verify(ca.publicKey), `${c.name} signed by the CA`);
      assert.equal(c.cert.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
      assert.equal(statSync(c.keyFile).mode & 0o777, 0o600, `${c.keyFile} is 0600`);
      assert.equal(readFileSync(c.certFile, 'utf8'), c.certPem);
      assert.equal(c.fingerprint256, new X509Certificate(c.certPem).fingerprint256);
    }
    assert.equal(statSync(pki.ca.keyFile).mode & 0o777, 0o600);
  });

  it('gives each kind its extended key usage and SANs', () => {
    assert.deepEqual(pki.core.cert.keyUsage, [SERVER_AUTH]);
    assert.equal(pki.core.cert.subjectAltName, 'DNS:localhost, IP Address:127.0.0.1');
    assert.deepEqual(pki.operator.cert.keyUsage, [CLIENT_AUTH]);
    assert.equal(pki.operator.cert.subjectAltName, `URI:${TEST_IDS.operator.uri}`);
    assert.deepEqual(pki.edgeA.cert.keyUsage?.sort(), [SERVER_AUTH, CLIENT_AUTH].sort());
    assert.match(pki.edgeA.cert.subjectAltName ?? '', /URI:spiffe:\/\/openkcm\.test\/edge\/edge-a/);
    assert.deepEqual(pki.serverOnlyAsClient.cert.keyUsage, [SERVER_AUTH]);
    assert.equal(pki.serverOnlyAsClient.cert.subject, 'CN=operator-1');
  });

  it('dates expired and not-yet-valid certificates as asked', () => {
    const now = Date.now();
    assert.ok(new Date(pki.expiredClient.cert.validTo).getTime() < now);
    assert.ok(new Date(pki.notYetValidClient.cert.validFrom).getTime() > now);
    const v = pki.operator.cert;
    const days = (new Date(v.validTo).getTime() - new Date(v.validFrom).getTime()) / 86_400_000;
    assert.equal(Math.round(days), 365);
  });

  it('keeps the foreign CA apart: same CN, other issuer', () => {
    assert.equal(pki.foreignClient.cert.subject, pki.operator.cert.subject);
    assert.equal(pki.foreignClient.cert.checkIssued(pki.ca.cert), false);
    assert.equal(pki.foreignClient.cert.verify(pki.ca.cert.publicKey), false);
  });

  it('refuses CNs, SANs and names that could inject OpenSSL config or subject fields', () => {
    const ca = loadCa(join(dir, 'ca'));
    const bad = [
      { kind: 'client', cn: 'a/CN=admin' },
      { kind: 'client', cn: 'x\nbasicConstraints=CA:TRUE' },
      { kind: 'client', cn: 'ok', sans: ['URI:x:y, DNS:evil'] },
      { kind: 'client', cn: 'ok', sans: ['DNS:$ENV::HOME'] },
      { kind: 'client', cn: 'ok', sans: ['otherName:1.2.3;UTF8:x'] },
      { kind: 'client', cn: 'ok', name: '../escape' },
      { kind: 'nope', cn: 'ok' },
      { kind: 'client', cn: 'ok', notBefore: new Date(2030, 0, 1), notAfter: new Date(2029, 0, 1) },
    ] as const;
    for (const o of bad) {
      assert.throws(
        () => issueCert(ca, o as never),
        (e) => code(e) === 'invalid_certificate',
        JSON.stringify(o),
      );
    }
  });

  it('re-issues a name in place with a new key (rotation)', () => {
    const ca = createCa(join(dir, 'rot'));
    const first = issueCert(ca, { kind: 'server', cn: 'svc', name: 'svc' });
    const second = issueCert(ca, { kind: 'server', cn: 'svc', name: 'svc' });
    assert.equal(first.certFile, second.certFile);
    assert.notEqual(first.fingerprint256, second.fingerprint256);
    assert.notEqual(first.cert.serialNumber, second.cert.serialNumber);
    assert.equal(readFileSync(second.certFile, 'utf8'), second.certPem);
    assert.ok(!first.cert.publicKey.equals(second.cert.publicKey), 'fresh key');
  });

  it('names the missing file when a CA directory is not initialised', () => {
    assert.throws(
      () => loadCa(join(dir, 'nothing-here')),
      (e) => code(e) === 'invalid_certificate' && /ca\.crt is missing/.test((e as Error).message),
    );
  });
});
