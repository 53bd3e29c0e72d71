#!/usr/bin/env node
/**
 * Everything `npm test` checks, in order: Rust unit tests (cargo test), the
 * TypeScript type check (tsc --noEmit, TS 7), lint and format (Biome), then
 * every TypeScript test file under test/ with node's test runner (whose
 * summary is the last thing printed). Exits non-zero if any step failed.
 *
 *   node scripts/check.mjs [--only rust|types|lint|ts] [test files…]
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const onlyAt = argv.indexOf('--only');
const only = onlyAt >= 0 ? argv[onlyAt + 1] : undefined;
const files = argv.filter((a, i) => !a.startsWith('--') && (onlyAt < 0 || i !== onlyAt + 1));
const bin = (name) => join(root, 'node_modules', '.bin', name);
const cargoDir = join(homedir(), '.cargo', 'bin');
const env = { ...process.env, CARGO_NET_OFFLINE: 'true', PATH: `${process.env.PATH ?? ''}${delimiter}${cargoDir}` };

function step(name, cmd, args) {
  console.error(`\n=== ${name}: ${cmd.replace(root, '.')} ${args.join(' ')}`);
  const t0 = Date.now();
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env });
  const ok = !r.error && r.status === 0;
  // The test runner's own summary must stay the last lines printed, so a passing last step adds nothing.
  if (!ok || name !== 'tests') {
    console.error(
      `=== ${name}: ${ok ? 'ok' : `FAILED (${r.error?.message ?? `exit ${r.status}`})`} in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
    );
  }
  return ok;
}

function testFiles() {
  if (files.length > 0) return files;
  return readdirSync(join(root, 'test'), { recursive: true })
    .map(String)
    .filter((f) => f.endsWith('.test.ts'))
    .map((f) => relative(root, join(root, 'test', f)))
    .sort();
}

const steps = [
  ['rust', () => step('cargo test', 'cargo', ['test', '--offline', '--release', '--workspace'])],
  ['types', () => step('type check', bin('tsc'), ['--noEmit', '-p', 'tsconfig.json'])],
  ['lint', () => step('lint + format', bin('biome'), ['check', '.'])],
  ['ts', () => step('tests', process.execPath, ['--import', 'tsx', '--test', ...testFiles()])],
];

if (only && !steps.some(([n]) => n === only)) {
  console.error(`unknown step ${only}; one of ${steps.map(([n]) => n).join(', ')}`);
  process.exit(2);
}
if (!existsSync(bin('tsc'))) {
  console.error('dependencies missing: run npm test (it bootstraps) or node scripts/bootstrap.mjs');
  process.exit(1);
}
const failed = steps
  .filter(([n]) => !only || n === only)
  .filter(([, run]) => !run())
  .map(([n]) => n);
if (failed.length > 0) {
  console.error(`\nFAILED steps: ${failed.join(', ')}`);
  process.exit(1);
}
