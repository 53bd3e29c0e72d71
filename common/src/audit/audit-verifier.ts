/**
 * `kcm audit verify`: checks a whole audit log against its signing public key
 * and its signed head file (docs/audit.md "Verifier rules"). Detects any
 * edit, deletion, insertion or reordering of lines, forged checkpoints, and a
 * tail cut off beyond the last checkpoint, and names the first bad record.
 */
import { closeSync, openSync, readFileSync } from 'node:fs';
import { KcmError } from '../errors.ts';
import { type AuditProblem, ChainChecker, checkpointSignatureValid } from './chain-checker.ts';
import { errnoOf } from './checkpoint-signer.ts';
import { readLines } from './log-lines.ts';
import { type CheckpointLine, chainHash, type GenesisLine, parseLine } from './record-format.ts';

export interface VerifyOptions {
  /** Ed25519 public key, 64 hex digits. */
  publicKey: string;
  /**
   * The signed head file (`<log>.head`, written at each checkpoint). Required
   * unless `head: null`, which skips rule 8 (tail cut back to an earlier
   * checkpoint is then undetectable; a warning says so).
   */
  head?: string | null;
  /**
   * Accept event lines after the last checkpoint (a log that is still being
   * written, or a crash) as chained but unsigned, with a warning. Without it
   * they fail rule 7.
   */
  allowUnsignedTail?: boolean;
}

export interface VerifyResult {
  ok: boolean;
  /** Lines checked and found good. */
  lines: number;
  events: number;
  checkpoints: number;
  lastCheckpointSeq: number | null;
  firstBad: AuditProblem | null;
  warnings: string[];
  /** The genesis line's `previous` (the rotated segment this log continues), or null. */
  previous: string | null;
  /** Hash of the last good line (what a segment rotated after it names), or null. */
  lastHash: string | null;
  /** The log ends with a `close` checkpoint (as a rotated segment must). */
  closed: boolean;
}

/**
 * Verifies the log at `path`. Returns the result (never throws for a bad
 * log); throws KcmError `audit_unavailable` when the log cannot be read.
 */
export function verifyAuditLog(path: string, o: VerifyOptions): VerifyResult {
  const headPath = o.head === undefined ? `${path}.head` : o.head;
  const warnings: string[] = [];
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    throw new KcmError('audit_unavailable', `cannot open the audit log (${errnoOf(err)})`);
  }
  const checker = new ChainChecker(o.publicKey);
  const rawAt = new Map<number, Buffer>();
  let firstBad: AuditProblem | null = null;
  let head: { line: Buffer; cp: CheckpointLine } | null = null;
  let genesis: Buffer | null = null;
  try {
    if (headPath !== null) {
      const h = readHead(headPath, o.publicKey);
      if ('problem' in h) firstBad = h;
      else head = h;
    } else {
      warnings.push('no head file checked: a log cut back to an earlier checkpoint cannot be detected');
    }
    if (!firstBad) {
      for (const l of readLines(fd)) {
        firstBad = checker.next(l.raw, l.complete);
        if (firstBad) break;
        genesis ??= l.raw;
        if (head && checker.position.nextSeq - 1 === head.cp.seq) rawAt.set(head.cp.seq, l.raw);
      }
    }
  } finally {
    closeSync(fd);
  }
  const pos = checker.position;
  const last = checker.last;
  if (!firstBad && last === null) firstBad = { seq: 0, line: 1, problem: 'the log is empty' };
  // Rule 8: the log must reach the checkpoint the signed head names, byte for byte.
  if (!firstBad && head) {
    const seen = rawAt.get(head.cp.seq);
    if (pos.nextSeq <= head.cp.seq) {
      firstBad = {
        seq: pos.nextSeq,
        line: pos.nextSeq + 1,
        problem: `missing: the log ends at seq ${pos.nextSeq - 1} but the signed head names checkpoint seq ${head.cp.seq} (tail truncated)`,
      };
    } else if (!seen?.equals(head.line)) {
      firstBad = {
        seq: head.cp.seq,
        line: head.cp.seq + 1,
        problem: 'differs from the checkpoint in the signed head file',
      };
    }
  }
  // Rule 7: every event must be covered by a signed checkpoint.
  const lc = checker.lastCheckpoint;
  if (!firstBad && last && last.type !== 'checkpoint') {
    const from = (lc?.seq ?? 0) + 1;
    const msg = `seq ${from}..${last.seq} are not covered by a signed checkpoint (writer still running or crashed, or the tail was cut or appended to)`;
    if (o.allowUnsignedTail) warnings.push(`unsigned tail: ${msg}`);
    else firstBad = { seq: from, line: from + 1, problem: msg };
  }
  if (!firstBad && last?.type === 'checkpoint' && last.reason !== 'close')
    warnings.push(`the last checkpoint (seq ${last.seq}) is not a close checkpoint: the writer is running or crashed`);
  const good = firstBad ? Math.min(firstBad.seq, pos.nextSeq) : pos.nextSeq;
  return {
    ok: firstBad === null,
    lines: good,
    events: pos.events,
    checkpoints: checker.checkpoints,
    lastCheckpointSeq: lc?.seq ?? null,
    firstBad,
    warnings,
    previous: genesis ? ((parseLine(genesis).parsed as GenesisLine).previous ?? null) : null,
    lastHash: last?.hash ?? null,
    closed: last?.type === 'checkpoint' && last.reason === 'close',
  };
}

/** Reads and checks the signed head file: one checkpoint line, validly signed. */
export function readHead(path: string, publicKey: string): { line: Buffer; cp: CheckpointLine } | AuditProblem {
  const problem = (p: string): AuditProblem => ({ seq: 0, line: 0, problem: `head file: ${p}` });
  let text: Buffer;
  try {
    text = readFileSync(path);
  } catch (err) {
    return problem(`cannot be read (${errnoOf(err)}); pass --no-head to check the log without it`);
  }
  if (text.at(-1) !== 0x0a) return problem('malformed (no terminating newline)');
  const line = text.subarray(0, -1);
  try {
    const { parsed, body } = parseLine(line);
    if (parsed.type !== 'checkpoint') return problem('does not hold a checkpoint');
    if (chainHash(parsed.prev, body) !== parsed.hash) return problem('hash does not match the checkpoint');
    if (!checkpointSignatureValid(parsed, publicKey)) return problem('signature is invalid');
    return { line: Buffer.from(line), cp: parsed };
  } catch (err) {
    if (err instanceof KcmError) return problem(`malformed (${err.detail ?? err.message})`);
    throw err;
  }
}
