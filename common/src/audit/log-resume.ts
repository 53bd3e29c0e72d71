/**
 * Resuming an existing audit log at start-up (docs/audit.md "Restart"): the
 * chain is checked from the checkpoint the signed head file names to the end
 * (or from the first line when there is no head file yet), so the writer
 * never appends onto a broken or cut chain. An incomplete last line (a crash
 * in the middle of a write, never acknowledged to any caller) is removed.
 */
import { existsSync, fstatSync, ftruncateSync, readSync } from 'node:fs';
import { KcmError } from '../errors.ts';
import { readHead } from './audit-verifier.ts';
import { ChainChecker, type ChainPosition, START } from './chain-checker.ts';
import { findLineStart, readLines } from './log-lines.ts';

export interface ResumeState {
  position: ChainPosition;
  /** The last complete line, with its newline. */
  lastLine: Buffer;
  /** File size after any repair. */
  size: number;
  /** Bytes of an incomplete last line that were removed (0 when none). */
  repairedBytes: number;
}

/**
 * Checks the tail of the log open at `fd` (O_RDWR) and returns where the
 * chain continues. Throws KcmError `audit_tampered` naming the first bad
 * record when the tail is broken, the head file is invalid, or the log does
 * not reach the head's checkpoint.
 */
export function resumeLog(fd: number, headPath: string, publicKey: string): ResumeState {
  let from = START;
  let offset = 0;
  let headLine: Buffer | null = null;
  if (existsSync(headPath)) {
    const head = readHead(headPath, publicKey);
    if ('problem' in head) throw new KcmError('audit_tampered', head.problem);
    offset = findLineStart(fd, head.cp.seq);
    if (offset < 0)
      throw new KcmError('audit_tampered', `the log does not hold the head's checkpoint seq ${head.cp.seq}`);
    from = { nextSeq: head.cp.seq, prev: head.cp.prev, logId: head.cp.logId, events: head.cp.events };
    headLine = head.line;
  }
  const checker = new ChainChecker(publicKey, from);
  let lastLine: Buffer | null = null;
  let end = offset;
  let first = true;
  for (const l of readLines(fd, offset)) {
    if (!l.complete) {
      ftruncateSync(fd, l.offset);
      return finish(checker, lastLine, l.offset, l.raw.length);
    }
    if (first && headLine && !l.raw.equals(headLine))
      throw new KcmError('audit_tampered', `seq ${from.nextSeq} differs from the signed head file`);
    first = false;
    const bad = checker.next(l.raw);
    if (bad) throw new KcmError('audit_tampered', `seq ${bad.seq} (line ${bad.line}): ${bad.problem}`);
    lastLine = Buffer.concat([l.raw, Buffer.from('\n')]);
    end = l.offset + lastLine.length;
  }
  if (end !== fstatSync(fd).size) throw new KcmError('audit_tampered', 'the log changed while it was being resumed');
  return finish(checker, lastLine, end, 0);
}

function finish(checker: ChainChecker, lastLine: Buffer | null, size: number, repairedBytes: number): ResumeState {
  // A crash inside the very first write leaves nothing complete: start the log afresh.
  if (!lastLine && size === 0 && checker.position.nextSeq === 0)
    return { position: { ...START }, lastLine: Buffer.alloc(0), size, repairedBytes };
  if (!lastLine || checker.position.logId === null)
    throw new KcmError('audit_tampered', 'the log has no complete genesis line');
  return { position: { ...checker.position }, lastLine, size, repairedBytes };
}

/** True when the `len` bytes before `end` in the file equal `expected` (the writer's last line). */
export function tailMatches(fd: number, end: number, expected: Buffer): boolean {
  if (end < expected.length) return false;
  const buf = Buffer.alloc(expected.length);
  readSync(fd, buf, 0, buf.length, end - expected.length);
  return buf.equals(expected);
}
