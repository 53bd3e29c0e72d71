/**
 * Policy files as files: bytes that are not UTF-8 are refused (decoding them
 * would turn them into U+FFFD, and a selector could then name another field
 * than the one written), and a `*.routes.json` that is not a readable file is
 * an `invalid_policy` naming it, not a raw system error.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { KcmError } from '../../../common/src/errors.ts';
import { loadPolicies } from '../../../gateway/src/policy/policy-loader.ts';

const policy = (select: string) => ({
  id: 'p',
  key: 'k',
  defaults: { tenant: { from: 'cert' } },
  routes: [{ method: 'POST', path: '/x', upstream: 'http://127.0.0.1:1', request: [{ select, onMissing: 'skip' }] }],
});

const invalidPolicy =
  (...needles: string[]) =>
  (e: unknown) => {
    assert.ok(e instanceof KcmError, `not a KcmError: ${String(e)}`);
    assert.equal(e.code, 'invalid_policy');
    for (const n of needles) assert.ok((e.detail ?? '').includes(n), `${JSON.stringify(e.detail)} lacks ${n}`);
    return true;
  };

describe('policy files', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'okcm-policy-files-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('refuses a file that is not UTF-8, naming it', () => {
    const file = join(dir, 'a.routes.json');
    // "straße" written in Latin-1: 0xDF alone is not UTF-8.
    writeFileSync(file, Buffer.from(JSON.stringify(policy('$["stra\u00dfe"]')), 'latin1'));
    assert.throws(() => loadPolicies(dir), invalidPolicy(file, 'UTF-8'));
  });

  it('still loads UTF-8 with non-ASCII names as written', () => {
    writeFileSync(join(dir, 'a.routes.json'), JSON.stringify(policy('$["stra\u00dfe"]')), 'utf8');
    const set = loadPolicies(dir);
    assert.equal(set.routes[0]?.request[0]?.selector.text, '$["stra\u00dfe"]');
  });

  it('refuses a directory named *.routes.json, naming it, with the other files checked too', () => {
    const bad = join(dir, 'b.routes.json');
    mkdirSync(bad);
    writeFileSync(join(dir, 'a.routes.json'), Buffer.from([0x7b, 0xff, 0x7d]));
    assert.throws(() => loadPolicies(dir), invalidPolicy(bad, join(dir, 'a.routes.json')));
  });
});
