/**
 * Turns measured rates into the AEAD benchmark's verdicts and Markdown.
 *
 * Contract:
 *  - Rates are messages (fields) per second; MB/s is plaintext bytes
 *    (10^6 B) per second; batches/s = messages/s ÷ 16 for the batch case.
 *  - A ratio is median ÷ median; its range is the min–max of the per-round
 *    ratios (rounds are interleaved, so round i of both rows ran back to back).
 *  - The "native" reference of a case is the `native` row (single messages)
 *    or the `native-batch` row (sealBatch, batch case).
 *  - Targets: (1) batch: native sealBatch fields/s ≥ 4 × node:crypto by hand
 *    fields/s; (2) 16 KB: native sealInto ≥ 0.8 × openssl speed. A target whose
 *    rows are missing is N/A with the reason, never PASS.
 *  - Nothing here measures or throws on FAIL; run.ts decides the exit code.
 */
import type { CaseDef, Role } from './cases.ts';
import type { MachineFacts } from './machine.ts';
import { pairedRatio, type Spread, spread } from './measure.ts';

export interface RowResult {
  role: Role;
  name: string;
  calls: string;
  messagesPerOp: number;
  /** Messages per second, per round. */
  rounds: number[];
  msgsPerSec: Spread;
  batchesPerSec?: Spread;
  mbPerSec: number;
}

export interface CaseResult {
  def: CaseDef;
  rows: RowResult[];
  /** Rows that could not run, with why. */
  missing: { name: string; reason: string }[];
}

export interface Ratio {
  caseId: string;
  label: string;
  value: number;
  /** Per-round min–max. */
  range: Spread;
}

export interface Target {
  id: 1 | 2;
  text: string;
  threshold: number;
  verdict: 'PASS' | 'FAIL' | 'N/A';
  ratio?: Ratio;
  reason?: string;
}

export interface RunInfo {
  date: string;
  mode: 'full' | 'quick';
  rounds: number;
  roundMs: number;
  warmupMs: number;
  settleMs: number;
  opensslSeconds: number;
  machine: MachineFacts;
  opensslCli: string;
  backend: string;
  pinning: string;
}

export function rowResult(
  role: Role,
  name: string,
  calls: string,
  messagesPerOp: number,
  bytes: number,
  opsRates: number[],
): RowResult {
  const rounds = opsRates.map((r) => r * messagesPerOp);
  const msgsPerSec = spread(rounds);
  const row: RowResult = {
    role,
    name,
    calls,
    messagesPerOp,
    rounds,
    msgsPerSec,
    mbPerSec: (msgsPerSec.median * bytes) / 1e6,
  };
  if (messagesPerOp > 1) row.batchesPerSec = spread(opsRates);
  return row;
}

function nativeRef(c: CaseResult): RowResult | undefined {
  return c.rows.find((r) => r.role === (c.def.fields > 1 ? 'native-batch' : 'native'));
}

function ratioOf(c: CaseResult, a: RowResult, b: RowResult): Ratio {
  return {
    caseId: c.def.id,
    label: `${a.name} ÷ ${b.name}`,
    value: a.msgsPerSec.median / b.msgsPerSec.median,
    range: pairedRatio(a.rounds, b.rounds),
  };
}

/** native ÷ node:crypto, native ÷ libsodium, native ÷ openssl for every case where both rows exist. */
export function ratios(cases: readonly CaseResult[]): Ratio[] {
  const out: Ratio[] = [];
  for (const c of cases) {
    const n = nativeRef(c);
    if (!n) continue;
    for (const role of ['node-crypto', 'libsodium', 'openssl'] as const) {
      const other = c.rows.find((r) => r.role === role);
      if (other) out.push(ratioOf(c, n, other));
    }
  }
  return out;
}

function target(id: 1 | 2, text: string, threshold: number, c: CaseResult | undefined, a: Role, b: Role): Target {
  const ra = c?.rows.find((r) => r.role === a);
  const rb = c?.rows.find((r) => r.role === b);
  if (!c || !ra || !rb) {
    const gone = c?.missing.map((m) => `${m.name}: ${m.reason}`).join('; ');
    return { id, text, threshold, verdict: 'N/A', reason: gone || `rows ${a}/${b} not measured` };
  }
  const ratio = ratioOf(c, ra, rb);
  return { id, text, threshold, verdict: ratio.value >= threshold ? 'PASS' : 'FAIL', ratio };
}

