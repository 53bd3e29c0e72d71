/**
 * Generates test/vectors/envelope-v1.vec, the golden vectors of SPEC.md §5,
 * deterministically: fixed keys, fixed data keys and fixed nonces. This file
 * is a test tool, the one place outside native/ that runs AES-GCM through
 * node:crypto directly, because the product's API never accepts a nonce.
 *
 *   node --import tsx test/vectors/generate-envelope-vectors.ts [--check]
 *
 * `--check` exits 1 when the committed file differs from what this generates.
 */
import { createCipheriv, createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { decodeBase64urlStrict, encodeBase64url } from '../../common/src/format/base64url.ts';
import {
  dataKeyWrapAad,
  encodeFieldHeader,
  type FieldKeyRef,
  fieldAad,
  serializeEnvelope,
} from '../../common/src/format/envelope.ts';
import { type EnvelopeVector, formatVectors } from './vector-file.ts';

export const VECTOR_FILE = fileURLToPath(new URL('./envelope-v1.vec', import.meta.url));

/** Deterministic bytes: SHA-256 chain of a label, as long as needed. */
function det(label: string, n: number): Buffer {
  const out: Buffer[] = [];
  for (let i = 0; out.length * 32 < n; i++) out.push(createHash('sha256').update(`${label}/${i}`).digest());
  return Buffer.concat(out).subarray(0, n);
}

function gcm(key: Buffer, nonce: Buffer, plaintext: Uint8Array, aad: Uint8Array): Buffer {
  const c = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: 16 });
  c.setAAD(aad);
  return Buffer.concat([nonce, c.update(plaintext), c.final(), c.getAuthTag()]);
}

interface Build {
  name: string;
  ref: FieldKeyRef;
  plaintext: Buffer;
  context: Buffer;
}

function encrypt(b: Build, l3: Buffer): string {
  const header = encodeFieldHeader(b.ref);
  const dek = det(`${b.name}/dek`, 32);
  const wrapped = gcm(l3, det(`${b.name}/wrap-nonce`, 12), dek, dataKeyWrapAad(b.ref));
  const sealed = gcm(dek, det(`${b.name}/nonce`, 12), b.plaintext, fieldAad(header, b.context));
  return serializeEnvelope(header, wrapped, sealed);
}

/** Re-encodes an envelope after `edit` changes its body bytes. */
function editBody(ct: string, edit: (body: Buffer) => Buffer): string {
  const prefix = 'okcm:1:';
  return prefix + encodeBase64url(edit(Buffer.from(decodeBase64urlStrict(ct, prefix.length))));
}

function flip(at: (body: Buffer) => number, mask = 0x01): (body: Buffer) => Buffer {
  return (body) => {
    const b = Buffer.from(body);
    const i = at(b);
    b[i] = (b[i] as number) ^ mask;
    return b;
  };
}

