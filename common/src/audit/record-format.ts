/**
 * The audit log line format (docs/audit.md): one canonical JSON object per
 * line, keys in a fixed order, chained by SHA-256. Pure: builds and parses
 * lines, computes the chain hash; no I/O and no keys (signatures are made by
 * checkpoint-signer.ts over {@link checkpointSigningInput}).
 *
 *   body   = canonical JSON of the record without `prev` and `hash`
 *   h_i    = SHA-256(h_{i-1} ‖ UTF-8(body_i)),  h_{-1} = 32 zero bytes
 *   line_i = body_i with `,"prev":"<hex h_{i-1}>","hash":"<hex h_i>"` before its final `}`
 */
import { createHash } from 'node:crypto';
import { KcmError } from '../errors.ts';
import { isTenantId } from '../format/ids.ts';
import type { AuditEvent } from './audit-event.ts';

/** Format version, carried by the genesis line. */
export const AUDIT_FORMAT_VERSION = 1;
/** The chain value before the first line. */
export const GENESIS_PREV = '0'.repeat(64);
/** Domain separation of checkpoint signatures. */
export const CHECKPOINT_SIGNING_LABEL = 'openkcm-audit-checkpoint-v1\0';

export const FIELD_LIMITS = { actor: 256, resource: 256, reason: 200, correlationId: 64 } as const;
const ACTION = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const CORRELATION_ID = /^[A-Za-z0-9._:-]{1,64}$/;

/** Whether `v` can be a record's correlationId (1–64 of `A-Z a-z 0-9 . _ : -`). */
export function isRecordableCorrelationId(v: string): boolean {
  return CORRELATION_ID.test(v);
}
const HEX32 = /^[0-9a-f]{64}$/;
const LOG_ID = /^[0-9a-f]{32}$/;
const SIG = /^[0-9a-f]{128}$/;
const TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

export type CheckpointReason = 'open' | 'periodic' | 'close';

interface Base {
  seq: number;
  time: string;
  prev: string;
  hash: string;
}
export interface GenesisLine extends Base {
  type: 'genesis';
  v: number;
  logId: string;
  publicKey: string;
  /** In a log that continues a rotated segment: the hash of that segment's last line (its `close` checkpoint). */
  previous?: string;
}
export interface EventLine extends Base, Omit<AuditEvent, never> {
  type: 'event';
}
export interface CheckpointLine extends Base {
  type: 'checkpoint';
  logId: string;
  reason: CheckpointReason;
  /** Number of event lines from the start of the log up to this checkpoint. */
  events: number;
  sig: string;
}
export type AuditLine = GenesisLine | EventLine | CheckpointLine;

/** Printable: no C0/C1 control characters, no line or paragraph separators. */
function isPrintable(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f) || c === 0x2028 || c === 0x2029) return false;
  }
  return true;
}

function bad(detail: string): never {
  throw new KcmError('audit_invalid_record', detail);
}

/**
 * A free-text field: control characters become spaces and a value over its
 * limit is cut to it (ending in `…`), so a long certificate subject cannot
 * fail the operation it describes. Non-strings are refused.
 */
function text(field: keyof typeof FIELD_LIMITS, v: unknown): string | undefined {
  if (v === undefined || v === '') return undefined;
  if (typeof v !== 'string') bad(`${field} must be a string`);
  if (field === 'correlationId') {
    if (!CORRELATION_ID.test(v)) bad('correlationId must be 1-64 of A-Z a-z 0-9 . _ : -');
    return v;
  }
  let out = isPrintable(v) ? v : [...v].map((ch) => (isPrintable(ch) ? ch : ' ')).join('');
  const max = FIELD_LIMITS[field];
  if (out.length > max) out = `${out.slice(0, max - 1)}…`;
  return out;
}

/**
 * Copies only the known fields of `e`, validated (docs/audit.md "Fields"):
 * action, outcome, tenant and correlation id must match their syntax; actor,
 * resource and reason are cleaned and bounded (see `text`). Empty optional
 * strings are dropped. Throws KcmError `audit_invalid_record` naming the
 * field (never its value) when a field is missing or malformed.
 */
export function eventFields(e: AuditEvent): AuditEvent {
  if (typeof e.action !== 'string' || !ACTION.test(e.action)) bad('action must be 1-64 of a-z 0-9 . _ -');
  if (e.outcome !== 'success' && e.outcome !== 'failure') bad('outcome must be success or failure');
  const out: AuditEvent = { action: e.action, outcome: e.outcome };
  const actor = text('actor', e.actor);
  if (actor !== undefined) out.actor = actor;
  const resource = text('resource', e.resource);
  if (resource !== undefined) out.resource = resource;
  if (e.tenant !== undefined && e.tenant !== '') {
    if (typeof e.tenant !== 'string' || !isTenantId(e.tenant)) bad('tenant is not a valid tenant id');
    out.tenant = e.tenant;
  }
  const correlationId = text('correlationId', e.correlationId);
  if (correlationId !== undefined) out.correlationId = correlationId;
  const reason = text('reason', e.reason);
  if (reason !== undefined) out.reason = reason;
  return out;
}

