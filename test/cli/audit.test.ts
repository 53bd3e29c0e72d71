/**
 * `kcm audit verify` as an operator runs it: passes on an untouched log and
 * fails (exit 1), naming the record, after a byte edit, a line deletion, a
 * line insertion, a swap of two lines and a tail truncation beyond the last
 * checkpoint. `kcm audit export` prints the records.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { closedLog, readLinesOf, writeLines } from '../common/audit/log-fixture.ts';

const KCM = fileURLToPath(new URL('../../bin/kcm.mjs', import.meta.url));
const f = closedLog(12, 5);
after(() => f.cleanup());
const original = readFileSync(f.path);
const pub = f.path.replace(/\.jsonl$/, '.jsonl.pub');

function kcm(args: string[]) {
  const r = spawnSync(process.execPath, [KCM, ...args], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

function verifyAfter(edit: (lines: string[]) => string[]) {
  writeFileSync(f.path, original);
  writeLines(f.path, edit(readLinesOf(f.path)));
  return kcm(['audit', 'verify', '--log', f.path, '--public-key', pub]);
}

describe('kcm audit', () => {
  it('verify passes on the untouched log (public key as a file or as hex)', () => {
    writeFileSync(f.path, original);
    const r = kcm(['audit', 'verify', '--log', f.path, '--public-key', pub]);
    assert.equal(r.code, 0, r.out + r.err);
    assert.match(r.out, /^OK: 17 lines, 12 events, 4 signed checkpoints; last checkpoint seq 16/);
    assert.equal(kcm(['audit', 'verify', '--log', f.path, '--public-key', f.publicKey]).code, 0);
  });

  const cases: [string, (l: string[]) => string[], RegExp][] = [
    [
      'byte edit',
      (l) => l.map((x, i) => (i === 9 ? x.replace('"success"', '"successs"') : x)),
      /FAILED at seq 9 \(line 10\)/,
    ],
    ['line deletion', (l) => l.filter((_, i) => i !== 9), /FAILED at seq 9 \(line 10\): has seq 10, expected 9/],
    [
      'line insertion',
      (l) => [...l.slice(0, 9), l[4] as string, ...l.slice(9)],
      /FAILED at seq 9 \(line 10\): has seq 4/,
    ],
    [
      'swap of two lines',
      (l) => [...l.slice(0, 9), l[10] as string, l[9] as string, ...l.slice(11)],
      /FAILED at seq 9 \(line 10\)/,
    ],
    ['tail truncation beyond the last checkpoint', (l) => l.slice(0, 15), /FAILED at seq 15 \(line 16\): missing/],
  ];
  for (const [name, edit, expected] of cases) {
    it(`verify fails after a ${name}, naming the record`, () => {
      const r = verifyAfter(edit);
      assert.equal(r.code, 1, r.out + r.err);
      assert.match(r.out, expected);
    });
  }

  it('verify --json, --no-head, and a wrong key', () => {
    writeFileSync(f.path, original);
    const r = kcm(['audit', 'verify', '--log', f.path, '--public-key', pub, '--json']);
    assert.equal((JSON.parse(r.out) as { ok: boolean }).ok, true);
    const wrong = 'ab'.repeat(32);
    const w = kcm(['audit', 'verify', '--log', f.path, '--public-key', wrong, '--no-head']);
    assert.equal(w.code, 1);
    assert.match(w.out, /FAILED at seq 0 \(line 1\): the log was started with another signing key/);
    assert.equal(kcm(['audit', 'verify', '--log', f.path]).code, 1);
    assert.equal(kcm(['audit', 'frob']).code, 2);
  });

  it('export prints the event records as JSON lines, --since filters', () => {
    writeFileSync(f.path, original);
    const r = kcm(['audit', 'export', '--log', f.path, '--since', '14']);
    assert.equal(r.code, 0, r.err);
    const recs = r.out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { seq: number; prev?: string });
    assert.deepEqual(
      recs.map((x) => x.seq),
      [14, 15],
    );
    assert.equal(recs[0]?.prev, undefined);
  });
});