export function generate(): string {
  const l3 = det('l3-key', 32);
  const otherL3 = det('other-l3-key', 32);
  const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
  const base: Build = {
    name: 'base',
    ref: { tenant: 'acme', keyId: 'payments', keyVersion: 1 },
    plaintext: Buffer.from('4111 1111 1111 1111'),
    context: Buffer.from('policy:orders#/card/number'),
  };
  const ct = encrypt(base, l3);
  const headerLen = encodeFieldHeader(base.ref).length;
  const v = (name: string, ciphertext: string, expect: EnvelopeVector['expect'], extra: Partial<EnvelopeVector> = {}) =>
    ({ name, l3_key: hex(l3), tenant: 'acme', context: hex(base.context), ciphertext, expect, ...extra }) as EnvelopeVector;
  const ok = (b: Build) =>
    v(b.name, encrypt(b, l3), 'success', { tenant: b.ref.tenant, context: hex(b.context), plaintext: hex(b.plaintext) });
  const vectors: EnvelopeVector[] = [
    v('success-basic', ct, 'success', { plaintext: hex(base.plaintext) }),
    ok({ name: 'success-empty', ref: { tenant: 't', keyId: 'k', keyVersion: 7 }, plaintext: Buffer.alloc(0), context: Buffer.alloc(0) }),
    ok({
      name: 'success-longest-ids',
      ref: { tenant: `T${'x'.repeat(38)}~`, keyId: `svc.${'a'.repeat(59)}_`, keyVersion: 0xffffffff },
      plaintext: det('binary-plaintext', 300),
      context: det('binary-context', 64),
    }),
    ok({
      name: 'success-utf8',
      ref: { tenant: 'globex-eu.1', keyId: 'profiles', keyVersion: 42 },
      plaintext: Buffer.from('Grüße, 世界 🔐'),
      context: Buffer.from('policy:users#/profile/name'),
    }),
    v('auth-failure-ciphertext-bit', editBody(ct, flip((b) => b.length - 17)), 'auth_failure'),
    v('auth-failure-tag-bit', editBody(ct, flip((b) => b.length - 1)), 'auth_failure'),
    v('auth-failure-nonce-bit', editBody(ct, flip(() => headerLen + 60)), 'auth_failure'),
    v('auth-failure-wrapped-key-bit', editBody(ct, flip(() => headerLen + 20)), 'auth_failure'),
    v('auth-failure-key-version-changed', editBody(ct, flip(() => headerLen - 1, 0x02)), 'auth_failure'),
    v('auth-failure-wrong-l3-key', ct, 'auth_failure', { l3_key: hex(otherL3) }),
    v('auth-failure-truncated-tag', editBody(ct, (b) => b.subarray(0, b.length - 1)), 'auth_failure'),
    v('wrong-tenant', ct, 'wrong_tenant', { tenant: 'globex' }),
    v(
      'auth-failure-tenant-rewritten',
      editBody(ct, (b) => Buffer.concat([b.subarray(0, 2), Buffer.from('acmf'), b.subarray(6)])),
      'auth_failure',
      { tenant: 'acmf' },
    ),
    v('wrong-context', ct, 'wrong_context', { context: hex(Buffer.from('policy:orders#/card/cvv')) }),
    v('wrong-context-empty', ct, 'wrong_context', { context: '' }),
    v('unsupported-version-2', `okcm:2:${ct.slice(7)}`, 'unsupported_version'),
    v('unsupported-version-0', `okcm:0:${ct.slice(7)}`, 'unsupported_version'),
    v('unsupported-version-leading-zero', `okcm:01:${ct.slice(7)}`, 'unsupported_version'),
    v('unsupported-version-missing', 'okcm:', 'unsupported_version'),
    v('header-failure-prefix', `okcn:1:${ct.slice(7)}`, 'header_failure'),
    v('header-failure-empty', '', 'header_failure'),
    v('header-failure-base64-alphabet', `${ct.slice(0, 20)}+${ct.slice(21)}`, 'header_failure'),
    v('header-failure-base64-padding', `${ct}=`, 'header_failure'),
    v('header-failure-base64-noncanonical', editBody(ct, (b) => Buffer.concat([b, Buffer.of(0)])).replace(/A$/, 'B'), 'header_failure'),
    v('header-failure-empty-body', 'okcm:1:', 'header_failure'),
    v('header-failure-truncated', editBody(ct, (b) => b.subarray(0, 50)), 'header_failure'),
    v('header-failure-no-nonce', editBody(ct, (b) => b.subarray(0, headerLen + 60 + 27)), 'header_failure'),
    v('header-failure-algorithm', editBody(ct, flip(() => 0)), 'header_failure'),
    v('header-failure-tenant-length', editBody(ct, (b) => Buffer.concat([b.subarray(0, 1), Buffer.of(41), b.subarray(2)])), 'header_failure'),
    v('header-failure-tenant-zero-length', editBody(ct, (b) => Buffer.concat([b.subarray(0, 1), Buffer.of(0), b.subarray(2)])), 'header_failure'),
    v('header-failure-tenant-charset', editBody(ct, (b) => Buffer.concat([b.subarray(0, 2), Buffer.from('ac e'), b.subarray(6)])), 'header_failure'),
    v('header-failure-key-version-zero', editBody(ct, (b) => { const c = Buffer.from(b); c.writeUInt32BE(0, headerLen - 4); return c; }), 'header_failure'),
  ];
  const header = [
    'OpenKCM field ciphertext envelope, format version 1: golden vectors (SPEC.md §5, §8).',
    'Generated by test/vectors/generate-envelope-vectors.ts; read by test/common/format/golden-vectors.test.ts and native/src/golden.rs.',
    'l3_key: the L3 key the resolver returns for any version; tenant: the decrypting caller; context: hex; plaintext: hex.',
  ].join('\n');
  return formatVectors(header, vectors);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const text = generate();
  if (process.argv.includes('--check')) {
    const same = readFileSync(VECTOR_FILE, 'utf8') === text;
    console.log(same ? 'envelope-v1.vec is up to date' : 'envelope-v1.vec differs from the generator');
    process.exit(same ? 0 : 1);
  }
  writeFileSync(VECTOR_FILE, text);
  console.log(`wrote ${VECTOR_FILE}`);
}
