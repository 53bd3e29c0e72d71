/**
 * The tamper-evident audit log (ADR-901/902, docs/audit.md): an append-only
 * file of canonical JSON lines, chained by SHA-256, with Ed25519-signed
 * checkpoints every N events or T milliseconds, on open and on clean close,
 * and a signed head file (`<log>.head`) naming the newest checkpoint.
 *
 * Two ways to append, both durable (written and, by default, fdatasync'ed)
 * before they report success:
 * - `record(e)`: synchronous, for the Core's admin path (it is an AuditSink);
 * - `append(e)`: group commit for hot paths; resolves when the batch holding
 *   it is written, one write and one fdatasync per event-loop turn.
 * Lines are chained at write time, in call order, so both may be mixed.
 *
 * Fail closed without freezing: a write error makes the appends of that
 * batch fail with KcmError `audit_unavailable` (callers answer 503) and raises
 * an `audit.failure` alert; the next append reopens the file, removes any
 * partial line of the failed write, checks the last good line is still in
 * place and carries on. Exporters get each durable line through `onDurable`,
 * which must not block (see OtlpShipper).
 */

import { randomBytes } from 'node:crypto';
import { closeSync, constants, fdatasyncSync, fstatSync, ftruncateSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import type { AlertSink } from '../alerts/alert-types.ts';
import { KcmError } from '../errors.ts';
import type { AuditEvent, AuditSink } from './audit-event.ts';
import type { ChainPosition } from './chain-checker.ts';
import { CheckpointSigner, errnoOf } from './checkpoint-signer.ts';
import { writeHeadFile } from './head-file.ts';
import { resumeLog, tailMatches } from './log-resume.ts';
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

const noop = (): void => {};

export class AuditLog implements AuditSink {
  readonly path: string;
  readonly headPath: string;
  readonly publicKey: string;
  /** Counters: lines written, failed writes, redacted fields, group-commit batches, head file failures. */
  readonly stats = { lines: 0, writeFailures: 0, redacted: 0, batches: 0, headFailures: 0 };
  readonly #o: AuditLogOptions;
  readonly #signer: CheckpointSigner;
  readonly #ownsSigner: boolean;
  readonly #every: number;
  #fd: number | null;
  #pos: ChainPosition;
  #size: number;
  #lastLine: Buffer;
  #sinceCheckpoint = 0;
  #broken = false;
  #closed = false;
  #queue: Pending[] = [];
  #scheduled = false;
  #timer: NodeJS.Timeout | undefined;

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
    try {
      mkdirSync(dirname(o.path), { recursive: true, mode: 0o700 });
      this.#fd = openSync(o.path, constants.O_RDWR | constants.O_APPEND | constants.O_CREAT, 0o600);
    } catch (err) {
      throw this.#fail(err, 'cannot open the audit log');
    }
    try {
      this.#ownsSigner = !o.signer;
      this.#signer = o.signer ?? CheckpointSigner.loadOrCreate(o.keyFile ?? `${o.path}.key`);
      this.publicKey = this.#signer.publicKey;
      const r = resumeLog(this.#fd, this.headPath, this.publicKey);
      if (r.repairedBytes > 0) this.#alert('warning', `removed an incomplete last line (${r.repairedBytes} bytes)`);
      this.#pos = r.position;
      this.#size = r.size;
      this.#lastLine = r.lastLine;
    } catch (err) {
      closeSync(this.#fd);
      throw this.#fail(err, 'cannot resume the audit log');
    }
    const lines: string[] = [];
    if (this.#size === 0) {
      const logId = randomBytes(16).toString('hex');
      const g = sealLine(genesisBody(this.#time(), logId, this.publicKey), GENESIS_PREV);
      lines.push(g.line);
      this.#pos = { nextSeq: 1, prev: g.hash, logId, events: 0 };
    }
    try {
      this.#commit([], 'open', lines);
    } catch (err) {
      if (this.#fd !== null) closeSync(this.#fd);
      this.#fd = null;
      throw err;
    }
    if (interval > 0) {
      this.#timer = setInterval(() => this.#tick(), interval);
      this.#timer.unref();
    }
  }

  /** The open file descriptor (diagnostics), or null while the log is broken or closed. */
  get fd(): number | null {
    return this.#fd;
  }

  /** Sequence number the next line will get. */
  get nextSeq(): number {
    return this.#pos.nextSeq;
  }

  /**
   * Appends one record synchronously (together with any queued `append`s,
   * before it), durable on return. Throws KcmError `audit_invalid_record` on a
   * bad field, `audit_unavailable` when the log cannot be written or is closed.
   */
  record(e: AuditEvent): void {
    const p = this.#prepare(e, noop, noop);
    this.#queue.push(p);
    this.#flush(true);
  }

  /**
   * Queues one record for the next group commit (one write per event-loop
   * turn); resolves once it is durable. Rejects with `audit_unavailable` when
   * that write fails or the log is closed, with `audit_invalid_record` on a
   * malformed field (then nothing is queued).
   */
  append(e: AuditEvent): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#queue.push(this.#prepare(e, resolve, reject));
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => {
          this.#scheduled = false;
          this.#flush(false);
        });
      }
    });
  }

  /** Writes a checkpoint now (if events are unsigned). Throws `audit_unavailable` when it cannot be written. */
  checkpoint(): void {
    if (this.#closed) throw new KcmError('audit_unavailable', 'the audit log is closed');
    this.#flush(true);
    if (this.#sinceCheckpoint > 0) this.#commit([], 'periodic');
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
      this.#flush(true);
      this.#commit([], 'close');
    } finally {
      this.#closed = true;
      if (this.#fd !== null) closeSync(this.#fd);
      this.#fd = null;
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

  /** Writes every queued record in one write. Synchronous callers get the error thrown. */
  #flush(rethrow: boolean): void {
    if (this.#queue.length === 0) return;
    const batch = this.#queue;
    this.#queue = [];
    try {
      this.#commit(batch);
      this.stats.batches++;
    } catch (err) {
      for (const p of batch) p.reject(err);
      if (rethrow) throw err;
      return;
    }
    for (const p of batch) p.resolve();
  }

  /**
   * Chains `batch` (after any `pre` lines) from the current position, adds a
   * checkpoint when one is due or `force` names one, writes it all at once and
   * only then advances the position. Throws `audit_unavailable`.
   */
  #commit(batch: readonly Pending[], force?: CheckpointReason, pre: string[] = []): void {
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
      const time = this.#time();
      const logId = pos.logId ?? '';
      const unsigned = checkpointBody(pos.nextSeq, time, logId, reason, pos.events);
      const sig = this.#signer.sign(checkpointSigningInput(pos.prev, unsigned));
      const sealed = sealLine(checkpointBody(pos.nextSeq, time, logId, reason, pos.events, sig), pos.prev);
      checkpoint = sealed.line;
      lines.push(checkpoint);
      objs.push({
        type: 'checkpoint',
        seq: pos.nextSeq,
        time,
        logId,
        reason,
        events: pos.events,
        sig,
        prev: pos.prev,
        hash: sealed.hash,
      });
      pos.nextSeq++;
      pos.prev = sealed.hash;
    }
    if (lines.length === 0) return;
    const buf = Buffer.from(`${lines.join('\n')}\n`, 'utf8');
    this.#write(buf);
    this.#pos = pos;
    this.#sinceCheckpoint = reason ? 0 : since;
    this.#lastLine = Buffer.from(`${lines.at(-1)}\n`, 'utf8');
    this.stats.lines += lines.length;
    if (checkpoint) this.#updateHead(checkpoint);
    if (this.#o.onDurable) {
      try {
        this.#o.onDurable(lines.map((line, i) => ({ line, record: objs[i] as AuditLine })));
      } catch {
        // An exporter's bug must never fail an audited operation.
      }
    }
  }

  #write(buf: Buffer): void {
    try {
      const fd = this.#ensureOpen();
      for (let off = 0; off < buf.length; ) off += writeSync(fd, buf, off, buf.length - off);
      if (this.#o.fsync !== false) fdatasyncSync(fd);
      this.#size += buf.length;
    } catch (err) {
      this.#broken = true;
      this.stats.writeFailures++;
      throw this.#fail(err, 'cannot write the audit log');
    }
  }

  /** After a failure: reopen, drop the failed write's partial bytes, check our last line is still the file's last. */
  #ensureOpen(): number {
    if (!this.#broken && this.#fd !== null) return this.#fd;
    if (this.#fd !== null) {
      try {
        closeSync(this.#fd);
      } catch {
        // Already closed under us (EBADF): reopening is the point.
      }
      this.#fd = null;
    }
    const fd = openSync(this.path, constants.O_RDWR | constants.O_APPEND);
    const size = fstatSync(fd).size;
    if (size > this.#size) ftruncateSync(fd, this.#size);
    if (size < this.#size || !tailMatches(fd, this.#size, this.#lastLine)) {
      closeSync(fd);
      throw new KcmError('audit_unavailable', 'the audit log changed while it could not be written (tampered?)');
    }
    this.#fd = fd;
    this.#broken = false;
    return fd;
  }

  #updateHead(line: string): void {
    try {
      writeHeadFile(this.headPath, line, this.#o.fsync !== false);
    } catch (err) {
      this.stats.headFailures++;
      this.#alert('warning', `cannot update the audit head file (${errnoOf(err)})`);
    }
  }

  #tick(): void {
    if (this.#closed || this.#sinceCheckpoint === 0) return;
    try {
      this.checkpoint();
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

function intOption(name: string, v: number | undefined, min: number, max: number, dflt: number): number {
  if (v === undefined) return dflt;
  if (!Number.isSafeInteger(v) || v < min || v > max)
    throw new KcmError('invalid_config', `AuditLog: ${name} must be an integer from ${min} to ${max}`);
  return v;
}
