/**
 * Loopback and listed addresses are recognised in every textual form a front
 * reports (uWS bound to `::` gives fully expanded IPv6, IPv4 as mapped
 * IPv6), compared canonically; nothing else becomes loopback.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { canonicalAddress, loopbackOnly, trustAddresses } from '../../../gateway/src/pipeline/caller.ts';
import { b64, type Fixture, startFixture } from '../api/gateway-fixture.ts';

describe('loopback and trusted addresses, canonically', () => {
  it('recognises loopback in every form', () => {
    for (const a of [
      '127.0.0.1',
      '127.255.255.254',
      '::1',
      '0:0:0:0:0:0:0:1',
      '0000:0000:0000:0000:0000:0000:0000:0001',
      '::ffff:127.0.0.1',
      '::FFFF:127.0.0.1',
      '::ffff:7f00:1',
      '0000:0000:0000:0000:0000:ffff:7f00:0001',
    ]) {
      assert.equal(loopbackOnly(a), true, a);
    }
  });

  it('makes nothing else loopback', () => {
    for (const a of [
      '',
      'localhost',
      '128.0.0.1',
      '126.255.255.255',
      '0127.0.0.1',
      '127.1',
      '127.0.0.1.example',
      ' 127.0.0.1',
      '::',
      '::2',
      '::127.0.0.1',
      '::7f00:1',
      '64:ff9b::7f00:1',
      '::ffff:0:127.0.0.1',
      '::ffff:128.0.0.1',
      '0000:0000:0000:0000:0000:ffff:8000:0001',
      '2002:7f00:1::',
      'fe80::1',
      '1::1',
    ]) {
      assert.equal(loopbackOnly(a), false, a);
    }
  });

  it('compares listed addresses canonically', () => {
    assert.equal(canonicalAddress('0000:0000:0000:0000:0000:ffff:0a01:0203'), '10.1.2.3');
    assert.equal(canonicalAddress('2001:DB8:0:0:0:0:0:1'), '2001:db8::1');
    assert.equal(canonicalAddress('not an ip'), undefined);
    const t = trustAddresses(['10.1.2.3', '2001:db8::1'], false);
    assert.equal(t('0000:0000:0000:0000:0000:ffff:0a01:0203'), true);
    assert.equal(t('::ffff:10.1.2.3'), true);
    assert.equal(t('2001:0db8:0000:0000:0000:0000:0000:0001'), true);
    assert.equal(t('10.1.2.4'), false);
    assert.equal(t('127.0.0.1'), false, 'no loopback unless asked');
    assert.equal(trustAddresses([])('0000:0000:0000:0000:0000:0000:0000:0001'), true);
  });
});

/** True when this host can listen on and connect to ::1. */
async function hasIpv6(): Promise<boolean> {
  const s = net.createServer();
  try {
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.listen(0, '::1', () => resolve());
    });
    return true;
  } catch {
    return false;
  } finally {
    s.close();
  }
}

function encrypt(host: string, port: number): Promise<string> {
  const body = JSON.stringify({ plaintext: b64('x') });
  return new Promise((resolve) => {
    const s = net.connect(port, host, () =>
      s.write(
        `POST /v1/encrypt/k HTTP/1.1\r\nhost: x\r\nx-okcm-tenant: t1\r\ncontent-type: application/json\r\n` +
          `content-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`,
      ),
    );
    let out = '';
    s.on('data', (d) => {
      out += d;
    });
    s.on('close', () => resolve(out.split('\r\n')[0] ?? ''));
    s.on('error', (e) => resolve(String(e)));
  });
}

describe('fronts bound to ::: loopback callers are trusted peers', async () => {
  const ipv6 = await hasIpv6();
  let f: Fixture;
  before(async () => {
    if (ipv6) f = await startFixture({ uws: { host: '::', port: 0 }, h2Plain: { host: '::', port: 0 } });
  });
  after(async () => {
    await f?.close();
  });

  it('answers 200 to 127.0.0.1 and ::1 on the uWS and node fronts', { skip: !ipv6 && 'no IPv6 here' }, async () => {
    for (const [front, port] of [
      ['uws', f.gw.ports.uws],
      ['h2Plain', f.gw.ports.h2Plain],
    ] as const) {
      for (const host of ['127.0.0.1', '::1']) {
        assert.equal(await encrypt(host, port as number), 'HTTP/1.1 200 OK', `${front} from ${host}`);
      }
    }
  });
});