/** Canonical body of an event line (fixed key order). */
export function eventBody(seq: number, time: string, f: AuditEvent): string {
  return JSON.stringify({
    seq,
    time,
    type: 'event',
    action: f.action,
    outcome: f.outcome,
    actor: f.actor,
    resource: f.resource,
    tenant: f.tenant,
    correlationId: f.correlationId,
    reason: f.reason,
  });
}

/** Canonical body of a genesis line; `previous` links it to the segment it continues (rotation). */
export function genesisBody(time: string, logId: string, publicKey: string, previous?: string): string {
  return JSON.stringify({ seq: 0, time, type: 'genesis', v: AUDIT_FORMAT_VERSION, logId, publicKey, previous });
}

/** Canonical body of a checkpoint line; without `sig` it is the signed part. */
export function checkpointBody(
  seq: number,
  time: string,
  logId: string,
  reason: CheckpointReason,
  events: number,
  sig?: string,
): string {
  return JSON.stringify({ seq, time, type: 'checkpoint', logId, reason, events, sig });
}

/** Bytes an Ed25519 checkpoint signature covers: label ‖ h_{i-1} (32 bytes) ‖ UTF-8(body without sig). */
export function checkpointSigningInput(prev: string, unsignedBody: string): Buffer {
  return Buffer.concat([
    Buffer.from(CHECKPOINT_SIGNING_LABEL, 'latin1'),
    Buffer.from(prev, 'hex'),
    Buffer.from(unsignedBody, 'utf8'),
  ]);
}

/** h_i = SHA-256(h_{i-1} ‖ UTF-8(body)), lower-case hex. */
export function chainHash(prev: string, body: string): string {
  return createHash('sha256').update(Buffer.from(prev, 'hex')).update(body, 'utf8').digest('hex');
}

/** The full line (without the newline) for a body and its chain values. */
export function sealLine(body: string, prev: string): { line: string; hash: string } {
  const hash = chainHash(prev, body);
  return { line: `${body.slice(0, -1)},"prev":"${prev}","hash":"${hash}"}`, hash };
}

function str(o: Record<string, unknown>, k: string, re: RegExp): string {
  const v = o[k];
  if (typeof v !== 'string' || !re.test(v)) bad(`field ${k} is missing or malformed`);
  return v;
}

/**
 * Parses one line strictly: it must be the canonical form of its own fields
 * (re-serialising gives the same bytes), so no edit can leave the meaning
 * unchanged. Checks field syntax only; the chain, sequence and signatures are
 * the verifier's job. Throws KcmError `audit_invalid_record` naming the problem.
 */
export function parseLine(raw: Buffer): { parsed: AuditLine; body: string } {
  let o: unknown;
  try {
    o = JSON.parse(raw.toString('utf8'));
  } catch {
    bad('not JSON');
  }
  if (typeof o !== 'object' || o === null || Array.isArray(o)) bad('not a JSON object');
  const r = o as Record<string, unknown>;
  const seq = r.seq;
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 0) bad('field seq is missing or malformed');
  const time = str(r, 'time', TIME);
  const prev = str(r, 'prev', HEX32);
  const hash = str(r, 'hash', HEX32);
  let body: string;
  let parsed: AuditLine;
  if (r.type === 'genesis') {
    const logId = str(r, 'logId', LOG_ID);
    const publicKey = str(r, 'publicKey', HEX32);
    const previous = r.previous === undefined ? undefined : str(r, 'previous', HEX32);
    if (r.v !== AUDIT_FORMAT_VERSION) bad(`unsupported format version`);
    body = genesisBody(time, logId, publicKey, previous);
    if (seq !== 0) bad('genesis line with a non-zero seq');
    parsed = {
      type: 'genesis',
      seq,
      time,
      v: AUDIT_FORMAT_VERSION,
      logId,
      publicKey,
      ...(previous ? { previous } : {}),
      prev,
      hash,
    };
  } else if (r.type === 'checkpoint') {
    const logId = str(r, 'logId', LOG_ID);
    const sig = str(r, 'sig', SIG);
    const reason = r.reason;
    if (reason !== 'open' && reason !== 'periodic' && reason !== 'close') bad('field reason is malformed');
    const events = r.events;
    if (typeof events !== 'number' || !Number.isSafeInteger(events) || events < 0) bad('field events is malformed');
    body = checkpointBody(seq, time, logId, reason, events, sig);
    parsed = { type: 'checkpoint', seq, time, logId, reason, events, sig, prev, hash };
  } else if (r.type === 'event') {
    const f = eventFields(r as unknown as AuditEvent);
    body = eventBody(seq, time, f);
    parsed = { type: 'event', seq, time, ...f, prev, hash };
  } else {
    bad('unknown record type');
  }
  const canonical = `${body.slice(0, -1)},"prev":"${prev}","hash":"${hash}"}`;
  if (!Buffer.from(canonical, 'utf8').equals(raw)) bad('not in canonical form (extra, reordered or re-encoded bytes)');
  return { parsed, body };
}

/** An event line as exported (docs/audit.md "Export"): the fields without the chain internals. */
export function exportedEvent(l: EventLine): AuditEvent & { seq: number; time: string } {
  const { type: _t, prev: _p, hash: _h, ...rest } = l;
  return rest;
}
