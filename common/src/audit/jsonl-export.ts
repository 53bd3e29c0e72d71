/**
 * `kcm audit export`: the records of a log as JSON lines (docs/audit.md
 * "Export"). By default only event records, each as its fields plus `seq`
 * and `time`, without the chain internals (`type`, `prev`, `hash`);
 * `raw: true` yields every line (genesis and checkpoints included) exactly as
 * stored, for re-verification elsewhere. Export does not verify: run
 * `kcm audit verify` first; a malformed line stops the export with its seq.
 */
import { closeSync, openSync } from 'node:fs';
import { KcmError } from '../errors.ts';
import { errnoOf } from './checkpoint-signer.ts';
import { readLines } from './log-lines.ts';
import { exportedEvent, parseLine } from './record-format.ts';

export interface ExportOptions {
  /** Only lines with seq ≥ this (default 0). */
  sinceSeq?: number;
  raw?: boolean;
}

/**
 * Yields one JSON line (without newline) per exported record. Throws KcmError
 * `audit_unavailable` when the log cannot be read, `audit_tampered` naming the
 * line when one cannot be parsed.
 */
export function* exportAuditLog(path: string, o: ExportOptions = {}): Generator<string> {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    throw new KcmError('audit_unavailable', `cannot open the audit log (${errnoOf(err)})`);
  }
  try {
    let n = 0;
    for (const l of readLines(fd)) {
      n++;
      let parsed: ReturnType<typeof parseLine>['parsed'];
      try {
        parsed = parseLine(l.raw).parsed;
      } catch (err) {
        throw new KcmError('audit_tampered', `line ${n}: ${err instanceof KcmError ? err.detail : 'malformed'}`);
      }
      if (parsed.seq < (o.sinceSeq ?? 0)) continue;
      if (o.raw) yield l.raw.toString('utf8');
      else if (parsed.type === 'event') yield JSON.stringify(exportedEvent(parsed));
    }
  } finally {
    closeSync(fd);
  }
}
