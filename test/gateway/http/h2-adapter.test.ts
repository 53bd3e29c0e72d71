/**
 * The node:http2 adapter: mTLS port (h2 and HTTP/1.1 by ALPN; no certificate
 * or a foreign CA → refused; identity and tenant from the certificate), and
 * h2c + HTTP/1.1 on one plaintext port. Real certificates from makeTestPki.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Agent, request } from 'undici';
import { parseEnvelope } from '../../../common/src/format/envelope.ts';
import { makeTestPki, type TestPki } from '../../../common/src/pki/index.ts';
import { h2Request } from '../../support/h2-request.ts';
import { b64, type Fixture, h2TlsFront, startFixture } from '../api/gateway-fixture.ts';

describe('node:http2 adapter', () => {
  let dir: string;
  let pki: TestPki;
  let f: Fixture;
  let tlsUrl: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'okcm-gw-h2-'));
    pki = makeTestPki(dir);
    f = await startFixture({
      h2Tls: h2TlsFront(pki),
    });
    tlsUrl = `https://127.0.0.1:${f.gw.ports.h2Tls}`;
  });
  after(async () => {
    await f.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const client = () => ({ ca: pki.ca.certPem, cert: pki.app.certPem, key: pki.app.keyPem });

  it('serves h2 over mTLS with the tenant from the client certificate', async () => {
    const r = await h2Request(tlsUrl, '/v1/encrypt/orders', { tls: client(), body: { plaintext: b64('x') } });
    assert.equal(r.alpn, 'h2');
    assert.equal(r.status, 200);
    const env = parseEnvelope(JSON.parse(r.body).data.ciphertext);
    assert.equal(env.tenant, 'app-a', 'tenant = the certificate CN (ADR-402 default)');
    const d = await h2Request(tlsUrl, '/v1/decrypt/orders', {
      tls: client(),
      body: { ciphertext: JSON.parse(r.body).data.ciphertext },
    });
    assert.equal(JSON.parse(d.body).data.plaintext, b64('x'));
  });

  it('refuses a certificate caller acting for another tenant (403)', async () => {
    const r = await h2Request(tlsUrl, '/v1/encrypt/orders', {
      tls: client(),
      body: { plaintext: b64('x') },
      headers: { 'x-okcm-tenant': 'tenant-b' },
    });
    assert.equal(r.status, 403);
    assert.equal(JSON.parse(r.body).error.code, 'forbidden');
  });

  it('serves HTTP/1.1 over the same TLS port by ALPN', async () => {
    const agent = new Agent({ connect: { ...client(), servername: 'localhost' } });
    try {
      const res = await request(`${tlsUrl}/v1/encrypt/orders`, {
        method: 'POST',
        dispatcher: agent,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ plaintext: b64('y') }),
      });
      assert.equal(res.statusCode, 200);
      assert.equal(parseEnvelope(((await res.body.json()) as any).data.ciphertext).tenant, 'app-a');
    } finally {
      await agent.close();
    }
  });

  it('refuses a client without a certificate, and one from a foreign CA', async () => {
    await assert.rejects(h2Request(tlsUrl, '/healthz', { tls: { ca: pki.ca.certPem } }));
    await assert.rejects(
      h2Request(tlsUrl, '/healthz', {
        tls: { ca: pki.ca.certPem, cert: pki.foreignClient.certPem, key: pki.foreignClient.keyPem },
      }),
    );
    await assert.rejects(
      h2Request(tlsUrl, '/healthz', {
        tls: { ca: pki.ca.certPem, cert: pki.expiredClient.certPem, key: pki.expiredClient.keyPem },
      }),
    );
    assert.equal((await h2Request(tlsUrl, '/healthz', { tls: client() })).status, 200, 'still serving');
  });

  it('serves h2c (prior knowledge) and HTTP/1.1 on one plaintext port', async () => {
    const h2c = await h2Request(f.base.plain, '/v1/encrypt/k', {
      body: { plaintext: b64('z') },
      headers: { 'x-okcm-tenant': 't1' },
    });
    assert.equal(h2c.status, 200);
    assert.equal(parseEnvelope(JSON.parse(h2c.body).data.ciphertext).tenant, 't1');
    const res = await request(`${f.base.plain}/healthz`, { dispatcher: f.agent });
    assert.equal(res.statusCode, 200);
    await res.body.text();
    const m = await request(`${f.base.plain}/metrics`, { dispatcher: f.agent });
    const text = await m.body.text();
    assert.match(text, /okcm_gateway_requests_total\{route="encrypt",status="200"\} [1-9]/);
  });
});
