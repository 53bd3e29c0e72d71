/**
 * The writer: restart resumes the chain, refuses a broken tail, repairs an
 * incomplete last line, group commit keeps call order, fields are validated
 * and secrets redacted, timed checkpoints.
 */
import assert from 'node:assert/strict';
import { appendFileSync, closeSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { AlertInput } from '../../../common/src/alerts/alert-types.ts';
import { AuditLog } from '../../../common/src/audit/audit-log.ts';
import { verifyAuditLog } from '../../../common/src/audit/audit-verifier.ts';
import { exportAuditLog } from '../../../common/src/audit/jsonl-export.ts';
import { KcmError } from '../../../common/src/errors.ts';
import { readLinesOf, tempDir, writeLines } from './log-fixture.ts';

const dirs: { cleanup(): void }[] = [];
after(() => {
  for (const d of dirs) d.cleanup();
});

function newPath(): string {
  const d = tempDir();
  dirs.push(d);
  return join(d.dir, 'sub', 'audit.jsonl');
}

const code = (c: string) => (err: unknown) => err instanceof KcmError && err.code === c;

function alerts(): { sink: { alert(a: AlertInput): void }; got: AlertInput[] } {
  const got: AlertInput[] = [];
  return { sink: { alert: (a) => got.push(a) }, got };
}

describe('AuditLog', () => {
  it('creates the log, key (0600) and public key files, and a restart resumes the same chain', () => {
    const path = newPath();
    const a = new AuditLog({ path, checkpointIntervalMs: 0 });
    a.record({ action: 'core.init', outcome: 'success', resource: 'kcm-0123456789abcdef' });
    a.close();
    assert.equal(readFileSync(`${path}.key`).length, 65);
    assert.equal(readFileSync(path.replace(/\.jsonl$/, '.jsonl.pub'), 'utf8').trim(), a.publicKey);
    const b = new AuditLog({ path, checkpointIntervalMs: 0 });
    assert.equal(b.publicKey, a.publicKey);
    b.record({ action: 'core.unseal', outcome: 'success' });
    b.close();
    const lines = readLinesOf(path).map((l) => JSON.parse(l) as { seq: number; type: string; reason?: string });
    assert.deepEqual(
      lines.map((l) => `${l.seq}:${l.type}${l.type === 'checkpoint' ? `/${l.reason}` : ''}`),
      [
        '0:genesis',
        '1:checkpoint/open',
        '2:event',
        '3:checkpoint/close',
        '4:checkpoint/open',
        '5:event',
        '6:checkpoint/close',
      ],
    );
    const r = verifyAuditLog(path, { publicKey: a.publicKey });
    assert.equal(r.ok, true, r.firstBad?.problem);
    assert.equal(r.events, 2);
  });

  it('a crash leaves an unsigned tail: verify flags it, a restart checks and signs it', () => {
    const path = newPath();
    const a = new AuditLog({ path, checkpointIntervalMs: 0 });
    a.record({ action: 'key.decrypt', outcome: 'success' });
    a.record({ action: 'key.decrypt', outcome: 'failure', reason: 'forbidden' });
    closeSync(a.fd as number); // the process dies: no close checkpoint
    const live = verifyAuditLog(path, { publicKey: a.publicKey });
    assert.equal(live.ok, false);
    assert.equal(live.firstBad?.seq, 2);
    assert.match(live.firstBad?.problem ?? '', /seq 2\.\.3 are not covered by a signed checkpoint/);
    assert.equal(verifyAuditLog(path, { publicKey: a.publicKey, allowUnsignedTail: true }).ok, true);
    new AuditLog({ path, checkpointIntervalMs: 0 }).close();
    assert.equal(verifyAuditLog(path, { publicKey: a.publicKey }).ok, true);
  });

  it('refuses to append onto a broken tail, naming the record', () => {
    const path = newPath();
    const a = new AuditLog({ path, checkpointIntervalMs: 0 });
    a.record({ action: 'key.decrypt', outcome: 'success', actor: 'alice' });
    a.record({ action: 'key.decrypt', outcome: 'success', actor: 'bob' });
    closeSync(a.fd as number);
    const lines = readLinesOf(path);
    lines[3] = (lines[3] as string).replace('bob', 'eve');
    writeLines(path, lines);
    assert.throws(
      () => new AuditLog({ path, checkpointIntervalMs: 0 }),
      (err: unknown) => code('audit_tampered')(err) && /seq 3 \(line 4\): hash does not match/.test(String(err)),
    );
  });

  it('refuses a log cut back before the checkpoint its head names', () => {
    const path = newPath();
    const a = new AuditLog({ path, checkpointEvery: 2, checkpointIntervalMs: 0 });
    for (let i = 0; i < 5; i++) a.record({ action: 'key.encrypt', outcome: 'success' });
    a.close();
    writeLines(path, readLinesOf(path).slice(0, 5));
    const got = alerts();
    assert.throws(() => new AuditLog({ path, alerter: got.sink }), code('audit_tampered'));
    assert.equal(got.got[0]?.kind, 'audit.failure');
  });

  it('removes an incomplete last line left by a crash mid-write, with an alert', () => {
    const path = newPath();
    const a = new AuditLog({ path, checkpointIntervalMs: 0 });
    a.record({ action: 'key.decrypt', outcome: 'success' });
    a.close();
    appendFileSync(path, '{"seq":4,"time":"2026-');
    const got = alerts();
    const b = new AuditLog({ path, checkpointIntervalMs: 0, alerter: got.sink });
    b.close();
    assert.match(got.got[0]?.summary ?? '', /removed an incomplete last line \(22 bytes\)/);
    assert.equal(verifyAuditLog(path, { publicKey: a.publicKey }).ok, true);
  });

  it('group commit: concurrent appends and sync records land in call order, in few writes', async () => {
    const path = newPath();
    const log = new AuditLog({ path, checkpointEvery: 50, checkpointIntervalMs: 0 });
    const batchesBefore = log.stats.batches;
    const pending: Promise<void>[] = [];
    let n = 0;
    const worker = async (w: number) => {
      for (let i = 0; i < 50; i++) {
        pending.push(log.append({ action: 'key.encrypt', outcome: 'success', resource: `n${n++}`, actor: `w${w}` }));
        if (i % 10 === 9) await new Promise((r) => setImmediate(r));
        if (i === 25 && w === 0) log.record({ action: 'core.seal', outcome: 'success', resource: `n${n++}` });
      }
    };
    await Promise.all([worker(0), worker(1), worker(2), worker(3)]);
    await Promise.all(pending);
    log.close();
    const order = [...exportAuditLog(path)].map((l) => (JSON.parse(l) as { resource: string }).resource);
    assert.deepEqual(
      order,
      Array.from({ length: 201 }, (_, i) => `n${i}`),
    );
    assert.ok(log.stats.batches - batchesBefore < 40, `batches ${log.stats.batches}`);
    assert.equal(verifyAuditLog(path, { publicKey: log.publicKey }).ok, true);
  });

  it('an append is released only once an fdatasync after its write succeeded; record() and close() make earlier appends durable', async () => {
    const path = newPath();
    const durable: string[] = [];
    const log = new AuditLog({
      path,
      checkpointIntervalMs: 0,
      onDurable: (lines) => {
        for (const l of lines) if (l.record.type === 'event') durable.push(l.record.resource ?? '');
      },
    });
    const released: string[] = [];
    const a = log.append({ action: 'key.encrypt', outcome: 'success', resource: 'a' }).then(() => released.push('a'));
    await new Promise((r) => setImmediate(r)); // the group commit's turn: written, fdatasync on the thread pool
    assert.equal(log.pendingSync, 1, 'written, not yet durable');
    assert.deepEqual(durable, [], 'no exporter sees a line before it is durable');
    log.record({ action: 'core.seal', outcome: 'success', resource: 'b' });
    assert.equal(log.pendingSync, 0, 'the synchronous fdatasync covered the earlier append');
    assert.deepEqual(durable, ['a', 'b']);
    await a;
    const c = log.append({ action: 'key.encrypt', outcome: 'success', resource: 'c' }).then(() => released.push('c'));
    await new Promise((r) => setImmediate(r));
    assert.equal(log.pendingSync, 1);
    log.close(); // with an fdatasync in flight: close syncs, settles and closes
    await c;
    assert.deepEqual(released, ['a', 'c']);
    assert.deepEqual(durable, ['a', 'b', 'c']);
    const r = verifyAuditLog(path, { publicKey: log.publicKey });
    assert.equal(r.ok, true, r.firstBad?.problem);
    assert.equal(r.events, 3);
  });

  it('without fsync a group commit is released in its own turn', async () => {
    const log = new AuditLog({ path: newPath(), checkpointIntervalMs: 0, fsync: false });
    const p = log.append({ action: 'key.encrypt', outcome: 'success' });
    await new Promise((r) => setImmediate(r));
    assert.equal(log.pendingSync, 0);
    await p;
    log.close();
  });

  it('validates fields: malformed ones throw audit_invalid_record and write nothing; free text is bounded; unknown fields never reach the file', async () => {
    const path = newPath();
    const log = new AuditLog({ path, checkpointIntervalMs: 0 });
    const before = readFileSync(path).length;
    assert.throws(() => log.record({ action: 'Bad Action', outcome: 'success' }), code('audit_invalid_record'));
    assert.throws(
      () => log.record({ action: 'a', outcome: 'success', actor: 42 as never }),
      code('audit_invalid_record'),
    );
    assert.throws(
      () => log.record({ action: 'a', outcome: 'success', tenant: 'no spaces' }),
      code('audit_invalid_record'),
    );
    assert.throws(() => log.record({ action: 'a', outcome: 'maybe' as 'success' }), code('audit_invalid_record'));
    await assert.rejects(
      log.append({ action: 'a', outcome: 'success', correlationId: 'a b' }),
      code('audit_invalid_record'),
    );
    assert.equal(readFileSync(path).length, before);
    log.record({ action: 'a', outcome: 'success', plaintext: 'hunter2' } as never);
    // Free text is cleaned and bounded rather than refused: a long certificate subject must not fail the operation.
    log.record({ action: 'b', outcome: 'success', actor: 'x'.repeat(300), reason: 'line\nbreak\u2028' });
    log.close();
    assert.doesNotMatch(readFileSync(path, 'utf8'), /hunter2|plaintext/);
    const b = [...exportAuditLog(path)].map((l) => JSON.parse(l) as { actor?: string; reason?: string }).at(-1);
    assert.equal(b?.actor, `${'x'.repeat(255)}…`);
    assert.equal(b?.reason, 'line break ');
    assert.equal(verifyAuditLog(path, { publicKey: log.publicKey }).ok, true);
  });

  it('redacts values that look like key material, counts them and alerts', () => {
    const path = newPath();
    const got = alerts();
    const log = new AuditLog({ path, checkpointIntervalMs: 0, alerter: got.sink });
    const hexKey = 'ab'.repeat(32);
    const b64Key = Buffer.alloc(32, 0xfb).toString('base64').replace(/^.{4}/, 'Ab3/');
    log.record({ action: 'key.import', outcome: 'failure', resource: `tenant acme key ${hexKey}`, reason: b64Key });
    log.record({
      action: 'key.import',
      outcome: 'success',
      resource: 'tenants/acme/keys/orders',
      reason: 'kcm-0123456789abcdef',
    });
    log.close();
    const text = readFileSync(path, 'utf8');
    assert.doesNotMatch(text, new RegExp(hexKey));
    assert.ok(!text.includes(b64Key));
    assert.match(text, /"resource":"\[redacted\]","reason":"\[redacted\]"/);
    assert.match(text, /"resource":"tenants\/acme\/keys\/orders","reason":"kcm-0123456789abcdef"/);
    assert.equal(log.stats.redacted, 2);
    assert.deepEqual(
      got.got.map((a) => a.kind),
      ['audit.redacted', 'audit.redacted'],
    );
    assert.ok(!JSON.stringify(got.got).includes(hexKey));
  });

  it('writes a periodic checkpoint after checkpointIntervalMs while events are unsigned', async () => {
    const path = newPath();
    const log = new AuditLog({ path, checkpointIntervalMs: 30 });
    log.record({ action: 'key.decrypt', outcome: 'success' });
    await new Promise((r) => setTimeout(r, 120));
    const last = JSON.parse(readLinesOf(path).at(-1) as string) as { type: string; reason: string };
    assert.deepEqual([last.type, last.reason], ['checkpoint', 'periodic']);
    const r = verifyAuditLog(path, { publicKey: log.publicKey });
    assert.equal(r.ok, true, r.firstBad?.problem);
    assert.match(r.warnings.join(), /not a close checkpoint/);
    log.close();
  });

  it('refuses to resume with a different signing key', () => {
    const path = newPath();
    new AuditLog({ path, checkpointIntervalMs: 0 }).close();
    writeFileSync(`${path}.other.key`, `${'11'.repeat(32)}\n`, { mode: 0o600 });
    assert.throws(() => new AuditLog({ path, keyFile: `${path}.other.key` }), code('audit_tampered'));
  });

  it('refuses a key file readable by others, and a closed log', () => {
    const path = newPath();
    mkdirSync(dirname(path));
    writeFileSync(`${path}.bad.key`, `${'11'.repeat(32)}\n`, { mode: 0o644 });
    assert.throws(() => new AuditLog({ path, keyFile: `${path}.bad.key` }), code('invalid_config'));
    const log = new AuditLog({ path, checkpointIntervalMs: 0 });
    log.close();
    assert.throws(() => log.record({ action: 'a', outcome: 'success' }), code('audit_unavailable'));
    assert.throws(() => new AuditLog({ path, checkpointEvery: 0 }), code('invalid_config'));
  });
});
