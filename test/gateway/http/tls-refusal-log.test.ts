/** The mTLS port's refusal log (h2-adapter.ts tlsRefusalLog): messages and the per-window cap. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { TLSSocket } from 'node:tls';
import { tlsRefusalLog } from '../../../gateway/src/http/h2-adapter.ts';

const sock = (o: { remoteAddress?: string; authorizationError?: string }) => o as unknown as TLSSocket;
const err = (code: string) => Object.assign(new Error(code), { code });

describe('mTLS refusal log', () => {
  it('says why: the verification error, no certificate, another handshake failure; not a client that left', () => {
    const lines: string[] = [];
    const onError = tlsRefusalLog(
      (l) => lines.push(l),
      () => 0,
    );
    onError(err('ECONNRESET'), sock({ authorizationError: 'CERT_HAS_EXPIRED' }));
    onError(err('ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE'), sock({ remoteAddress: '10.0.0.7' }));
    onError(err('ERR_SSL_WRONG_VERSION_NUMBER'), sock({ remoteAddress: '10.0.0.8' }));
    onError(err('ECONNRESET'), sock({ remoteAddress: '10.0.0.9' }));
    assert.deepEqual(lines, [
      'tls: refused a client certificate: CERT_HAS_EXPIRED',
      'tls: refused a client from 10.0.0.7: no client certificate',
      'tls: handshake failed from 10.0.0.8: ERR_SSL_WRONG_VERSION_NUMBER',
    ]);
  });

  it('writes at most 20 lines per 10 s, then one line with the count of the rest', () => {
    const lines: string[] = [];
    let t = 1_000;
    const onError = tlsRefusalLog(
      (l) => lines.push(l),
      () => t,
    );
    for (let i = 0; i < 50; i++) onError(err('ECONNRESET'), sock({ authorizationError: 'CERT_REVOKED' }));
    assert.equal(lines.length, 20);
    t += 9_999;
    onError(err('ECONNRESET'), sock({ authorizationError: 'CERT_REVOKED' }));
    assert.equal(lines.length, 20, 'same window');
    t += 1;
    onError(err('ECONNRESET'), sock({ authorizationError: 'CERT_REVOKED' }));
    assert.equal(lines[20], 'tls: 31 more refused or failed handshakes not logged in the last window');
    assert.equal(lines[21], 'tls: refused a client certificate: CERT_REVOKED');
  });

  it('tells the count when the window ends, even when no refusal follows', async () => {
    const lines: string[] = [];
    const start = performance.now();
    // A clock 9.95 s into the window: it ends 50 ms from now.
    const onError = tlsRefusalLog(
      (l) => lines.push(l),
      () => performance.now() - start + (lines.length === 0 ? 0 : 9_950),
    );
    for (let i = 0; i < 22; i++) onError(err('ERR_SSL_WRONG_VERSION_NUMBER'), sock({ remoteAddress: '10.0.0.1' }));
    assert.equal(lines.length, 20);
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(lines[20], 'tls: 2 more refused or failed handshakes not logged in the last window');
  });
});
