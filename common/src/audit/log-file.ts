/**
 * The file under an audit log (audit-log.ts keeps the chain): synchronous
 * appends, fdatasync on the calling thread or on libuv's thread pool, the cut
 * back to the last durable byte after a failure, and reopening with checks.
 *
 * Two open file descriptions of the one file: writes and synchronous syncs
 * use the first; background syncs use the second, opened at the same moment
 * on the same inode (`/proc/self/fd/N`), before any write it must cover.
 * Linux reports a writeback error once per open file description, to the
 * first fsync that asks, and never to a description opened after it, so a
 * background sync can never swallow the error a synchronous one must see,
 * or the other way round. At most one background sync runs at a time (its end
 * starts the next), and a description is never closed while a background
 * sync still uses it: its number could otherwise be reused by the next open
 * and the sync land on another file.
 */
import {
  closeSync,
  constants,
  fdatasync,
  fdatasyncSync,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  openSync,
  writeSync,
} from 'node:fs';
import { KcmError } from '../errors.ts';
import { tailMatches } from './log-resume.ts';

/** What a background sync reports: its error (null when it succeeded) and whether the file it synced is still this one's. */
export type SyncDone = (err: NodeJS.ErrnoException | null, current: boolean) => void;

export class LogFile {
  readonly path: string;
  #fd: number | null;
  #syncFd: number | null = null;
  /** The file's identity, so a reopen can tell it was replaced. */
  #dev: number;
  #ino: number;
  /** The description a background sync is using, and whether to close it once that sync returns. */
  #syncing: { fd: number; closeAfter: boolean } | null = null;

  /**
   * Adopts `fd`, open O_RDWR | O_APPEND on the file that is (or, for a
   * rotation's new log, is about to be renamed to) `path`, and opens the
   * background syncs' description on it now. Closes `fd` and throws when
   * that cannot be done.
   */
  constructor(path: string, fd: number) {
    this.path = path;
    this.#fd = fd;
    try {
      const st = fstatSync(fd);
      this.#dev = st.dev;
      this.#ino = st.ino;
      this.#syncFd = openSyncDescription(fd, st);
    } catch (err) {
      closeQuietly(fd);
      throw err;
    }
  }

  /** Opens (creating, 0600) the file at `path`. Throws the file-system error. */
  static open(path: string, create: boolean): LogFile {
    const flags = constants.O_RDWR | constants.O_APPEND | (create ? constants.O_CREAT : 0);
    return new LogFile(path, openSync(path, flags, 0o600));
  }

  /** The write descriptor, or null once closed (diagnostics and resume). */
  get fd(): number | null {
    return this.#fd;
  }

  /** The background syncs' descriptor, or null once closed (diagnostics and tests). */
  get syncFd(): number | null {
    return this.#syncFd;
  }

  /** A background sync is running. */
  get syncing(): boolean {
    return this.#syncing !== null;
  }

  /** Appends `buf` synchronously. Throws the file-system error (EBADF when closed). */
  write(buf: Buffer): void {
    const fd = this.#writeFd();
    for (let off = 0; off < buf.length; ) off += writeSync(fd, buf, off, buf.length - off);
  }

  /** fdatasync on this thread through the write description. Throws the file-system error. */
  syncNow(): void {
    fdatasyncSync(this.#writeFd());
  }

  /**
   * fdatasync on the thread pool through the sync description; `done` gets
   * its outcome. Throws when one is already running or the file is closed
   * (the caller fails what waits).
   */
  syncInBackground(done: SyncDone): void {
    if (this.#syncing) throw new Error('LogFile: a background sync is already running');
    const fd = this.#syncFd;
    if (fd === null || this.#fd === null)
      throw Object.assign(new Error('the audit log file is closed'), { code: 'EBADF' });
    const job = { fd, closeAfter: false };
    this.#syncing = job;
    fdatasync(fd, (err) => {
      this.#syncing = null;
      if (job.closeAfter) closeQuietly(fd);
      done(err, !job.closeAfter && fd === this.#syncFd);
    });
  }

  /**
   * Cuts the file back to `size` bytes through the open write description
   * and syncs the cut, so records refused to their callers cannot come back
   * after a crash. False when it cannot (the caller reopens and cuts then).
   */
  cutTo(size: number): boolean {
    if (this.#fd === null) return false;
    try {
      if (fstatSync(this.#fd).size > size) {
        ftruncateSync(this.#fd, size);
        fsyncSync(this.#fd);
      }
      return true;
    } catch {
      return false;
    }
  }

  /**
   * After a failure: closes both descriptions and opens the file again by
   * name, then checks that it is the same file (device and inode), that it
   * holds at least `size` bytes and that `lastLine` ends there; only then
   * cuts anything past `size` (and syncs the cut). Throws KcmError
   * `audit_unavailable` when the file changed (replaced, shortened, edited),
   * else the file-system error. The fresh descriptors sync the file at once
   * (a cut made through the old one may not be on disk yet: its fsync can
   * fail on the error the failure was about, which a new description is not
   * told again).
   */
  reopen(size: number, lastLine: Buffer): void {
    this.#closeDescriptions();
    const fd = openSync(this.path, constants.O_RDWR | constants.O_APPEND);
    let syncFd: number | null = null;
    try {
      const st = fstatSync(fd);
      if (st.dev !== this.#dev || st.ino !== this.#ino || st.size < size || !tailMatches(fd, size, lastLine)) {
        throw new KcmError('audit_unavailable', 'the audit log changed while it could not be written (tampered?)');
      }
      syncFd = openSyncDescription(fd, st);
      if (st.size > size) ftruncateSync(fd, size);
      fsyncSync(fd);
    } catch (err) {
      closeSync(fd);
      if (syncFd !== null) closeSync(syncFd);
      throw err;
    }
    this.#fd = fd;
    this.#syncFd = syncFd;
  }

  /** Closes both descriptions (the sync one once its background sync returns). Idempotent. */
  close(): void {
    this.#closeDescriptions();
  }

  #writeFd(): number {
    if (this.#fd === null) throw Object.assign(new Error('the audit log file is closed'), { code: 'EBADF' });
    return this.#fd;
  }

  #closeDescriptions(): void {
    if (this.#fd !== null) closeQuietly(this.#fd);
    this.#fd = null;
    const s = this.#syncFd;
    this.#syncFd = null;
    if (s === null) return;
    if (this.#syncing?.fd === s) this.#syncing.closeAfter = true;
    else closeQuietly(s);
  }
}

/** A second open file description of the file open at `fd` (not a dup: its own error state), checked to be that file. */
function openSyncDescription(fd: number, st: { dev: number; ino: number }): number {
  const sync = openSync(`/proc/self/fd/${fd}`, constants.O_RDONLY);
  const again = fstatSync(sync);
  if (again.dev !== st.dev || again.ino !== st.ino) {
    closeSync(sync);
    throw new KcmError('audit_unavailable', 'cannot open a second description of the audit log');
  }
  return sync;
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // Already closed under us (EBADF): nothing more to release.
  }
}
