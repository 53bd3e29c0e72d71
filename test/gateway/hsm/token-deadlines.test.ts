/**
 * The pkcs11 backend's start-up deadlines, over bench/hsm/slow-token.c on a
 * real SoftHSM2 token: a token worker whose module never finishes loading
 * (its C_Initialize hangs, as a client library that cannot reach its HSM
 * does), and a transport key set-up step that never ends (the RSA pair's
 * C_GenerateKeyPair hangs). Each makes HsmBackend.open fail with 503
 * `hsm_unavailable` in bounded time, naming what did not answer, leaves the
 * blocked thread counted as stuck, and that thread ends once its call
 * returns (open() gives it close()'s 2 s first, so the hang is longer). The deadlines' 30 s floors are lowered for the test
 * (`startTimeoutMs`, `setUpTimeoutMs`: not in the gateway's config).
 *
 * One copy of the module per case: it reads its faults from the environment
 * when first loaded. The set-up case runs first: after the start-up case the
 * module is left initialised on purpose (a thread was inside it).
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { KcmError } from '../../../common/src/errors.ts';
import { HsmBackend } from '../../../gateway/src/hsm/hsm-backend.ts';
import { stuckTokenThreads } from '../../../gateway/src/hsm/token-workers.ts';
import { cryptoFor } from '../../../native/index.ts';
import { buildSlowToken, slowTokenSkip } from '../../support/slow-token.ts';
import { createSoftHsmToken, SOFTHSM_MODULE, type SoftHsmToken } from '../../support/softhsm.ts';

/** How long the hung call lasts: long against the deadlines, short enough for the thread to end within the test. */
const HANG_MS = 8000;
/** Long enough for the steps before the hung one (workers start, login check) on a busy 2-CPU machine. */
const DEADLINE_MS = 1000;
/**
 * open() fails after the deadline plus close()'s wait for the given-up
 * thread (2 s, token-workers.ts): about 3.5 s; well before the hang ends.
 */
const FAILS_WITHIN_MS = HANG_MS - 2000;

/** A fresh copy of the slow module in its own directory: loaded apart from the others, it reads its faults anew. */
function shimWith(dir: string, name: string): string {
  const d = join(dir, name);
  mkdirSync(d);
  return buildSlowToken(d);
}

async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 25));
  return cond();
}

function withEnv<T>(env: Record<string, string>, f: () => Promise<T>): Promise<T> {
  const old = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  return f().finally(() => {
    for (const [k, v] of Object.entries(old)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });
}

describe('pkcs11 backend start-up deadlines (bench/hsm/slow-token.c)', { skip: slowTokenSkip() }, () => {
  let dir: string;
  let token: SoftHsmToken;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'kcm-token-deadlines-'));
    token = createSoftHsmToken();
  });
  after(() => {
    token?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  const open = (module: string, o: { startTimeoutMs?: number; setUpTimeoutMs?: number }) =>
    HsmBackend.open({
      module,
      tokenLabel: token.tokenLabel,
      pin: token.pin,
      sessions: 1,
      timeoutMs: 100,
      crypto: cryptoFor('native'),
      ...o,
    });

  it('a transport key set-up step that never ends: open() fails with 503 in time, the thread ends when its call returns', async () => {
    const shim = shimWith(dir, 'keygen');
    const started = performance.now();
    await withEnv(
      {
        KCM_SLOW_TOKEN_MODULE: SOFTHSM_MODULE,
        KCM_SLOW_TOKEN_US: '0',
        KCM_SLOW_TOKEN_KEYGEN_US: String(HANG_MS * 1000),
      },
      () =>
        assert.rejects(open(shim, { setUpTimeoutMs: DEADLINE_MS }), (e: unknown) => {
          assert.ok(e instanceof KcmError && e.code === 'hsm_unavailable' && e.status === 503, String(e));
          assert.match(
            e.message,
            new RegExp(`transport key set-up: token worker: no answer from the token within ${DEADLINE_MS} ms`),
          );
          return true;
        }),
    );
    const took = performance.now() - started;
    // Start-up (workers, login), the deadline and close()'s wait; the hung call alone lasts HANG_MS.
    assert.ok(took < FAILS_WITHIN_MS, `open() failed after ${took.toFixed(0)} ms`);
    assert.equal(stuckTokenThreads(), 1, 'the worker blocked in C_GenerateKeyPair is counted');
    assert.ok(await until(() => stuckTokenThreads() === 0, HANG_MS + 3000), 'the thread ended once its call returned');
  });

  it('a token worker whose module never finishes loading: open() fails with 503 in time, the thread ends when its call returns', async () => {
    const shim = shimWith(dir, 'init');
    const started = performance.now();
    await withEnv(
      { KCM_SLOW_TOKEN_MODULE: SOFTHSM_MODULE, KCM_SLOW_TOKEN_US: '0', KCM_SLOW_TOKEN_INIT_US: String(HANG_MS * 1000) },
      () =>
        assert.rejects(open(shim, { startTimeoutMs: DEADLINE_MS }), (e: unknown) => {
          assert.ok(e instanceof KcmError && e.code === 'hsm_unavailable' && e.status === 503, String(e));
          assert.match(e.message, new RegExp(`did not load the module within ${DEADLINE_MS} ms`));
          return true;
        }),
    );
    const took = performance.now() - started;
    assert.ok(took < FAILS_WITHIN_MS, `open() failed after ${took.toFixed(0)} ms`);
    assert.equal(stuckTokenThreads(), 1, 'the worker blocked in C_Initialize is counted');
    assert.ok(await until(() => stuckTokenThreads() === 0, HANG_MS + 3000), 'the thread ended once its call returned');
  });
});
