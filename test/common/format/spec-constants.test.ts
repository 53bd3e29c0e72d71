/** SPEC.md states the limits the codecs enforce; this keeps the two from drifting apart. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { it } from 'node:test';
import {
  MAX_CONTEXT_BYTES,
  MAX_ENVELOPE_CHARS,
  MAX_FIELD_PLAINTEXT,
  MIN_BODY_BYTES,
} from '../../../common/src/format/envelope.ts';
import { KEY_REF_MAX_BYTES } from '../../../common/src/format/key-ref.ts';
import { SHARE_BYTES } from '../../../common/src/format/share.ts';
import { WRAPPED_KEY_BLOB_MAX_BYTES } from '../../../common/src/format/wrapped-key.ts';

const spec = readFileSync(new URL('../../../SPEC.md', import.meta.url), 'utf8');
const n = (v: number) => v.toLocaleString('en-US');

it('SPEC.md quotes the limits the code enforces', () => {
  assert.ok(spec.includes(`\`MAX_ENVELOPE_CHARS\` = ${n(MAX_ENVELOPE_CHARS)} characters`));
  assert.ok(spec.includes(`| Envelope string | ${n(MAX_ENVELOPE_CHARS)} characters |`));
  assert.ok(spec.includes(`Maximum size: ${WRAPPED_KEY_BLOB_MAX_BYTES} bytes`));
  assert.ok(spec.includes(`${MIN_BODY_BYTES} bytes at the least`));
  assert.ok(spec.includes(`Size: 8 to ${KEY_REF_MAX_BYTES} bytes`));
  assert.ok(spec.includes(`base64url(${SHARE_BYTES} bytes)`));
  assert.ok(spec.includes(`up to ${n(MAX_CONTEXT_BYTES)} bytes`));
  assert.equal(MAX_FIELD_PLAINTEXT, 1 << 20);
  assert.ok(spec.includes('0 … 1,048,576 (1 MiB)'));
});
