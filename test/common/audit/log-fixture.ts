/** Builds real audit logs in temp directories and edits them the way an attacker would. */
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditLog, type AuditLogOptions } from '../../../common/src/audit/audit-log.ts';
import { chainHash } from '../../../common/src/audit/record-format.ts';

export interface Fixture {
  dir: string;
  path: string;
  publicKey: string;
  cleanup(): void;
}

/** A temp dir; `cleanup` removes it. */
export function tempDir(prefix = 'kcm-audit-'): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * A cleanly closed log with `events` events and a checkpoint every `every`:
 * with 12 and 5 the lines are 0 genesis, 1 open checkpoint, 2–6 events,
 * 7 checkpoint, 8–12 events, 13 checkpoint, 14–15 events, 16 close checkpoint.
 */
export function closedLog(events = 12, every = 5, extra: Partial<AuditLogOptions> = {}): Fixture {
  const { dir, cleanup } = tempDir();
  const path = join(dir, 'audit.jsonl');
  const log = new AuditLog({ path, checkpointEvery: every, checkpointIntervalMs: 0, fsync: false, ...extra });
  for (let i = 0; i < events; i++) {
    log.record({
      action: i % 3 === 0 ? 'key.decrypt' : 'key.encrypt',
      outcome: i % 4 === 3 ? 'failure' : 'success',
      actor: `CN=svc-${i % 2}`,
      tenant: 'acme',
      resource: `acme/orders v${i}`,
      correlationId: `req-${i}`,
      ...(i % 4 === 3 ? { reason: 'forbidden' } : {}),
    });
  }
  log.close();
  return { dir, path, publicKey: log.publicKey, cleanup };
}

export function readLinesOf(path: string): string[] {
  const text = readFileSync(path, 'utf8');
  return text.slice(0, -1).split('\n');
}

export function writeLines(path: string, lines: readonly string[]): void {
  writeFileSync(path, lines.length ? `${lines.join('\n')}\n` : '');
}

/** Recomputes prev/hash of every line from index `from` on (an attacker without the signing key). */
export function rechain(lines: string[], from: number): string[] {
  const out = [...lines];
  for (let i = from; i < out.length; i++) {
    const o = JSON.parse(out[i] as string) as Record<string, unknown>;
    const prev = i === 0 ? '0'.repeat(64) : (JSON.parse(out[i - 1] as string) as { hash: string }).hash;
    const { prev: _p, hash: _h, ...rest } = o;
    const body = JSON.stringify(rest);
    out[i] = `${body.slice(0, -1)},"prev":"${prev}","hash":"${chainHash(prev, body)}"}`;
  }
  return out;
}

/**
 * Puts `device` (e.g. /dev/full) under descriptor number `fd`, which the
 * writer holds: closes it, then opens the device, which gets the lowest free
 * number. A lower number freed meanwhile (an earlier test's descriptor
 * closed late, e.g. a background sync's) is held while opening again, then
 * let go. False (nothing left open) when another open took `fd` first; the
 * caller skips, saying so.
 */
export function replaceDescriptor(fd: number, device: string, flags: 'r' | 'w'): boolean {
  closeSync(fd);
  const lower: number[] = [];
  try {
    for (;;) {
      const got = openSync(device, flags);
      if (got === fd) return true;
      if (got > fd) {
        closeSync(got);
        return false;
      }
      lower.push(got);
    }
  } finally {
    for (const l of lower) closeSync(l);
  }
}