export function targets(cases: readonly CaseResult[]): Target[] {
  const byId = (id: string) => cases.find((c) => c.def.id === id);
  return [
    target(
      1,
      'native sealBatch of 16×64 B ≥ 4× node:crypto sealing the 16 fields one call each (fields/s)',
      4,
      byId('batch16x64B'),
      'native-batch',
      'node-crypto',
    ),
    target(
      2,
      'native at 16 KB (sealInto a reused output buffer) ≥ 80% of openssl speed at 16 KB',
      0.8,
      byId('16KB'),
      'native-into',
      'openssl',
    ),
  ];
}

/** 1234567 → "1.23 M", 45678 → "45.7 k". */
export function rate(x: number): string {
  if (x >= 1e6) return `${(x / 1e6).toFixed(2)} M`;
  if (x >= 1e3) return `${(x / 1e3).toFixed(1)} k`;
  return x.toFixed(0);
}

function mb(x: number): string {
  return x >= 100 ? x.toFixed(0) : x.toFixed(1);
}

function times(x: number): string {
  return x >= 10 ? `${x.toFixed(1)}×` : `${x.toFixed(2)}×`;
}

/** The results table (one row per case × contestant). */
export function resultsTable(cases: readonly CaseResult[]): string {
  const lines = [
    '| Case | Contestant | Calls/op | msgs/s (median) | spread (min–max) | batches/s | MB/s | native ÷ row |',
    '|---|---|---|--:|--:|--:|--:|--:|',
  ];
  for (const c of cases) {
    const n = nativeRef(c);
    for (const r of c.rows) {
      const rel = n ? times(n.msgsPerSec.median / r.msgsPerSec.median) : 'n/a';
      const b = r.batchesPerSec ? rate(r.batchesPerSec.median) : '';
      const sp = `${rate(r.msgsPerSec.min)}–${rate(r.msgsPerSec.max)}`;
      lines.push(
        `| ${c.def.label} | ${r.name} | ${r.calls} | ${rate(r.msgsPerSec.median)} | ${sp} | ${b} | ${mb(r.mbPerSec)} | ${rel} |`,
      );
    }
    for (const m of c.missing) lines.push(`| ${c.def.label} | ${m.name} | | n/a | ${m.reason} | | | |`);
  }
  return lines.join('\n');
}

export function ratiosTable(rs: readonly Ratio[]): string {
  const lines = ['| Case | Ratio | median | per-round range |', '|---|---|--:|--:|'];
  for (const r of rs)
    lines.push(`| ${r.caseId} | ${r.label} | ${times(r.value)} | ${times(r.range.min)}–${times(r.range.max)} |`);
  return lines.join('\n');
}

export function targetLines(ts: readonly Target[]): string {
  return ts
    .map((t) => {
      if (!t.ratio) return `${t.verdict} target ${t.id}: ${t.text}: ${t.reason}`;
      const { value, range } = t.ratio;
      const pct = t.threshold < 1 ? ` = ${(value * 100).toFixed(0)}%` : '';
      return `${t.verdict} target ${t.id}: ${t.text}: measured ${times(value)}${pct} (per-round ${times(range.min)}–${times(range.max)}; need ≥ ${times(t.threshold)})`;
    })
    .join('\n');
}

export function machineSection(info: RunInfo): string {
  const m = info.machine;
  return [
    `- Date: ${info.date}`,
    `- CPU: ${m.cpuModel}; nproc ${m.nproc}; ${m.platform}`,
    `- Node ${m.node}; OpenSSL in node ${m.nodeOpenssl}; openssl CLI: ${info.opensslCli}`,
    `- Crypto backend loaded: ${info.backend}`,
    `- Pinning: ${info.pinning}`,
    `- Mode: ${info.mode}: warm-up ${info.warmupMs} ms, then ${info.rounds} interleaved rounds × ${info.roundMs} ms per contestant (openssl: ${info.opensslSeconds} s per round; the contestant after openssl first runs ${info.settleMs} ms untimed, to absorb the fork's after-effects)`,
  ].join('\n');
}

/** The whole Markdown report. */
export function markdown(
  info: RunInfo,
  cases: readonly CaseResult[],
  rs: readonly Ratio[],
  ts: readonly Target[],
): string {
  return [
    '## AEAD seal benchmark',
    '',
    machineSection(info),
    '',
    resultsTable(cases),
    '',
    ratiosTable(rs),
    '',
    '```',
    targetLines(ts),
    '```',
    '',
  ].join('\n');
}
