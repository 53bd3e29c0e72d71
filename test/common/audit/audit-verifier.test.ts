/**
 * `verifyAuditLog` on a real log: passes untouched, and after each kind of
 * tampering fails naming the first record it can prove wrong.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import { verifyAuditLog } from '../../../common/src/audit/audit-verifier.ts';
import { CheckpointSigner } from '../../../common/src/audit/checkpoint-signer.ts';
import { chainHash, checkpointSigningInput } from '../../../common/src/audit/record-format.ts';
import { closedLog, type Fixture, readLinesOf, rechain, writeLines } from './log-fixture.ts';

const fixtures: Fixture[] = [];
after(() => {
  for (const f of fixtures) f.cleanup();
});

function fresh(): Fixture & { lines: string[] } {
  const f = closedLog(12, 5);
  fixtures.push(f);
  return { ...f, lines: readLinesOf(f.path) };
}

function failsAt(f: Fixture, seq: number, problem: RegExp, o: { head?: string | null } = {}): void {
  const r = verifyAuditLog(f.path, { publicKey: f.publicKey, ...o });
  assert.equal(r.ok, false, 'tampered log verified');
  assert.equal(r.firstBad?.seq, seq, r.firstBad?.problem);
  assert.equal(r.firstBad?.line, seq + 1);
  assert.match(r.firstBad?.problem ?? '', problem);
}

describe('verifyAuditLog', () => {
  it('passes an untouched, cleanly closed log and counts its lines', () => {
    const f = fresh();
    assert.equal(f.lines.length, 17);
    const r = verifyAuditLog(f.path, { publicKey: f.publicKey });
    assert.deepEqual(r, {
      ok: true,
      lines: 17,
      events: 12,
      checkpoints: 4,
      lastCheckpointSeq: 16,
      firstBad: null,
      warnings: [],
      previous: null,
      lastHash: (JSON.parse(f.lines.at(-1) as string) as { hash: string }).hash,
      closed: true,
    });
  });

  it('byte edit inside a record: names that record', () => {
    const f = fresh();
    const buf = readFileSync(f.path);
    const at = buf.indexOf('acme/orders v6');
    buf[at + 'acme/orders v'.length] = '8'.charCodeAt(0);
    writeFileSync(f.path, buf);
    failsAt(f, 9, /hash does not match/);
  });

  it('byte edit in JSON structure: names that line as malformed', () => {
    const f = fresh();
    const lines = [...f.lines];
    lines[4] = (lines[4] as string).replace('"outcome":', '"outcome" :');
    writeLines(f.path, lines);
    failsAt(f, 4, /malformed record/);
  });

  it('line deletion: names the position of the missing record', () => {
    const f = fresh();
    writeLines(
      f.path,
      f.lines.filter((_, i) => i !== 9),
    );
    failsAt(f, 9, /has seq 10, expected 9/);
  });

  it('line insertion (a fabricated record): names it', () => {
    const f = fresh();
    const prev = (JSON.parse(f.lines[8] as string) as { hash: string }).hash;
    const fake = `{"seq":9,"time":"2026-01-01T00:00:00.000Z","type":"event","action":"key.decrypt","outcome":"success","prev":"${prev}","hash":"${'a'.repeat(64)}"}`;
    writeLines(f.path, [...f.lines.slice(0, 9), fake, ...f.lines.slice(9)]);
    failsAt(f, 9, /hash does not match/);
  });

  it('line insertion of a copied line: names its position', () => {
    const f = fresh();
    writeLines(f.path, [...f.lines.slice(0, 9), f.lines[3] as string, ...f.lines.slice(9)]);
    failsAt(f, 9, /has seq 3, expected 9/);
  });

  it('swap of two lines: names the first of them', () => {
    const f = fresh();
    const lines = [...f.lines];
    [lines[9], lines[10]] = [lines[10] as string, lines[9] as string];
    writeLines(f.path, lines);
    failsAt(f, 9, /has seq 10, expected 9/);
  });

  it('tail truncated beyond the last checkpoint: names the first missing record', () => {
    const f = fresh();
    writeLines(f.path, f.lines.slice(0, 15));
    failsAt(f, 15, /missing: the log ends at seq 14 but the signed head names checkpoint seq 16/);
  });

  it('tail cut back exactly to an earlier checkpoint: still caught by the signed head', () => {
    const f = fresh();
    writeLines(f.path, f.lines.slice(0, 14));
    failsAt(f, 14, /tail truncated/);
  });

  it('tail cut inside a line: names the incomplete line', () => {
    const f = fresh();
    const buf = readFileSync(f.path);
    writeFileSync(f.path, buf.subarray(0, buf.length - 40));
    failsAt(f, 16, /incomplete last line/);
  });

  it('full re-chaining after an edit (attacker without the key): the next checkpoint fails its signature', () => {
    const f = fresh();
    const lines = [...f.lines];
    lines[9] = (lines[9] as string).replace('"outcome":"success"', '"outcome":"failure"');
    writeLines(f.path, rechain(lines, 9));
    failsAt(f, 13, /signature is invalid/);
  });

  it('forged checkpoint signature: names the checkpoint', () => {
    const f = fresh();
    const lines = [...f.lines];
    const cp = JSON.parse(lines[7] as string) as { sig: string };
    const forged = `${cp.sig.slice(0, 10)}${cp.sig[10] === '0' ? '1' : '0'}${cp.sig.slice(11)}`;
    lines[7] = (lines[7] as string).replace(cp.sig, forged);
    writeLines(f.path, rechain(lines, 7));
    failsAt(f, 7, /checkpoint signature is invalid/, { head: null });
  });

  it('checkpoint re-signed with another key: names the checkpoint', () => {
    const f = fresh();
    const other = CheckpointSigner.fromSeed(new Uint8Array(32).fill(7));
    const lines = [...f.lines];
    const o = JSON.parse(lines[7] as string) as Record<string, unknown>;
    const { sig: _s, prev, hash: _h, ...unsignedFields } = o;
    const unsigned = JSON.stringify(unsignedFields);
    const sig = other.sign(checkpointSigningInput(prev as string, unsigned));
    const body = JSON.stringify({ ...unsignedFields, sig });
    lines[7] = `${body.slice(0, -1)},"prev":"${prev}","hash":"${chainHash(prev as string, body)}"}`;
    writeLines(f.path, lines);
    failsAt(f, 7, /checkpoint signature is invalid/, { head: null });
  });

  it('wrong public key: the head file and the genesis line are rejected', () => {
    const f = fresh();
    const wrong = CheckpointSigner.fromSeed(new Uint8Array(32).fill(9)).publicKey;
    const r = verifyAuditLog(f.path, { publicKey: wrong });
    assert.equal(r.ok, false);
    assert.match(r.firstBad?.problem ?? '', /head file: signature is invalid/);
    const r2 = verifyAuditLog(f.path, { publicKey: wrong, head: null });
    assert.equal(r2.firstBad?.seq, 0);
    assert.match(r2.firstBad?.problem ?? '', /another signing key/);
  });

  it('a missing head file fails unless explicitly skipped (then with a warning)', () => {
    const f = fresh();
    rmSync(`${f.path}.head`);
    const r = verifyAuditLog(f.path, { publicKey: f.publicKey });
    assert.equal(r.ok, false);
    assert.match(r.firstBad?.problem ?? '', /head file: cannot be read \(ENOENT\)/);
    const r2 = verifyAuditLog(f.path, { publicKey: f.publicKey, head: null });
    assert.equal(r2.ok, true);
    assert.match(r2.warnings.join(), /cannot be detected/);
  });

  it('an empty log fails', () => {
    const f = fresh();
    writeLines(f.path, []);
    failsAt(f, 0, /empty/, { head: null });
  });

  it('an edited head file fails', () => {
    const f = fresh();
    const head = readFileSync(`${f.path}.head`, 'utf8');
    writeFileSync(`${f.path}.head`, head.replace('"reason":"close"', '"reason":"open"'));
    const r = verifyAuditLog(f.path, { publicKey: f.publicKey });
    assert.equal(r.ok, false);
    assert.match(r.firstBad?.problem ?? '', /^head file: /);
  });
});
