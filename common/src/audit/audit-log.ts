/**
 * The tamper-evident audit log (ADR-901/902, docs/audit.md): an append-only
 * file of canonical JSON lines, chained by SHA-256, with Ed25519-signed
 * checkpoints every N events or T milliseconds, on open and on clean close,
 * and a signed head file (`<log>.head`) naming the newest checkpoint.
 *
 * Two ways to append, both durable (written and, by default, fdatasync'ed)
 * before they report success:
 * - `record(e)`: synchronous, for the Core's admin path (it is an AuditSink):
 *   write and fdatasync on the calling thread;
 * - `append(e)`: group commit for hot paths: one write per event-loop turn
 *   (synchronous, so lines keep call order), then one fdatasync on libuv's
 *   thread pool for every write made since the last one began. The promise
 *   resolves once an fdatasync that began after its write has succeeded; the
 *   event loop never waits for the disk.
 * Lines are chained at write time, in call order, so both may be mixed (a
 * `record()` also makes every earlier `append` durable).
 *
 * The file itself (descriptors, the background sync's own description, the
 * cut and the checked reopen) is log-file.ts.
 *
 * Fail closed without freezing: a failed write or fdatasync makes every
 * record not yet durable fail with KcmError `audit_unavailable` (callers
 * answer 503) and raises an `audit.failure` alert; the chain steps back to the
 * last durable line and the file is cut back to it and synced (now, or by
 * the next append's reopen, which also checks it is the same file with the
 * last good line still in place).
 * Exporters get each durable line through `onDurable`, in order, which must
 * not block (see OtlpShipper); the head file only ever names a durable
 * checkpoint.
 *
 * Rotation (`rotateBytes`): once the file reaches the size, the next write
 * first closes it with a signed `close` checkpoint, renames it (and its head
 * file) to the next segment `<path>.NNNNNN` and starts a new log whose
 * genesis names that checkpoint's hash, so the segments form one chain
 * (log-segments.ts); `keepSegments` removes the oldest beyond a count.
 */

import { randomBytes } from 'node:crypto';
import {
  closeSync,
  constants,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  renameSync,
  rmSync,
  statSync,
} from 'node:fs';
import { dirname } from 'node:path';
import type { AlertSink } from '../alerts/alert-types.ts';
import { KcmError } from '../errors.ts';
import type { AuditEvent, AuditSink } from './audit-event.ts';
import type { ChainPosition } from './chain-checker.ts';
import { CheckpointSigner, errnoOf } from './checkpoint-signer.ts';
import { HeadWriter } from './head-writer.ts';
import { LogFile } from './log-file.ts';
import { lastLine, readLines } from './log-lines.ts';
import { resumeLog } from './log-resume.ts';
import { listSegments, MAX_SEGMENT, nextSegmentNumber, segmentPath } from './log-segments.ts';
import {
  type AuditLine,
  type CheckpointReason,
  checkpointBody,
  checkpointSigningInput,
  eventBody,
  eventFields,
  GENESIS_PREV,
  genesisBody,
  parseLine,
  sealLine,
} from './record-format.ts';
import { looksLikeSecret, REDACTED } from './redaction-guard.ts';

export interface AuditLogOptions {
  /** The log file; created (0600) with its directory when missing. */
  path: string;
  /** The Ed25519 seed file; default `<path>.key` (public key in `<path>.pub`). Ignored when `signer` is given. */
  keyFile?: string;
  signer?: CheckpointSigner;
  /** Write a checkpoint after this many events (default 1000, 1–1,000,000). */
  checkpointEvery?: number;
  /** …or when events are pending this long (ms, default 10,000; 0 = only by count and at close). */
  checkpointIntervalMs?: number;
  /** fdatasync after every write (default true). False survives a process crash, not a power loss. */
  fsync?: boolean;
  /** Rotate to a new segment once the file holds this many bytes (4 KiB–1 TiB; default: never). */
  rotateBytes?: number;
  /** Keep this many rotated segments, removing the oldest (1–1,000,000; default: keep all). */
  keepSegments?: number;
  /** Gets `audit.failure` and `audit.redacted` alerts. */
  alerter?: AlertSink;
  /** Called with the lines of each durable write, in order (exporters, e.g. OtlpShipper.enqueue). Must not block. */
  onDurable?: (lines: readonly DurableLine[]) => void;
  now?: () => number;
}

