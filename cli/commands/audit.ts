/**
 * `kcm audit`: checks and exports the tamper-evident audit log (docs/audit.md).
 *
 *   kcm audit verify --log FILE --public-key FILE|HEX [--head FILE | --no-head] [--allow-unsigned-tail] [--json]
 *     exit 0 when the log verifies; 1 naming the first bad record (seq and line) otherwise. With
 *     rotated segments beside it (FILE.000001, …) every segment and the links between them too.
 *   kcm audit export --log FILE [--since SEQ] [--raw]
 *     prints the event records as JSON lines (--raw: every line as stored).
 */
import { type VerifyResult, verifyAuditLog } from '../../common/src/audit/audit-verifier.ts';
import { readPublicKey } from '../../common/src/audit/checkpoint-signer.ts';
import { exportAuditLog } from '../../common/src/audit/jsonl-export.ts';
import { listSegments } from '../../common/src/audit/log-segments.ts';
import { verifyAuditSeries } from '../../common/src/audit/series-verifier.ts';
import { flag, type ParsedArgs, parseArgs } from '../args.ts';
import type { Command } from '../main.ts';

const USAGE = [
  'kcm audit verify --log FILE --public-key FILE|HEX [--head FILE | --no-head] [--allow-unsigned-tail] [--json]',
  '       kcm audit export --log FILE [--since SEQ] [--raw]',
].join('\n');

function required(p: ParsedArgs, name: string): string {
  const v = flag(p, name);
  if (v === undefined) throw new Error(`--${name} is required`);
  return v;
}

function verify(args: string[]): number {
  const p = parseArgs(args, {
    log: true,
    'public-key': true,
    head: true,
    'no-head': false,
    'allow-unsigned-tail': false,
    json: false,
  });
  const log = required(p, 'log');
  const publicKey = readPublicKey(required(p, 'public-key'));
  if (flag(p, 'head') !== undefined && flag(p, 'no-head')) throw new Error('--head and --no-head exclude each other');
  const head = flag(p, 'no-head') ? null : (flag(p, 'head') ?? `${log}.head`);
  const options = { publicKey, head, allowUnsignedTail: flag(p, 'allow-unsigned-tail') === 'true' };
  if (listSegments(log).length > 0) return verifySeries(log, options, flag(p, 'json') !== undefined);
  const r = verifyAuditLog(log, options);
  if (r.previous !== null)
    r.warnings.push('the log continues a rotated segment that is no longer beside it (removed or archived)');
  if (flag(p, 'json')) {
    console.log(JSON.stringify(r));
  } else {
    for (const w of r.warnings) console.error(`warning: ${w}`);
    if (r.firstBad) {
      const where = r.firstBad.line === 0 ? 'head file' : `seq ${r.firstBad.seq} (line ${r.firstBad.line})`;
      console.log(`FAILED at ${where}: ${r.firstBad.problem}`);
    } else {
      console.log(`OK: ${summary(r)}`);
    }
  }
  return r.ok ? 0 : 1;
}

function summary(r: VerifyResult): string {
  return `${r.lines} lines, ${r.events} events, ${r.checkpoints} signed checkpoints; last checkpoint seq ${r.lastCheckpointSeq}`;
}

/** A log with rotated segments: each file, then the whole chain. */
function verifySeries(log: string, options: Parameters<typeof verifyAuditSeries>[1], json: boolean): number {
  const r = verifyAuditSeries(log, options);
  if (json) {
    console.log(JSON.stringify(r));
    return r.ok ? 0 : 1;
  }
  for (const w of r.warnings) console.error(`warning: ${w}`);
  for (const f of r.files) if (f.result.ok) console.log(`ok ${f.path}: ${summary(f.result)}`);
  if (r.firstBad) console.log(`FAILED in ${r.firstBad.path}: ${r.firstBad.problem}`);
  else
    console.log(`OK: ${r.files.length} files (${r.files.length - 1} rotated segments), ${r.events} events, one chain`);
  return r.ok ? 0 : 1;
}

function exportCmd(args: string[]): number {
  const p = parseArgs(args, { log: true, since: true, raw: false });
  const since = flag(p, 'since');
  if (since !== undefined && !/^\d{1,15}$/.test(since)) throw new Error('--since must be a sequence number');
  const out = exportAuditLog(required(p, 'log'), {
    sinceSeq: since === undefined ? 0 : Number(since),
    raw: flag(p, 'raw') === 'true',
  });
  for (const line of out) process.stdout.write(`${line}\n`);
  return 0;
}

export const auditCommand: Command = {
  name: 'audit',
  summary: 'Verify or export the tamper-evident audit log',
  usage: USAGE,
  run(args) {
    const [sub, ...rest] = args;
    if (sub === 'verify') return verify(rest);
    if (sub === 'export') return exportCmd(rest);
    console.error(`Usage: ${USAGE}`);
    return 2;
  },
};
