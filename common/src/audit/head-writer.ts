/**
 * Keeps the signed head file (head-file.ts) naming the newest durable
 * checkpoint without making the event loop wait for the disk.
 *
 * - `later(line)`: the group commit's path. The temporary file is written and
 *   fsynced on libuv's thread pool; only the final rename, a metadata
 *   operation of microseconds, runs on the event loop, from the completion
 *   callback. One background write at a time; a newer line given meanwhile
 *   replaces any older one still waiting (the head file may lag by a
 *   checkpoint, never go back, and always names a durable one).
 * - `now(line)`: the synchronous paths (`record()`, `checkpoint()`, the open
 *   checkpoint, rotation, close, `fsync: false`), which already wait for the
 *   disk. It writes at once and supersedes every
 *   background write started or waiting before it: their rename never
 *   happens, so an older checkpoint can never land over a newer one, nor on
 *   a head file a rotation has just moved to a segment (the rotation's
 *   renames run on the event loop too, so they cannot interleave with a
 *   background rename).
 * - `cancel()`: drops what is waiting or in flight (at close).
 *
 * Background writes use temporary names of their own
 * (`<head>.tmp-bg-<pid>-<n>`), never shared with `now` nor with another
 * writer of the same log (a log closed and opened again while its last
 * background write still runs); a superseded or failed one is removed when
 * its write ends, and those of a process that no longer runs (a crash) when
 * the log opens. Failures go to `onError` (the log counts and alerts; a head
 * file that lags is not an audit failure: the log itself is durable).
 */
import { close, fsync, open, readdirSync, renameSync, rmSync, write } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { writeHeadFile } from './head-file.ts';

/** Numbers the writers of this process, so no two share a temporary name. */
let writers = 0;

export class HeadWriter {
  readonly #path: string;
  readonly #tmp: string;
  readonly #fsync: boolean;
  readonly #onError: (err: unknown) => void;
  /** Bumped by now() and cancel(): a background write started under an older value does not rename. */
  #generation = 0;
  #inFlight = false;
  #waiting: string | undefined;
  #idle: (() => void)[] = [];

  constructor(path: string, o: { fsync: boolean; onError: (err: unknown) => void }) {
    this.#path = path;
    this.#tmp = `${path}.tmp-bg-${process.pid}-${++writers}`;
    this.#fsync = o.fsync;
    this.#onError = o.onError;
    removeLeftovers(path);
  }

  /** Whether a background write is running or waiting. */
  get busy(): boolean {
    return this.#inFlight || this.#waiting !== undefined;
  }

  /** Makes `line` the head off the event loop (newest wins); without fsync there is no disk wait, so it writes at once. */
  later(line: string): void {
    if (!this.#fsync) {
      this.now(line);
      return;
    }
    this.#waiting = line;
    if (!this.#inFlight) this.#start();
  }

  /** Makes `line` the head now, on this thread; earlier background writes are superseded. */
  now(line: string): void {
    this.cancel();
    try {
      writeHeadFile(this.#path, line, this.#fsync);
    } catch (err) {
      this.#report(err);
    }
  }

  /** Drops the waiting line and the rename of the write in flight. */
  cancel(): void {
    this.#generation++;
    this.#waiting = undefined;
    if (!this.#inFlight) this.#wake();
  }

  /** Resolves once no background write runs or waits (tests, diagnostics). */
  idle(): Promise<void> {
    if (!this.busy) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  #start(): void {
    const line = this.#waiting as string;
    this.#waiting = undefined;
    this.#inFlight = true;
    const generation = this.#generation;
    writeFileSynced(this.#tmp, Buffer.from(`${line}\n`, 'utf8'), (err) => {
      this.#inFlight = false;
      let renamed = false;
      try {
        if (err) this.#report(err);
        else if (generation === this.#generation) {
          renameSync(this.#tmp, this.#path);
          renamed = true;
        }
      } catch (e) {
        this.#report(e);
      } finally {
        if (!renamed) rmQuietly(this.#tmp);
        if (this.#waiting !== undefined) this.#start();
        else this.#wake();
      }
    });
  }

  /** Hands `err` to onError, which must not break the writer by throwing. */
  #report(err: unknown): void {
    try {
      this.#onError(err);
    } catch {
      // The log's handler counts and alerts; a failure there must not stop the next write.
    }
  }

  #wake(): void {
    for (const f of this.#idle.splice(0)) f();
  }
}

/** Creates or truncates `path`, writes `buf` and fsyncs it, all on the thread pool; `done` runs on the event loop. */
function writeFileSynced(path: string, buf: Buffer, done: (err: Error | null) => void): void {
  open(path, 'w', 0o644, (err, fd) => {
    if (err) return done(err);
    const finish = (e: Error | null) => close(fd, (ce) => done(e ?? ce));
    const from = (off: number) => {
      if (off >= buf.length) return fsync(fd, finish);
      write(fd, buf, off, buf.length - off, null, (we, n) => (we ? finish(we) : from(off + n)));
    };
    from(0);
  });
}

/**
 * Removes the background temporary files beside `head` that a process no
 * longer running left (a crash: never renamed, they name nothing), and the
 * unnumbered name of earlier versions. Those of this process belong to its
 * writers (an earlier one of this log removes its own when its write ends),
 * those of another live process to that process.
 */
function removeLeftovers(head: string): void {
  const prefix = `${basename(head)}.tmp-bg`;
  let names: string[];
  try {
    names = readdirSync(dirname(head));
  } catch {
    return; // the directory is made with the log; nothing to remove yet
  }
  for (const n of names) {
    if (!n.startsWith(prefix)) continue;
    const pid = /^-(\d+)-\d+$/.exec(n.slice(prefix.length))?.[1];
    if (n === prefix || (pid !== undefined && !running(Number(pid)))) rmQuietly(join(dirname(head), n));
  }
}

/** Whether process `pid` exists (signal 0 checks without sending anything). */
function running(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

function rmQuietly(path: string): void {
  try {
    rmSync(path, { force: true });
  } catch {
    // A leftover temporary file is never renamed, so it names nothing; the next start removes it.
  }
}
