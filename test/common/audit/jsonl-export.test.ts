import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { exportAuditLog } from '../../../common/src/audit/jsonl-export.ts';
import { KcmError } from '../../../common/src/errors.ts';
import { closedLog, readLinesOf, writeLines } from './log-fixture.ts';

const f = closedLog(12, 5);
after(() => f.cleanup());

describe('exportAuditLog', () => {
  it('yields the event records without chain internals, in order', () => {
    const out = [...exportAuditLog(f.path)].map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(out.length, 12);
    assert.deepEqual(Object.keys(out[3] as object), [
      'seq',
      'time',
      'action',
      'outcome',
      'actor',
      'resource',
      'tenant',
      'correlationId',
      'reason',
    ]);
    assert.deepEqual(
      out.map((r) => r.seq),
      [2, 3, 4, 5, 6, 8, 9, 10, 11, 12, 14, 15],
    );
  });

  it('--since and --raw', () => {
    assert.deepEqual(
      [...exportAuditLog(f.path, { sinceSeq: 12 })].map((l) => (JSON.parse(l) as { seq: number }).seq),
      [12, 14, 15],
    );
    assert.deepEqual([...exportAuditLog(f.path, { raw: true })], readLinesOf(f.path));
  });

  it('stops at a malformed line naming it', () => {
    const lines = readLinesOf(f.path);
    lines[5] = 'not json';
    writeLines(f.path, lines);
    assert.throws(
      () => [...exportAuditLog(f.path)],
      (e: unknown) => e instanceof KcmError && e.code === 'audit_tampered' && /line 6/.test(e.message),
    );
  });
});
