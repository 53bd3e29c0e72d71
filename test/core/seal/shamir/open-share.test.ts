/** The holder's side: keypairs, base64 key helpers, opening a sealed payload, and every way opening must fail. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  generateHolderKeypair,
  holderKeyFromBase64,
  holderKeyToBase64,
  holderPublicKeyOf,
  openSealedShare,
} from '../../../../core/src/seal/shamir/open-share.ts';
import { SIGNED_SHARE_TEXT_CHARS, SIGNED_SHARE_TEXT_PREFIX } from '../../../../core/src/seal/shamir/signed-share.ts';
import { cryptoFor } from '../../../../native/index.ts';
import { ceremony, code, error } from './helpers.ts';

const cer = ceremony(cryptoFor('node'), 2, 3);
const payload = cer.result.shares[0]?.payload as string;
const mine = cer.holders[0]?.secretKey as Buffer;
const other = cer.holders[1]?.secretKey as Buffer;

function edit(mutate: (doc: Record<string, unknown>) => void): string {
  const doc = JSON.parse(payload) as Record<string, unknown>;
  mutate(doc);
  return JSON.stringify(doc);
}

/** Asserts invalid_share and that the message names none of the secrets. */
function refused(fn: () => unknown, why: RegExp): void {
  const e = error(fn);
  assert.equal(e.code, 'invalid_share', e.message);
  assert.match(e.message, why);
  for (const k of [mine, other]) {
    assert.ok(!e.message.includes(k.toString('base64')) && !e.message.includes(k.toString('hex')), 'secret in message');
  }
  assert.ok(!e.message.includes(payload.slice(-40)), 'payload in message');
}

describe('holder keys', () => {
  it('generateHolderKeypair gives a fresh X25519 pair', () => {
    const a = generateHolderKeypair();
    const b = generateHolderKeypair();
    assert.equal(a.publicKey.length, 32);
    assert.equal(a.secretKey.length, 32);
    assert.deepEqual(holderPublicKeyOf(a.secretKey), a.publicKey);
    assert.notDeepEqual(a.publicKey, b.publicKey);
  });

  it('base64 helpers round-trip and are strict', () => {
    const { publicKey } = generateHolderKeypair();
    const text = holderKeyToBase64(publicKey);
    assert.equal(text.length, 44);
    assert.deepEqual(holderKeyFromBase64(` ${text}\n`), publicKey);
    // 32 bytes = 43 characters + "=": the 43rd carries 2 unused low bits, which must be zero.
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
    const nonCanonical = `${text.slice(0, 42)}${alphabet[alphabet.indexOf(text[42] as string) ^ 1]}=`;
    assert.deepEqual(Buffer.from(nonCanonical, 'base64'), publicKey, 'Node decodes it to the same key');
    for (const bad of ['', text.slice(0, -1), `${text}=`, text.replace(/=$/, ''), nonCanonical, '*'.repeat(44)]) {
      assert.equal(
        code(() => holderKeyFromBase64(bad)),
        'invalid_shamir_parameters',
        JSON.stringify(bad),
      );
    }
    assert.equal(
      code(() => holderKeyFromBase64(Buffer.alloc(33).toString('base64'))),
      'invalid_shamir_parameters',
    );
    assert.equal(
      code(() => holderKeyFromBase64('AAAA', 'secret key', 'invalid_share')),
      'invalid_share',
    );
    assert.equal(
      code(() => holderKeyToBase64(Buffer.alloc(31))),
      'invalid_shamir_parameters',
    );
  });
});

describe('openSealedShare', () => {
  it('opens with the holder secret key to the signed share text (white space around the payload ignored)', () => {
    const text = openSealedShare(`\n${payload}\n`, mine);
    assert.ok(text.startsWith(SIGNED_SHARE_TEXT_PREFIX));
    assert.equal(text.length, SIGNED_SHARE_TEXT_CHARS);
    assert.equal(openSealedShare(payload, mine), text, 'opening does not consume anything');
  });

  it('refuses another holder secret key, and a random one', () => {
    refused(() => openSealedShare(payload, other), /sealed to another holder key/);
    refused(() => openSealedShare(payload, generateHolderKeypair().secretKey), /sealed to another holder key/);
    refused(() => openSealedShare(payload, Buffer.alloc(31, 1)), /32 bytes/);
  });

  it('refuses a payload relabelled with the wrong holder public key (the box does not open)', () => {
    const relabelled = edit((d) => {
      d.holderPublicKey = cer.holders[1]?.publicKey.toString('base64');
    });
    refused(() => openSealedShare(relabelled, other), /cannot open the sealed share/);
  });

  it('refuses every corrupted byte of the sealed box', () => {
    const sealed = Buffer.from(JSON.parse(payload).sealed as string, 'base64');
    for (let i = 0; i < sealed.length; i++) {
      const bad = Buffer.from(sealed);
      bad[i] = (bad[i] as number) ^ 0x01;
      const text = edit((d) => {
        d.sealed = bad.toString('base64');
      });
      refused(() => openSealedShare(text, mine), /cannot open the sealed share/);
    }
  });

  it('refuses a payload whose index differs from the sealed share', () => {
    refused(
      () =>
        openSealedShare(
          edit((d) => {
            d.index = 2;
          }),
          mine,
        ),
      /index differs/,
    );
  });

  it('refuses what is not a canonical sealed payload', () => {
    const cases: [string, unknown, RegExp][] = [
      ['not JSON', 'okcm-signed-share:1:abc', /not JSON/],
      ['truncated JSON', payload.slice(0, -1), /not JSON/],
      ['an array', '[1,2]', /not a JSON object/],
      ['null', 'null', /not a JSON object/],
      ['too long', ' '.repeat(3000), /too long/],
      ['not a string', 42, /must be a string/],
      ['pretty-printed', JSON.stringify(JSON.parse(payload), null, 2), /canonical/],
      [
        'keys reordered',
        edit((d) => {
          const s = d.sealed;
          delete d.sealed;
          d.sealed = s;
          const f = d.format;
          delete d.format;
          d.format = f;
        }),
        /canonical/,
      ],
      [
        'an extra key',
        edit((d) => {
          d.extra = 1;
        }),
        /exactly the keys/,
      ],
      [
        'a missing key',
        edit((d) => {
          delete d.clusterId;
        }),
        /exactly the keys/,
      ],
      [
        'another format',
        edit((d) => {
          d.format = 'okcm-sealed-share/2';
        }),
        /format must be/,
      ],
      [
        'an index as a string',
        edit((d) => {
          d.index = '1';
        }),
        /index must be a number/,
      ],
      [
        'index 0',
        edit((d) => {
          d.index = 0;
        }),
        /index outside/,
      ],
      [
        'a bad cluster id',
        edit((d) => {
          d.clusterId = 'a b';
        }),
        /clusterId/,
      ],
      [
        'a short sealed box',
        edit((d) => {
          d.sealed = Buffer.alloc(249).toString('base64');
        }),
        /sealed must be base64 of 250 bytes/,
      ],
      [
        'unpadded base64',
        edit((d) => {
          d.holderPublicKey = (d.holderPublicKey as string).replace(/=$/, '');
        }),
        /holderPublicKey must be base64/,
      ],
    ];
    for (const [what, text, why] of cases) {
      refused(() => openSealedShare(text as string, mine), why);
      assert.ok(what);
    }
  });
});
