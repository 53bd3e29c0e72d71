/**
 * The native front's table holds the trusted peers as blocks
 * (front-table.ts `cidrs`), which the loop checks as native/src/front/table.rs
 * `in_cidrs` does (mirrored here): for any entries and any peer, that check
 * must agree with TrustedPeers (policy/tenant-source.ts), the pipeline's.
 */
import assert from 'node:assert/strict';
import { isIP } from 'node:net';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { addressBytes, type Cidr, cidrs } from '../../../gateway/src/native-front/front-table.ts';
import { TrustedPeers } from '../../../gateway/src/policy/tenant-source.ts';

const MAPPED = Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]);

function prefixEq(a: Uint8Array, b: Uint8Array, bits: number): boolean {
  const full = bits >> 3;
  for (let i = 0; i < full; i++) if (a[i] !== b[i]) return false;
  const rest = bits & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return ((a[full] as number) & mask) === ((b[full] as number) & mask);
}

/** table.rs `in_cidrs`: IPv4 peers (mapped ones too) against IPv4 blocks, IPv6 peers against IPv6 blocks. */
function inCidrs(list: readonly Cidr[], peer: string): boolean {
  const a = addressBytes(peer);
  if (a.subarray(0, 12).equals(MAPPED)) {
    const v4 = a.subarray(12);
    return list.some((c) => c.v4 && prefixEq(v4, c.addr.subarray(12), c.prefix));
  }
  return list.some((c) => !c.v4 && prefixEq(a, c.addr, c.prefix));
}

const v4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((o) => o.join('.'));
const v6 = fc.array(fc.nat(0xffff), { minLength: 8, maxLength: 8 }).map((g) => g.map((x) => x.toString(16)).join(':'));
const near = fc.constantFrom(
  '10.1.2.3',
  '10.1.255.1',
  '127.0.0.1',
  '::1',
  '::ffff:10.1.2.3',
  '2001:db8::1',
  '::ffff:7f00:1',
);
const address = fc.oneof(v4, v6, near);
const entry = fc.oneof(
  address,
  fc.tuple(v4, fc.nat(32)).map(([a, p]) => `${a}/${p}`),
  fc.tuple(near, fc.nat(128)).map(([a, p]) => `${a}/${isIP(a) === 4 ? p % 33 : p}`),
  fc.constantFrom('::/0', '0.0.0.0/0', '::ffff:10.0.0.0/104', '::ffff:0:0/96', '10.0.0.0/8'),
);

describe('native front table: trusted peers', () => {
  it('the blocks say what TrustedPeers says, for any entries and peer', () => {
    fc.assert(
      fc.property(fc.array(entry, { maxLength: 4 }), address, (entries, peer) => {
        const reference = new TrustedPeers(entries).has(peer);
        assert.equal(inCidrs(cidrs(entries), peer), reference, `${JSON.stringify(entries)} ${peer}`);
      }),
      { numRuns: 3000 },
    );
  });

  it('writes addresses as 16 bytes, IPv4 mapped', () => {
    assert.equal(addressBytes('10.1.2.3').toString('hex'), '00000000000000000000ffff0a010203');
    assert.equal(addressBytes('::1').toString('hex'), `${'0'.repeat(31)}1`);
    assert.equal(
      addressBytes('2001:db8::8:800:200c:417a').toString('hex'),
      '20010db8000000000008080020 0c417a'.replace(' ', ''),
    );
    assert.equal(addressBytes('::ffff:1.2.3.4').toString('hex'), '00000000000000000000ffff01020304');
  });
});
