/**
 * Rotated segments of an audit log (docs/audit.md "Rotation"): when the live
 * log `<path>` reaches its size limit, the writer closes it with a signed
 * `close` checkpoint and renames it (with its head file) to
 * `<path>.000001`, `<path>.000002`, … (numbered in order, oldest lowest); the
 * new live log's genesis line names the hash of that checkpoint
 * (`previous`), so the segments form one chain that `kcm audit verify`
 * checks end to end. Naming and listing only; no chain logic. At most
 * 999,999 segments (six digits).
 */
import { readdirSync } from 'node:fs';
import { basename, dirname } from 'node:path';

/** A rotated segment: its number and file path. */
export interface Segment {
  n: number;
  path: string;
}

const DIGITS = 6;
/** The last segment number six digits hold; the writer refuses to rotate past it (with an alert). */
export const MAX_SEGMENT = 999_999;

/** The file name of segment `n` of the log at `path`. */
export function segmentPath(path: string, n: number): string {
  return `${path}.${String(n).padStart(DIGITS, '0')}`;
}

/**
 * The rotated segments beside the log at `path`, oldest first. `withHeads`
 * also counts numbers only a leftover head file uses (a crash between the
 * two renames of a rotation), so a new number never reuses one.
 */
export function listSegments(path: string, withHeads = false): Segment[] {
  const base = basename(path);
  const dir = dirname(path);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const byN = new Map<number, Segment>();
  for (const name of names) {
    if (!name.startsWith(`${base}.`)) continue;
    const rest = name.slice(base.length + 1);
    // Exactly six digits: what segmentPath writes (another tool's `.20261129` is not ours).
    const m = /^(\d{6})(\.head)?$/.exec(rest);
    if (!m || (m[2] && !withHeads)) continue;
    const n = Number(m[1]);
    if (n > 0 && !byN.has(n)) byN.set(n, { n, path: segmentPath(path, n) });
  }
  return [...byN.values()].sort((a, b) => a.n - b.n);
}

/** The number the next rotated segment of `path` gets. */
export function nextSegmentNumber(path: string): number {
  return (listSegments(path, true).at(-1)?.n ?? 0) + 1;
}
