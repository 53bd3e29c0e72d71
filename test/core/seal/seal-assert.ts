/** Assertions shared by the seal provider tests. */
import assert from 'node:assert/strict';
import { type SealErrorKind, SealProviderError } from '../../../core/src/seal/seal-provider.ts';

/** Awaits `p` (or calls `fn`) and asserts it fails with a SealProviderError of `kind`; returns the error. */
export async function rejectsWithKind(
  p: Promise<unknown> | (() => unknown),
  kind: SealErrorKind,
  message?: RegExp,
): Promise<SealProviderError> {
  let caught: unknown;
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof SealProviderError, `expected SealProviderError(${kind}), got ${String(caught)}`);
  assert.equal(caught.kind, kind, `expected kind ${kind}: ${caught.message}`);
  if (message) assert.match(caught.message, message);
  return caught;
}

/** No-wait sleep for withRetry, recording the delays asked for. */
export function recordingSleep(): { sleep: (ms: number) => Promise<void>; delays: number[] } {
  const delays: number[] = [];
  return {
    delays,
    sleep: async (ms: number) => {
      delays.push(ms);
    },
  };
}