/** A line just made durable: its exact bytes (without newline) and its parsed fields. */
export interface DurableLine {
  line: string;
  record: AuditLine;
}

interface Pending {
  fields: AuditEvent;
  time: string;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/** Where the chain stands after a write: what the next line chains from. */
interface ChainState {
  pos: ChainPosition;
  size: number;
  lastLine: Buffer;
  sinceCheckpoint: number;
}

/** A write not yet durable, and what to do once it is. */
interface Unsynced {
  /** Write number (1, 2, …): an fdatasync begun after write n covers every write ≤ n. */
  id: number;
  lines: DurableLine[];
  /** The checkpoint line it holds, for the head file. */
  checkpoint: string | null;
  waiters: readonly Pending[];
  after: ChainState;
}

/** How a commit becomes durable: fdatasync on this thread, or on the thread pool. */
type SyncMode = 'now' | 'background';

const noop = (): void => {};

export class AuditLog implements AuditSink {
  readonly path: string;
  readonly headPath: string;
  readonly publicKey: string;
  /** Counters: lines written, failed writes, redacted fields, group-commit batches, head file failures, rotations, segments removed. */
  readonly stats = { lines: 0, writeFailures: 0, redacted: 0, batches: 0, headFailures: 0, rotations: 0, removed: 0 };
  readonly #o: AuditLogOptions;
  readonly #signer: CheckpointSigner;
  readonly #ownsSigner: boolean;
  readonly #every: number;
  readonly #rotateBytes: number | undefined;
  readonly #keep: number | undefined;
  /** File size at which the next write rotates first (pushed on after a failed rotation). */
  #rotateAt: number;
  /** The file being written (replaced by a rotation). */
  #file: LogFile;
  #pos: ChainPosition;
  #size: number;
  #lastLine: Buffer;
  #sinceCheckpoint = 0;
  /** The chain as of the newest durable line: where a failed write or fdatasync steps back to. */
  #durable!: ChainState;
  /** Writes not yet durable, oldest first. */
  #unsynced: Unsynced[] = [];
  #writes = 0;
  #broken = false;
  #closed = false;
  #queue: Pending[] = [];
  #scheduled = false;
  #timer: NodeJS.Timeout | undefined;
  /** The head file: written off the event loop after a background sync, at once on the synchronous paths. */
  readonly #head: HeadWriter;

  /**
   * Opens (or creates) the log, loading or creating the signing key, resumes
   * the chain and writes an `open` checkpoint. Throws KcmError
   * `audit_unavailable` when the file or key cannot be opened or written,
   * `audit_tampered` when the existing log fails its tail check,
   * `invalid_config` on bad options.
   */
  constructor(o: AuditLogOptions) {
    this.#o = o;
    this.path = o.path;
    this.headPath = `${o.path}.head`;
    this.#every = intOption('checkpointEvery', o.checkpointEvery, 1, 1_000_000, 1000);
    const interval = intOption('checkpointIntervalMs', o.checkpointIntervalMs, 0, 86_400_000, 10_000);
    this.#rotateBytes =
      o.rotateBytes === undefined ? undefined : intOption('rotateBytes', o.rotateBytes, 4096, 2 ** 40, 0);
    this.#rotateAt = this.#rotateBytes ?? Number.POSITIVE_INFINITY;
    this.#keep = o.keepSegments === undefined ? undefined : intOption('keepSegments', o.keepSegments, 1, 1_000_000, 0);
    try {
      mkdirSync(dirname(o.path), { recursive: true, mode: 0o700 });
      this.#head = new HeadWriter(this.headPath, {
        fsync: o.fsync !== false,
        onError: (err) => {
          this.stats.headFailures++;
          this.#alert('warning', `cannot update the audit head file (${errnoOf(err)})`);
        },
      });
      this.#finishInterruptedRotation();
      this.#file = LogFile.open(o.path, true);
    } catch (err) {
      throw this.#fail(err, 'cannot open the audit log');
    }
    try {
      this.#ownsSigner = !o.signer;
      this.#signer = o.signer ?? CheckpointSigner.loadOrCreate(o.keyFile ?? `${o.path}.key`);
      this.publicKey = this.#signer.publicKey;
      const r = resumeLog(this.#file.fd as number, this.headPath, this.publicKey);
      if (r.repairedBytes > 0) this.#alert('warning', `removed an incomplete last line (${r.repairedBytes} bytes)`);
      this.#pos = r.position;
      this.#size = r.size;
      this.#lastLine = r.lastLine;
    } catch (err) {
      this.#file.close();
      throw this.#fail(err, 'cannot resume the audit log');
    }
    const lines: string[] = [];
    if (this.#size === 0) {
      const g = this.#genesis(undefined);
      lines.push(g.line);
      this.#pos = g.pos;
    }
    this.#durable = this.#state();
    try {
      this.#commit([], 'now', 'open', lines);
    } catch (err) {
      this.#file.close();
      throw err;
    }
    if (interval > 0) {
      this.#timer = setInterval(() => this.#tick(), interval);
      this.#timer.unref();
    }
  }

