/**
 * `kcm audit verify` over a rotated log (docs/audit.md "Rotation"): every
 * segment `<path>.NNNNNN`, oldest first, then the live log. Each is verified
 * on its own (audit-verifier.ts; a rotated segment must end with its signed
 * checkpoint and match its own head file), and each genesis must name the
 * hash of the last line of the segment before it, so a segment removed,
 * replaced or reordered in the middle is named. A first segment that
 * continues one no longer present (removed by `keepSegments` or archived) is
 * a warning.
 */
import { basename } from 'node:path';
import { type VerifyOptions, type VerifyResult, verifyAuditLog } from './audit-verifier.ts';
import { listSegments } from './log-segments.ts';

export interface SeriesResult {
  ok: boolean;
  /** Every file checked, oldest first, with its own result (stops at the first failing one). */
  files: { path: string; result: VerifyResult }[];
  /** The first failure: the file and what is wrong there. */
  firstBad: { path: string; problem: string } | null;
  warnings: string[];
  events: number;
}

/**
 * Verifies the log at `path` and every rotated segment beside it. `o.head`
 * and `o.allowUnsignedTail` apply to the live log; a rotated segment is
 * checked against `<segment>.head` (none with `head: null`) and must be
 * signed to its end. Throws KcmError `audit_unavailable` when a file cannot
 * be read.
 */
export function verifyAuditSeries(path: string, o: VerifyOptions): SeriesResult {
  const files: SeriesResult['files'] = [];
  const warnings: string[] = [];
  const segments = listSegments(path).map((s) => s.path);
  let events = 0;
  let before: { path: string; lastHash: string | null } | null = null;
  for (const file of [...segments, path]) {
    const live = file === path;
    const result = verifyAuditLog(
      file,
      live ? o : { publicKey: o.publicKey, head: o.head === null ? null : `${file}.head` },
    );
    files.push({ path: file, result });
    const name = basename(file);
    for (const w of result.warnings) warnings.push(`${name}: ${w}`);
    if (result.firstBad) {
      const where =
        result.firstBad.line === 0 ? 'head file' : `seq ${result.firstBad.seq} (line ${result.firstBad.line})`;
      return fail(files, warnings, events, file, `${where}: ${result.firstBad.problem}`);
    }
    if (!live && !result.closed)
      return fail(files, warnings, events, file, 'a rotated segment must end with its close checkpoint');
    if (before === null) {
      if (result.previous !== null)
        warnings.push(`${name} continues a segment that is no longer here (removed by keepSegments or archived)`);
    } else if (result.previous !== before.lastHash) {
      return fail(
        files,
        warnings,
        events,
        file,
        `does not continue ${basename(before.path)}: its genesis names another previous segment (a segment is missing, replaced or out of order)`,
      );
    }
    events += result.events;
    before = { path: file, lastHash: result.lastHash };
  }
  return { ok: true, files, firstBad: null, warnings, events };
}

function fail(
  files: SeriesResult['files'],
  warnings: string[],
  events: number,
  path: string,
  problem: string,
): SeriesResult {
  return { ok: false, files, firstBad: { path, problem }, warnings, events };
}
