/**
 * Loads uWebSockets.js and proves its native binary is what loaded.
 *
 * The package we use (@trufflesuite/uws-js-unofficial, pinned) silently falls
 * back to a slow `ws`/node:http emulation when its binary cannot load or when
 * UWS_USE_FALLBACK is set. The fast path must never run on that fallback, so
 * this is the only module that requires uWS, and it reports the binary it saw
 * in the module cache. Only the uWS adapter (and `kcm doctor`) calls it.
 */
import { createRequire } from 'node:module';

export const UWS_PACKAGE = '@trufflesuite/uws-js-unofficial';

export interface UwsLoadResult {
  /** The uWS module, only when its native binary is the one that loaded. */
  uws: unknown | null;
  /** Absolute path of the loaded native binary, when it loaded. */
  binary?: string;
  /** Why the native fast path is unavailable. */
  error?: string;
}

let cached: UwsLoadResult | undefined;

/** Loads uWS once. Never throws; never returns the emulation as `uws`. */
export function loadUws(): UwsLoadResult {
  if (cached) return cached;
  const require = createRequire(import.meta.url);
  const fallbackForced = /^(1|true)$/i.test(process.env.UWS_USE_FALLBACK ?? '');
  if (fallbackForced) {
    cached = { uws: null, error: 'UWS_USE_FALLBACK is set: refusing the emulated fallback' };
    return cached;
  }
  const expected = `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`;
  const warn = console.warn;
  let warned = '';
  try {
    console.warn = (...args: unknown[]) => {
      warned += args.map(String).join(' ');
    };
    const mod = require(UWS_PACKAGE) as unknown;
    const binary = Object.keys(require.cache).find((k) => k.endsWith(expected));
    cached = binary
      ? { uws: mod, binary }
      : {
          uws: null,
          error: `native binary ${expected} did not load${warned ? `: ${warned.split('\n')[2] ?? warned}` : ''}`,
        };
  } catch (err) {
    cached = { uws: null, error: `${UWS_PACKAGE} not loadable: ${err instanceof Error ? err.message : String(err)}` };
  } finally {
    console.warn = warn;
  }
  return cached;
}
