/**
 * The signed head file (`<log>.head`): a copy of the newest checkpoint line,
 * replaced atomically (write a temporary file, fsync, rename) at every
 * checkpoint. The verifier requires the log to reach that checkpoint, byte
 * for byte, which is how a tail cut back to an earlier checkpoint is caught
 * (docs/audit.md "Truncation").
 */
import { closeSync, fsyncSync, openSync, renameSync, writeSync } from 'node:fs';

/** Replaces the head file with `line` + newline. Throws the file-system error (callers alert and go on). */
export function writeHeadFile(path: string, line: string, fsync: boolean): void {
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, 'w', 0o644);
  try {
    const buf = Buffer.from(`${line}\n`, 'utf8');
    for (let off = 0; off < buf.length; ) off += writeSync(fd, buf, off, buf.length - off);
    if (fsync) fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}