  /** The open file descriptor (diagnostics), or null while the log is broken or closed. */
  get fd(): number | null {
    return this.#file.fd;
  }

  /** The descriptor background syncs use, or null once closed (diagnostics and tests). */
  get syncFd(): number | null {
    return this.#file.syncFd;
  }

  /** Sequence number the next line will get. */
  get nextSeq(): number {
    return this.#pos.nextSeq;
  }

  /** Records written but not yet durable (waiting for their fdatasync). */
  get pendingSync(): number {
    let n = 0;
    for (const u of this.#unsynced) n += u.waiters.length;
    return n;
  }

  /**
   * Appends one record synchronously (together with any queued `append`s,
   * before it), durable on return. Throws KcmError `audit_invalid_record` on a
   * bad field, `audit_unavailable` when the log cannot be written or is closed.
   */
  record(e: AuditEvent): void {
    const p = this.#prepare(e, noop, noop);
    this.#queue.push(p);
    this.#flush('now');
  }

  /**
   * Queues one record for the next group commit (one write per event-loop
   * turn, then an fdatasync off the event loop); resolves once it is durable.
   * Rejects with `audit_unavailable` when that write or fdatasync fails or the
   * log is closed, with `audit_invalid_record` on a malformed field (then
   * nothing is queued).
   */
  append(e: AuditEvent): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#queue.push(this.#prepare(e, resolve, reject));
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => {
          this.#scheduled = false;
          this.#flush('background');
        });
      }
    });
  }

  /**
   * Resolves once the head file names the newest durable checkpoint: after a
   * background sync it is written off the event loop (head-writer.ts), so it
   * may lag the records by a moment. For tests and diagnostics.
   */
  headWritten(): Promise<void> {
    return this.#head.idle();
  }

  /** Writes a checkpoint now (if events are unsigned). Throws `audit_unavailable` when it cannot be written. */
  checkpoint(): void {
    if (this.#closed) throw new KcmError('audit_unavailable', 'the audit log is closed');
    this.#flush('now');
    if (this.#sinceCheckpoint > 0) this.#commit([], 'now', 'periodic');
  }

  /**
   * Writes queued records and a `close` checkpoint, closes the file and wipes
   * the signing key it loaded. Idempotent. Throws `audit_unavailable` when the
   * final write fails (the file is closed anyway; the log then ends unsigned).
   */
  close(): void {
    if (this.#closed) return;
    clearInterval(this.#timer);
    try {
      this.#flush('now');
      this.#commit([], 'now', 'close');
    } finally {
      this.#closed = true;
      this.#head.cancel();
      this.#file.close();
      if (this.#ownsSigner) this.#signer.destroy();
    }
  }

  #prepare(e: AuditEvent, resolve: () => void, reject: (err: unknown) => void): Pending {
    if (this.#closed) throw new KcmError('audit_unavailable', 'the audit log is closed');
    const fields = eventFields(e);
    for (const k of ['actor', 'resource', 'reason', 'correlationId'] as const) {
      const v = fields[k];
      if (v !== undefined && looksLikeSecret(v)) {
        fields[k] = k === 'correlationId' ? 'redacted' : REDACTED;
        this.stats.redacted++;
        this.#o.alerter?.alert({
          kind: 'audit.redacted',
          severity: 'warning',
          summary: `audit field ${k} of action ${fields.action} looked like key material and was redacted`,
        });
      }
    }
    return { fields, time: this.#time(), resolve, reject };
  }

  /** Writes every queued record in one write. Synchronous callers (`now`) get the error thrown. */
  #flush(mode: SyncMode): void {
    if (this.#queue.length === 0) return;
    if (this.#size >= this.#rotateAt) this.#rotate();
    const batch = this.#queue;
    this.#queue = [];
    try {
      this.#commit(batch, mode);
      this.stats.batches++;
    } catch (err) {
      for (const p of batch) p.reject(err);
      if (mode === 'now') throw err;
    }
  }

  /**
   * Chains `batch` (after any `pre` lines) from the current position, adds a
   * checkpoint when one is due or `force` names one, writes it all at once and
   * only then advances the position. Its records resolve, its checkpoint goes
   * to the head file and its lines to `onDurable` once it is durable: at once
   * with `now` (or without fsync), else when a background fdatasync covers it.
   * Throws `audit_unavailable` (a failed write, or fdatasync with `now`).
   */
  #commit(batch: readonly Pending[], mode: SyncMode, force?: CheckpointReason, pre: string[] = []): void {
    if (this.#closed) throw new KcmError('audit_unavailable', 'the audit log is closed');
    const pos = { ...this.#pos };
    const lines = [...pre];
    const objs: AuditLine[] = pre.map((l) => parseLine(Buffer.from(l, 'utf8')).parsed);
    for (const p of batch) {
      const { line, hash } = sealLine(eventBody(pos.nextSeq, p.time, p.fields), pos.prev);
      lines.push(line);
      objs.push({ type: 'event', seq: pos.nextSeq, time: p.time, ...p.fields, prev: pos.prev, hash });
      pos.nextSeq++;
      pos.prev = hash;
      pos.events++;
    }
    const since = this.#sinceCheckpoint + batch.length;
    let checkpoint: string | null = null;
    const reason: CheckpointReason | undefined = force ?? (since >= this.#every ? 'periodic' : undefined);
    if (reason) {
      const c = this.#checkpointLine(pos, reason);
      checkpoint = c.line;
      lines.push(c.line);
      objs.push(c.record);
    }
    if (lines.length === 0) return;
    const buf = Buffer.from(`${lines.join('\n')}\n`, 'utf8');
    this.#write(buf);
    this.#pos = pos;
    this.#sinceCheckpoint = reason ? 0 : since;
    this.#lastLine = Buffer.from(`${lines.at(-1)}\n`, 'utf8');
    this.#unsynced.push({
      id: ++this.#writes,
      lines: lines.map((line, i) => ({ line, record: objs[i] as AuditLine })),
      checkpoint,
      waiters: batch,
      after: this.#state(),
    });
    if (this.#o.fsync === false) this.#settle(this.#writes, true);
    else if (mode === 'now') this.#syncNow();
    else this.#syncInBackground();
  }

  /** A signed checkpoint line at `pos`, which it advances past the line. */
  #checkpointLine(pos: ChainPosition, reason: CheckpointReason): DurableLine {
    const time = this.#time();
    const logId = pos.logId ?? '';
    const unsigned = checkpointBody(pos.nextSeq, time, logId, reason, pos.events);
    const sig = this.#signer.sign(checkpointSigningInput(pos.prev, unsigned));
    const sealed = sealLine(checkpointBody(pos.nextSeq, time, logId, reason, pos.events, sig), pos.prev);
    const record: AuditLine = {
      type: 'checkpoint',
      seq: pos.nextSeq,
      time,
      logId,
      reason,
      events: pos.events,
      sig,
      prev: pos.prev,
      hash: sealed.hash,
    };
    pos.nextSeq++;
    pos.prev = sealed.hash;
    return { line: sealed.line, record };
  }

  /** A genesis line with a new log id (continuing the segment whose last hash is `previous`), and the position after it. */
  #genesis(previous: string | undefined): { line: string; pos: ChainPosition } {
    const logId = randomBytes(16).toString('hex');
    const g = sealLine(genesisBody(this.#time(), logId, this.publicKey, previous), GENESIS_PREV);
    return { line: g.line, pos: { nextSeq: 1, prev: g.hash, logId, events: 0 } };
  }

  /**
   * At start, before opening: a live log that is missing (or empty) while a
   * `<path>.next` whose genesis continues the newest segment exists is a
   * rotation a crash cut between its renames: `.next` (complete and synced
   * before the renames) takes its place. Any other `.next` is moved aside
   * (never deleted: if a rotation's renames were lost it may hold records).
   * A live log missing while rotated segments exist is refused
   * (`audit_tampered`): it was removed, and a new log would hide that.
   */
  #finishInterruptedRotation(): void {
    const next = `${this.path}.next`;
    const live = existsSync(this.path) && statSync(this.path).size > 0;
    if (existsSync(next)) {
      if (!live && this.#continuesNewestSegment(next)) {
        renameSync(next, this.path);
        this.#alert('warning', `finished a rotation a crash had interrupted (${next} is the live log again)`);
        return;
      }
      this.#moveAside(next);
    }
    if (!live && listSegments(this.path).length > 0) {
      throw new KcmError(
        'audit_tampered',
        `the live audit log ${this.path} is missing but rotated segments are beside it: restore it, or move the segments away to start a new chain`,
      );
    }
  }

  /** Whether the genesis of the log at `file` names the last line of the newest rotated segment. */
  #continuesNewestSegment(file: string): boolean {
    const newest = listSegments(this.path).at(-1);
    if (!newest) return false;
    try {
      const first = withFile(file, (fd) => readLines(fd).next().value);
      const last = withFile(newest.path, lastLine);
      if (!first?.complete || !last) return false;
      const g = parseLine(first.raw).parsed;
      return g.type === 'genesis' && g.previous !== undefined && g.previous === parseLine(last).parsed.hash;
    } catch {
      return false;
    }
  }

  /** Renames a leftover `<path>.next` to `<path>.next.<ms>.orphan`, with an alert (never deleted: it may hold records). */
  #moveAside(next: string): void {
    const to = `${next}.${Date.now()}.orphan`;
    renameSync(next, to);
    this.#alert('warning', `moved a leftover ${next} aside to ${to}; check it for records`);
  }

  /**
   * Closes the file with a signed `close` checkpoint and moves it (head file
   * first) to the next segment number, with a new log already written and
   * synced in its place (`<path>.next`, renamed over), then syncs the
   * directory. On failure the renames are undone, an `open` checkpoint
   * follows the `close` one, an alert says why and the log goes on in the
   * same file; rotation is tried again after another `rotateBytes`. Then
   * removes segments beyond `keepSegments`. Never throws.
   */
  #rotate(): void {
    const bytes = this.#rotateBytes as number;
    this.#rotateAt = this.#size + bytes;
    const n = nextSegmentNumber(this.path);
    if (n > MAX_SEGMENT) {
      this.#alert(
        'critical',
        `cannot rotate the audit log: segment numbers are used up (${MAX_SEGMENT}); archive and remove old segments`,
      );
      return;
    }
    try {
      this.#commit([], 'now', 'close');
    } catch {
      return; // counted and alerted; the batch's own write says whether the log can be written
    }
    const seg = segmentPath(this.path, n);
    const tmp = `${this.path}.next`;
    const g = this.#genesis(this.#pos.prev);
    const open = this.#checkpointLine(g.pos, 'open');
    const buf = Buffer.from(`${g.line}\n${open.line}\n`, 'utf8');
    let next: LogFile | undefined;
    let moved = false;
    try {
      if (existsSync(tmp)) this.#moveAside(tmp);
      // The new log, complete and synced, under its final name's identity before any rename.
      next = new LogFile(
        this.path,
        openSync(tmp, constants.O_RDWR | constants.O_APPEND | constants.O_CREAT | constants.O_EXCL, 0o600),
      );
      next.write(buf);
      if (this.#o.fsync !== false) next.syncNow();
      if (existsSync(this.headPath)) renameSync(this.headPath, `${seg}.head`);
      renameSync(this.path, seg);
      moved = true;
      renameSync(tmp, this.path);
    } catch (err) {
      this.#undoRotation(next, tmp, seg, moved, err);
      return;
    }
    if (this.#o.fsync !== false) {
      try {
        syncDirectory(this.path);
      } catch (err) {
        this.#alert(
          'critical',
          `cannot sync the audit log's directory after rotating (${errnoOf(err)}): a power loss may undo the rotation`,
        );
      }
    }
    this.#file.close();
    this.#file = next;
    this.#broken = false;
    this.#pos = g.pos;
    this.#size = buf.length;
    this.#lastLine = Buffer.from(`${open.line}\n`, 'utf8');
    this.#sinceCheckpoint = 0;
    this.#durable = this.#state();
    this.#rotateAt = bytes;
    this.stats.rotations++;
    this.stats.lines += 2;
    this.#head.now(open.line);
    this.#exported([{ line: g.line, record: parseLine(Buffer.from(g.line, 'utf8')).parsed }, open]);
    this.#prune();
  }

  /** A rotation failed at some step: put the files back as they were and reopen the log for events. */
  #undoRotation(next: LogFile | undefined, tmp: string, seg: string, moved: boolean, err: unknown): void {
    if (next) {
      next.close();
      rmQuietly(tmp);
    }
    if (moved) renameQuietly(seg, this.path);
    if (!existsSync(this.headPath) && existsSync(`${seg}.head`)) renameQuietly(`${seg}.head`, this.headPath);
    this.#alert('warning', `cannot rotate the audit log (${errnoOf(err)}); it goes on in the same file`);
    try {
      this.#commit([], 'now', 'open'); // events after the close checkpoint follow an open one, as after a restart
    } catch {
      // Counted and alerted; the next append reopens the log.
    }
  }

  /** Removes the oldest rotated segments (and their head files) beyond `keepSegments`. */
  #prune(): void {
    if (this.#keep === undefined) return;
    const segments = listSegments(this.path, true);
    const old = segments.slice(0, Math.max(0, segments.length - this.#keep));
    for (const s of old) {
      try {
        rmSync(s.path, { force: true });
        rmSync(`${s.path}.head`, { force: true });
        this.stats.removed++;
      } catch (err) {
        this.#alert('warning', `cannot remove the old audit segment ${s.path} (${errnoOf(err)})`);
      }
    }
    if (old.length > 0 && this.#o.fsync !== false) {
      try {
        syncDirectory(this.path);
      } catch {
        // The removals are not records: a power loss bringing one back is harmless.
      }
    }
  }

  /** Hands durable lines to the exporter (never failing the caller). */
  #exported(lines: readonly DurableLine[]): void {
    if (!this.#o.onDurable) return;
    try {
      this.#o.onDurable(lines);
    } catch {
      // An exporter's bug must never fail an audited operation.
    }
  }

  /** The chain as it stands after the last write. */
  #state(): ChainState {
    return { pos: this.#pos, size: this.#size, lastLine: this.#lastLine, sinceCheckpoint: this.#sinceCheckpoint };
  }

  /** Writes `buf` (synchronously, so lines keep call order). A failure fails every write not yet durable. */
  #write(buf: Buffer): void {
    try {
      this.#ensureOpen();
      this.#file.write(buf);
      this.#size += buf.length;
    } catch (err) {
      throw this.#failUnsynced(err, 'cannot write the audit log');
    }
  }

  /** fdatasync on this thread: every write so far is durable on return. */
  #syncNow(): void {
    try {
      this.#file.syncNow();
    } catch (err) {
      throw this.#failUnsynced(err, 'cannot sync the audit log');
    }
    this.#settle(this.#writes, true);
  }

  /**
   * Starts an fdatasync on the thread pool for every write so far, unless one
   * is running (its end starts the next). Its error fails every write not yet
   * durable (it may be any of theirs), even when it synced a description
   * since replaced (by a failure's reopen, a rotation or close): it flushed
   * the same file, pages written since included. A success on a replaced
   * description settles nothing (what it covered was settled or failed then)
   * and starts the next.
   */
  #syncInBackground(): void {
    if (this.#closed || this.#broken || this.#file.syncing || this.#unsynced.length === 0) return;
    const upTo = this.#writes;
    try {
      this.#file.syncInBackground((err, current) => {
        if (err) {
          if (this.#unsynced.length > 0) this.#failUnsynced(err, 'cannot sync the audit log');
          else
            this.#alert(
              'critical',
              `an fdatasync of the audit log failed after its records were settled (${errnoOf(err)})`,
            );
          return;
        }
        if (current) this.#settle(upTo, false);
        this.#syncInBackground();
      });
    } catch (err) {
      this.#failUnsynced(err, 'cannot sync the audit log');
    }
  }

  /**
   * Writes up to number `upTo` are durable: release their records and
   * exporter lines, in order, and make the head file name the newest
   * checkpoint among them: on this thread when `sync` (the caller already
   * waits for the disk), else off the event loop.
   */
  #settle(upTo: number, sync: boolean): void {
    let checkpoint: string | null = null;
    while (this.#unsynced.length > 0 && (this.#unsynced[0] as Unsynced).id <= upTo) {
      const u = this.#unsynced.shift() as Unsynced;
      this.#durable = u.after;
      this.stats.lines += u.lines.length;
      checkpoint = u.checkpoint ?? checkpoint;
      this.#exported(u.lines);
      for (const p of u.waiters) p.resolve();
    }
    if (checkpoint === null) return;
    if (sync) this.#head.now(checkpoint);
    else this.#head.later(checkpoint);
  }

  /**
   * A write or fdatasync failed: every record not yet durable fails, the chain
   * steps back to the last durable line and the file is cut back to it now,
   * through the open descriptor, and synced (records refused to their callers
   * must not come back after a crash); when that cannot be done, the next
   * append's reopen cuts. The next append reopens and checks the file in any
   * case. Returns the error to throw.
   */
  #failUnsynced(err: unknown, what: string): KcmError {
    this.#broken = true;
    this.stats.writeFailures++;
    const e = this.#fail(err, what);
    const failed = this.#unsynced;
    this.#unsynced = [];
    ({
      pos: this.#pos,
      size: this.#size,
      lastLine: this.#lastLine,
      sinceCheckpoint: this.#sinceCheckpoint,
    } = this.#durable);
    if (!this.#file.cutTo(this.#size)) {
      try {
        this.#file.reopen(this.#size, this.#lastLine);
      } catch {
        // Still failing: the next append retries the reopen and cut.
      }
    }
    for (const u of failed) for (const p of u.waiters) p.reject(e);
    return e;
  }

  /** After a failure: reopen the file and check it (log-file.ts reopen), before any write. */
  #ensureOpen(): void {
    if (!this.#broken) return;
    this.#file.reopen(this.#size, this.#lastLine);
    this.#broken = false;
  }

  /** The timer's checkpoint: written now, made durable in the background like a group commit. */
  #tick(): void {
    if (this.#closed || this.#sinceCheckpoint === 0) return;
    try {
      this.#flush('background');
      if (this.#sinceCheckpoint > 0) this.#commit([], 'background', 'periodic');
    } catch {
      // Already counted and alerted; the next append or tick retries.
    }
  }

  #fail(err: unknown, what: string): KcmError {
    const detail = err instanceof KcmError ? (err.detail ?? err.code) : errnoOf(err);
    this.#alert('critical', `${what} (${detail}); key operations are refused until it recovers`);
    return err instanceof KcmError ? err : new KcmError('audit_unavailable', detail);
  }

  #alert(severity: 'warning' | 'critical', summary: string): void {
    this.#o.alerter?.alert({ kind: 'audit.failure', severity, summary });
  }

  #time(): string {
    return new Date(this.#o.now ? this.#o.now() : Date.now()).toISOString();
  }
}

/** `fn` over the file at `path` opened read-only, closed after. */
function withFile<T>(path: string, fn: (fd: number) => T): T {
  const fd = openSync(path, 'r');
  try {
    return fn(fd);
  } finally {
    closeSync(fd);
  }
}

/** fsync of the directory holding `path`, so its renames survive a power loss. */
function syncDirectory(path: string): void {
  withFile(dirname(path), fsyncSync);
}

function renameQuietly(from: string, to: string): void {
  try {
    renameSync(from, to);
  } catch {
    // Best effort while undoing a failed rotation; the alert names the failure.
  }
}

function rmQuietly(path: string): void {
  try {
    rmSync(path, { force: true });
  } catch {
    // Best effort while undoing a failed rotation; the alert names the failure.
  }
}

function intOption(name: string, v: number | undefined, min: number, max: number, dflt: number): number {
  if (v === undefined) return dflt;
  if (!Number.isSafeInteger(v) || v < min || v > max)
    throw new KcmError('invalid_config', `AuditLog: ${name} must be an integer from ${min} to ${max}`);
  return v;
}
