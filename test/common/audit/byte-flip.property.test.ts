/** fast-check: any single-byte change anywhere in a log (or its head file) makes verification fail. */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import { verifyAuditLog } from '../../../common/src/audit/audit-verifier.ts';
import { closedLog } from './log-fixture.ts';

const f = closedLog(6, 3);
after(() => f.cleanup());
const log = readFileSync(f.path);
const head = readFileSync(`${f.path}.head`);

function flipped(buf: Buffer, at: number, delta: number): Buffer {
  const out = Buffer.from(buf);
  out[at] = ((out[at] as number) + delta) % 256;
  return out;
}

describe('single-byte changes', () => {
  it('the untouched log verifies', () => {
    assert.equal(verifyAuditLog(f.path, { publicKey: f.publicKey }).ok, true);
  });

  it('any byte of the log, changed to any other value, is detected', () => {
    fc.assert(
      fc.property(fc.nat(log.length - 1), fc.integer({ min: 1, max: 255 }), (at, delta) => {
        writeFileSync(f.path, flipped(log, at, delta));
        return verifyAuditLog(f.path, { publicKey: f.publicKey }).ok === false;
      }),
      { numRuns: 400 },
    );
    writeFileSync(f.path, log);
  });

  it('any byte of the head file, changed, is detected', () => {
    fc.assert(
      fc.property(fc.nat(head.length - 1), fc.integer({ min: 1, max: 255 }), (at, delta) => {
        writeFileSync(`${f.path}.head`, flipped(head, at, delta));
        return verifyAuditLog(f.path, { publicKey: f.publicKey }).ok === false;
      }),
      { numRuns: 200 },
    );
    writeFileSync(`${f.path}.head`, head);
  });
});
