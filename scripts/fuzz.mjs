#!/usr/bin/env node
/**
 * Fuzzes the native crate's readers of hostile bytes with libFuzzer
 * (native/fuzz/targets.rs names the targets and what each checks).
 *
 *   node scripts/fuzz.mjs [TARGET …] [--seconds N] [--jobs N] [--quiet]
 *   npm run fuzz -- http1-request --seconds 300
 *
 * Without TARGET every target runs in turn (default 60 s each). It builds
 * native/fuzz with libFuzzer's coverage instrumentation (rustc's sancov
 * pass, `--target` so build scripts stay plain), links it with clang's
 * libFuzzer (Debian: clang-14 and libclang-rt-14-dev), and keeps each
 * target's corpus in target/fuzz/corpus/TARGET, so later runs start where
 * earlier ones stopped. Each target also starts from its committed seeds
 * (native/fuzz/seeds/TARGET) and dictionary (native/fuzz/dict/TARGET.dict). A finding stops the run with exit 1; libFuzzer
 * writes the input that caused it to target/fuzz/crash-…, which
 * `KCM_FUZZ_TARGET=T target/fuzz/kcm-fuzz FILE` replays.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const TARGETS = [
  'json-targets',
  'json-rules',
  'http1-request',
  'http1-answer',
  'open-splice',
  'base64url',
  'shamir',
  'rsa-spki',
  'unwrap',
  'front-request',
];

const usage = () => {
  console.error(`usage: node scripts/fuzz.mjs [${TARGETS.join('|')} …] [--seconds N] [--jobs N] [--quiet]`);
  process.exit(2);
};
let parsed;
try {
  parsed = parseArgs({
    allowPositionals: true,
    options: {
      seconds: { type: 'string', default: '60' },
      jobs: { type: 'string', default: '1' },
      quiet: { type: 'boolean', default: false },
    },
  });
} catch {
  usage();
}
const { values, positionals } = parsed;
// Whole numbers only: libFuzzer reads `-max_total_time=0.5` as 0, which is no limit at all.
const whole = (v) => (/^[1-9][0-9]*$/.test(v) ? Number(v) : Number.NaN);
const seconds = whole(values.seconds);
const jobs = whole(values.jobs);
const unknown = positionals.filter((t) => !TARGETS.includes(t));
if (unknown.length > 0 || !(seconds > 0) || !(jobs >= 1)) usage();

function which(names) {
  for (const name of names) {
    for (const dir of (process.env.PATH ?? '').split(delimiter)) {
      if (dir && existsSync(join(dir, name))) return join(dir, name);
    }
  }
  return null;
}

const clang = which(['clang-14', 'clang']);
if (!clang) {
  console.error('clang not found: apt-get install clang-14 libclang-rt-14-dev');
  process.exit(1);
}
const run = (cmd, args, env = {}) => {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } });
  return r.status ?? 1;
};

/**
 * Runs a fuzz target. With --quiet its progress lines (one per new input)
 * are kept back: only the summary is printed, or, when it fails, the last 80
 * lines, where libFuzzer names the finding and the file holding the input.
 */
const fuzz = (args, env) => {
  if (!values.quiet) return run(bin, args, env);
  const r = spawnSync(bin, args, {
    cwd: root,
    stdio: ['ignore', 'inherit', 'pipe'],
    env: { ...process.env, ...env },
    maxBuffer: 1 << 30,
  });
  const lines = r.stderr.toString('utf8').split('\n');
  const status = r.status ?? 1;
  const shown =
    status === 0 ? lines.filter((l) => /^#\d+\s+DONE|^stat::|^INFO: seed corpus/.test(l)) : lines.slice(-80);
  console.error(shown.join('\n'));
  return status;
};

const cargoDir = join(homedir(), '.cargo', 'bin');
const cargoPath = `${process.env.PATH ?? ''}${delimiter}${cargoDir}`;
// The host's target triple: `--target` keeps RUSTFLAGS off build scripts, and names the output folder.
const host = /^host: (\S+)$/m.exec(
  spawnSync('rustc', ['-vV'], { encoding: 'utf8', env: { ...process.env, PATH: cargoPath } }).stdout ?? '',
)?.[1];
if (!host) {
  console.error('rustc not found (PATH or ~/.cargo/bin)');
  process.exit(1);
}
const sancov = [
  '-Cpasses=sancov-module',
  '-Cllvm-args=-sanitizer-coverage-level=4',
  '-Cllvm-args=-sanitizer-coverage-inline-8bit-counters',
  '-Cllvm-args=-sanitizer-coverage-pc-table',
  '-Cllvm-args=-sanitizer-coverage-trace-compares',
  // Overflow and debug assertions on: an arithmetic slip is a finding, not a wrap.
  '-Cdebug-assertions',
  '-Coverflow-checks',
].join(' ');
const built = run(
  'cargo',
  ['build', '--release', '--offline', '-p', 'openkcm-native-fuzz', '--target-dir', 'target/fuzz', '--target', host],
  { RUSTFLAGS: sancov, PATH: cargoPath },
);
if (built !== 0) process.exit(built);
const bin = join(root, 'target', 'fuzz', 'kcm-fuzz');
const lib = join(root, 'target', 'fuzz', host, 'release', 'libopenkcm_native_fuzz.a');
const linked = run(clang, ['-fsanitize=fuzzer', lib, '-o', bin, '-l:libcrypto.so.3', '-lpthread', '-ldl', '-lm']);
if (linked !== 0) process.exit(linked);

for (const target of positionals.length > 0 ? positionals : TARGETS) {
  const corpus = join(root, 'target', 'fuzz', 'corpus', target);
  // Committed starting points: a few valid inputs, and the tokens of the format.
  const seeds = join(root, 'native', 'fuzz', 'seeds', target);
  const dict = join(root, 'native', 'fuzz', 'dict', `${target}.dict`);
  mkdirSync(corpus, { recursive: true });
  console.error(`fuzz: ${target}, ${seconds} s, corpus ${corpus}`);
  const status = fuzz(
    [
      `-max_total_time=${seconds}`,
      // Several jobs fork workers that log to fuzz-N.log; one runs in this process and prints here.
      ...(jobs > 1 ? [`-jobs=${jobs}`, `-workers=${jobs}`] : []),
      '-print_final_stats=1',
      `-artifact_prefix=${join(root, 'target', 'fuzz')}/`,
      ...(existsSync(dict) ? [`-dict=${dict}`] : []),
      corpus,
      ...(existsSync(seeds) ? [seeds] : []),
    ],
    { KCM_FUZZ_TARGET: target },
  );
  if (status !== 0) {
    console.error(`fuzz: ${target} found a failing input (exit ${status}); see target/fuzz/crash-*`);
    process.exit(1);
  }
}
