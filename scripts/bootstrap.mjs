#!/usr/bin/env node
/**
 * Makes a checkout runnable, doing only what is missing or stale:
 *  1. dependencies: `npm ci` when node_modules is missing or was installed from
 *     another package-lock.json (a hash stamp in node_modules/.kcm-deps-stamp);
 *  2. the native module: `napi build` when the binary is missing or older than
 *     its sources (a hash stamp of native/ sources beside the binary).
 * Plain JavaScript with node built-ins only: it runs before anything is installed.
 *
 *   node scripts/bootstrap.mjs [--native-only] [--force]
 *
 * Without cargo the native build is skipped with a loud warning (the node:crypto
 * fallback is used) — except under CI=true or --native-only, where it fails.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = new Set(process.argv.slice(2));
const force = args.has('--force');
const strictNative = args.has('--native-only') || process.env.CI === 'true';

function log(msg) {
  console.error(`[bootstrap] ${msg}`);
}

function run(cmd, cmdArgs, env = process.env) {
  log(`$ ${cmd} ${cmdArgs.join(' ')}`);
  const r = spawnSync(cmd, cmdArgs, { cwd: root, stdio: 'inherit', env });
  if (r.error) throw r.error;
  if (r.status !== 0) {
    log(`${cmd} exited with ${r.status}`);
    process.exit(r.status ?? 1);
  }
}

function hashFiles(files) {
  const h = createHash('sha256');
  for (const f of files) {
    h.update(f.replace(root, ''));
    h.update('\0');
    h.update(existsSync(f) ? readFileSync(f) : Buffer.alloc(0));
    h.update('\0');
  }
  return h.digest('hex');
}

function listFiles(dir, suffix) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true })
    .map((f) => join(dir, String(f)))
    .filter((f) => f.endsWith(suffix) && statSync(f).isFile())
    .sort();
}

function ensureDependencies() {
  const stampFile = join(root, 'node_modules', '.kcm-deps-stamp');
  const want = hashFiles([join(root, 'package-lock.json'), join(root, 'package.json')]);
  if (!force && existsSync(stampFile) && readFileSync(stampFile, 'utf8') === want) return;
  log(existsSync(join(root, 'node_modules')) ? 'dependencies are stale: reinstalling' : 'installing dependencies');
  run('npm', ['ci', '--no-audit', '--no-fund']);
  writeFileSync(stampFile, want);
}

function findCargo() {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && existsSync(join(dir, 'cargo'))) return join(dir, 'cargo');
  }
  const rustup = join(homedir(), '.cargo', 'bin', 'cargo');
  return existsSync(rustup) ? rustup : null;
}

function nativeBinary() {
  const abi = process.platform === 'linux' ? '-gnu' : '';
  return join(root, 'native', `openkcm-native.${process.platform}-${process.arch}${abi}.node`);
}

function ensureNative() {
  const binary = nativeBinary();
  const stampFile = join(root, 'native', '.kcm-stamp');
  const sources = [
    join(root, 'Cargo.toml'),
    join(root, 'Cargo.lock'),
    join(root, 'native', 'Cargo.toml'),
    join(root, 'native', 'build.rs'),
    ...listFiles(join(root, 'native', 'src'), '.rs'),
  ];
  const want = hashFiles(sources);
  if (!force && existsSync(binary) && existsSync(stampFile) && readFileSync(stampFile, 'utf8') === want) return;
  const cargo = findCargo();
  if (!cargo) {
    const msg = 'cargo not found (PATH or ~/.cargo/bin): cannot build the native module';
    if (strictNative) {
      log(`ERROR: ${msg}`);
      process.exit(1);
    }
    log(`WARNING: ${msg}; OpenKCM will run on the node:crypto fallback (keys NOT in locked memory)`);
    return;
  }
  log(existsSync(binary) ? 'native module is stale: rebuilding' : 'building the native module');
  const env = {
    ...process.env,
    CARGO_NET_OFFLINE: 'true',
    PATH: `${dirname(cargo)}${delimiter}${process.env.PATH ?? ''}`,
  };
  const napi = join(root, 'node_modules', '.bin', 'napi');
  run(
    napi,
    ['build', '--release', '--platform', '--manifest-path', 'native/Cargo.toml', '--output-dir', 'native', '--no-js'],
    env,
  );
  if (!existsSync(binary)) {
    log(`ERROR: the build did not produce ${binary}`);
    process.exit(1);
  }
  writeFileSync(stampFile, want);
}

if (!args.has('--native-only')) ensureDependencies();
ensureNative();
