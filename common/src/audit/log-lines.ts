/**
 * Reads an audit log as raw lines (bytes, not strings: the verifier compares
 * bytes), in bounded chunks so a large log never sits in memory at once, and
 * finds where the last lines of a log start (or its last line) without
 * reading all of it.
 */
import { fstatSync, readSync } from 'node:fs';

const CHUNK = 1 << 20;

export interface RawLine {
  /** Line bytes without the newline. */
  raw: Buffer;
  /** Byte offset of the line in the file. */
  offset: number;
  /** False for a last line that has no terminating newline. */
  complete: boolean;
}

/** Yields the lines of the open file `fd` from byte `from` to its current end. */
export function* readLines(fd: number, from = 0): Generator<RawLine> {
  const end = fstatSync(fd).size;
  let pos = from;
  let carry: Buffer = Buffer.alloc(0);
  let carryOffset = from;
  const buf = Buffer.allocUnsafe(CHUNK);
  while (pos < end) {
    const n = readSync(fd, buf, 0, Math.min(CHUNK, end - pos), pos);
    if (n === 0) break;
    pos += n;
    let data = Buffer.concat([carry, buf.subarray(0, n)]);
    let start = 0;
    for (let nl = data.indexOf(0x0a); nl !== -1; nl = data.indexOf(0x0a, start)) {
      yield { raw: Buffer.from(data.subarray(start, nl)), offset: carryOffset + start, complete: true };
      start = nl + 1;
    }
    carryOffset += start;
    data = data.subarray(start);
    carry = Buffer.from(data);
  }
  if (carry.length > 0) yield { raw: carry, offset: carryOffset, complete: false };
}

/** A line is at most a few kilobytes (bounded fields): lastLine reads no further back than this. */
const MAX_LINE = 64 * 1024;

/** The last complete line of the open file `fd` (without its newline), or null when it has none. */
export function lastLine(fd: number): Buffer | null {
  const size = fstatSync(fd).size;
  const span = Math.min(size, MAX_LINE);
  const buf = Buffer.alloc(span);
  readSync(fd, buf, 0, span, size - span);
  if (buf.at(-1) !== 0x0a) return null;
  const start = buf.lastIndexOf(0x0a, buf.length - 2) + 1;
  if (start === 0 && span < size) return null;
  return buf.subarray(start, buf.length - 1);
}

/**
 * The byte offset where the line holding `"seq":<seq>,` starts, searching
 * backwards from the end of the file in growing windows; -1 when no line
 * of the file starts with that sequence number.
 */
export function findLineStart(fd: number, seq: number): number {
  const size = fstatSync(fd).size;
  const marker = Buffer.from(`{"seq":${seq},`);
  for (let window = 64 * 1024; ; window *= 4) {
    const start = Math.max(0, size - window);
    const buf = Buffer.allocUnsafe(size - start);
    readSync(fd, buf, 0, buf.length, start);
    for (let at = buf.lastIndexOf(marker); at !== -1; at = at === 0 ? -1 : buf.lastIndexOf(marker, at - 1)) {
      if (at === 0 ? start === 0 : buf[at - 1] === 0x0a) return start + at;
    }
    if (start === 0) return -1;
  }
}
