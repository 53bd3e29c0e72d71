/**
 * `kcm doctor`: what this machine gives OpenKCM. Node version, the crypto
 * backend and why, whether key memory is locked, whether core dumps are off,
 * and whether the uWebSockets.js native binary (not its emulation) loads.
 * Exit 0; with --strict, exit 1 when any check is not `ok`.
 */

import { loadUws } from '../../gateway/src/http/uws-load.ts';
import { defaultCrypto } from '../../native/index.ts';
import { loadNative } from '../../native/ts/load.ts';
import type { Command } from '../main.ts';
import { productVersion } from './version.ts';

export type CheckState = 'ok' | 'warn' | 'fail';

export interface DoctorCheck {
  name: string;
  state: CheckState;
  detail: string;
}

function nodeCheck(): DoctorCheck {
  const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
  const ok = (major === 20 && minor >= 17) || major >= 22;
  return {
    name: 'node',
    state: ok ? 'ok' : 'fail',
    detail: `v${process.versions.node}${ok ? '' : ' (need 20.17+ or 22+)'}, openssl ${process.versions.openssl}`,
  };
}

function nativeCheck(): DoctorCheck {
  const r = loadNative();
  return r.backend
    ? { name: 'native module', state: 'ok', detail: `loaded from ${r.path}` }
    : { name: 'native module', state: 'fail', detail: `not loaded: ${r.error}` };
}

function backendAndMemoryChecks(): DoctorCheck[] {
  let crypto: ReturnType<typeof defaultCrypto>;
  try {
    crypto = defaultCrypto();
  } catch (err) {
    return [{ name: 'crypto backend', state: 'fail', detail: err instanceof Error ? err.message : String(err) }];
  }
  const forced = process.env.KCM_CRYPTO_BACKEND ? ` (KCM_CRYPTO_BACKEND=${process.env.KCM_CRYPTO_BACKEND})` : '';
  const backend: DoctorCheck = {
    name: 'crypto backend',
    state: crypto.backend.name === 'native' ? 'ok' : 'warn',
    detail: `${crypto.backend.name}${forced}`,
  };
  const key = crypto.generateKey();
  const { locked } = key.info();
  key.destroy();
  const status = crypto.backend.status();
  const memory: DoctorCheck = locked
    ? { name: 'key memory', state: 'ok', detail: 'locked (mlock, MADV_DONTDUMP)' }
    : { name: 'key memory', state: 'warn', detail: `NOT locked: ${status.memoryLockError ?? 'unknown reason'}` };
  return [backend, memory];
}

function uwsCheck(): DoctorCheck {
  const r = loadUws();
  return r.uws
    ? { name: 'uWebSockets.js', state: 'ok', detail: `native binary ${r.binary}` }
    : { name: 'uWebSockets.js', state: 'fail', detail: `fast path unavailable: ${r.error}` };
}

/** Runs every check; never throws. */
export function collectDoctorReport(): DoctorCheck[] {
  return [nodeCheck(), nativeCheck(), ...backendAndMemoryChecks(), uwsCheck()];
}

export function renderDoctorReport(checks: readonly DoctorCheck[]): string {
  const width = Math.max(...checks.map((c) => c.name.length));
  const mark = { ok: ' ok ', warn: 'WARN', fail: 'FAIL' } as const;
  return [
    `OpenKCM ${productVersion()}: environment report`,
    ...checks.map((c) => `  [${mark[c.state]}] ${c.name.padEnd(width)}  ${c.detail}`),
  ].join('\n');
}

export const doctorCommand: Command = {
  name: 'doctor',
  summary: 'Report the environment: node, native crypto module, key memory locking, uWebSockets.js',
  usage: 'kcm doctor [--json] [--strict]',
  run(args) {
    const unknown = args.filter((a) => a !== '--json' && a !== '--strict');
    if (unknown.length > 0) throw new Error(`unknown option ${unknown[0]}`);
    const checks = collectDoctorReport();
    console.log(args.includes('--json') ? JSON.stringify({ checks }, null, 2) : renderDoctorReport(checks));
    return args.includes('--strict') && checks.some((c) => c.state !== 'ok') ? 1 : 0;
  },
};
