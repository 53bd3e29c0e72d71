/** The error table is documented, consistent with its sources, and covers the crypto face's codes. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ERRORS, type ErrorCode, KcmError, statusForSource } from '../../common/src/errors.ts';
import type { CryptoErrorCode } from '../../native/index.ts';

// Compile-time: every code the crypto face throws is in the table.
const _faceCodesAreKnown: CryptoErrorCode extends ErrorCode ? true : never = true;

const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');

describe('error table', () => {
  it('documents every code in docs/errors.md with its status and source', () => {
    assert.ok(_faceCodesAreKnown);
    for (const [code, spec] of Object.entries(ERRORS)) {
      const row = doc.split('\n').find((l) => l.startsWith(`| \`${code}\` |`));
      assert.ok(row, `docs/errors.md has no row for ${code}`);
      assert.match(row, new RegExp(`\\| ${spec.status} \\| ${spec.source} \\|`), `row of ${code}`);
    }
  });

  it('gives each code a status in its source class', () => {
    for (const [code, spec] of Object.entries(ERRORS)) {
      const base = statusForSource(spec.source);
      const sameClass = Math.floor(spec.status / 100) === Math.floor(base / 100);
      assert.ok(sameClass, `${code}: status ${spec.status} does not fit source ${spec.source}`);
    }
  });

  it('KcmError carries code, status and source and keeps detail in the message', () => {
    const e = new KcmError('format_header', 'tenant length 41 > 40');
    assert.equal(e.code, 'format_header');
    assert.equal(e.status, 400);
    assert.equal(e.source, 'client');
    assert.equal(e.message, 'malformed ciphertext header: tenant length 41 > 40');
  });
});
