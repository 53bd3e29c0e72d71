/**
 * A slow token does not hold the event loop: the pkcs11 backend over
 * bench/hsm/slow-token.c (a PKCS#11 module over SoftHSM2 whose per-request
 * calls each wait 40 ms, as a network HSM's round trips) seals a field while
 * a 5 ms timer measures how late the event loop runs it. With the token
 * workers the timer keeps time; with `inline` it waits for the token (which
 * shows the measure can tell them apart). Needs gcc to build the module;
 * skipped with the reason without it or SoftHSM, except under CI=true.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { encryptFieldsAsync } from '../../../common/src/crypto/field-cipher.ts';
import { KcmError } from '../../../common/src/errors.ts';
import { HsmBackend } from '../../../gateway/src/hsm/hsm-backend.ts';
import { cryptoFor } from '../../../native/index.ts';
import { buildSlowToken, slowTokenSkip } from '../../support/slow-token.ts';
import { createSoftHsmToken, SOFTHSM_MODULE, type SoftHsmToken } from '../../support/softhsm.ts';

const DELAY_MS = 40;

/**
 * The longest a 5 ms timer was late while the work `start` begins ran, in
 * ms. The timer is armed first: inline, the token calls run inside start().
 */
async function loopLateness(start: () => Promise<unknown>): Promise<number> {
  let worst = 0;
  let done = false;
  const ticking = (async () => {
    while (!done) {
      const t = performance.now();
      await new Promise((r) => setTimeout(r, 5));
      worst = Math.max(worst, performance.now() - t - 5);
    }
  })();
  try {
    await new Promise((r) => setImmediate(r));
    await start();
  } finally {
    done = true;
    await ticking;
  }
  return worst;
}

describe('pkcs11 backend over a slow token (bench/hsm/slow-token.c)', { skip: slowTokenSkip() }, () => {
  let dir: string;
  let token: SoftHsmToken;
  let shim: string;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'kcm-slow-token-'));
    shim = buildSlowToken(dir);
    token = createSoftHsmToken();
    process.env.KCM_SLOW_TOKEN_MODULE = SOFTHSM_MODULE;
    process.env.KCM_SLOW_TOKEN_US = String(DELAY_MS * 1000);
  });
  after(() => {
    token?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a token slower than hsm.timeoutMs: the request fails with 503 in time, a fresh worker takes the next', async () => {
    const hsm = await HsmBackend.open({
      module: shim,
      tokenLabel: token.tokenLabel,
      pin: token.pin,
      sessions: 1,
      // Well under a seal of five fields (13 calls: 520 ms); the set-up's steps have their own, longer deadline.
      timeoutMs: 300,
      crypto: cryptoFor('native'),
    });
    try {
      const view = hsm.view(cryptoFor('native').generateKey());
      const ref = { tenant: 't1', keyId: 'k', keyVersion: 1 };
      const fields = ['a', 'b', 'c', 'd', 'e'];
      const seal = () =>
        encryptFieldsAsync(
          view,
          ref,
          fields.map((f) => Buffer.from(f)),
          fields.map((f) => Buffer.from(f)),
        );
      const started = performance.now();
      await assert.rejects(seal(), (e: unknown) => {
        assert.ok(e instanceof KcmError && e.code === 'hsm_unavailable' && e.status === 503, String(e));
        assert.match(e.message, /no answer from the token within 300 ms/);
        return true;
      });
      const took = performance.now() - started;
      assert.ok(took < 450, `answered after ${took.toFixed(0)} ms`);
      assert.equal(hsm.stats().stuckThreads, 1, 'the thread is still in its token call');
      const errors = hsm.stats().errors;
      // The next request goes to a fresh worker (and times out too: the token is still slow).
      await assert.rejects(seal(), (e: unknown) => e instanceof KcmError && e.code === 'hsm_unavailable');
      assert.equal(hsm.stats().errors, errors + 1);
      // Once its call returned, a given-up thread ends.
      await new Promise((r) => setTimeout(r, 14 * DELAY_MS));
      assert.equal(hsm.stats().stuckThreads, 0);
    } finally {
      await hsm.close();
    }
  });

  for (const inline of [false, true]) {
    it(inline ? 'inline: the event loop waits for the token' : 'workers: the event loop keeps time', async () => {
      const hsm = await HsmBackend.open({
        module: shim,
        tokenLabel: token.tokenLabel,
        pin: token.pin,
        sessions: 1,
        inline,
        crypto: cryptoFor('native'),
      });
      try {
        const view = hsm.view(cryptoFor('native').generateKey());
        const ref = { tenant: 't1', keyId: 'k', keyVersion: 1 };
        let sealed: string[] = [];
        const started = performance.now();
        const late = await loopLateness(async () => {
          sealed = await encryptFieldsAsync(view, ref, [Buffer.from('4111 1111 1111 1111')], [Buffer.from('c')]);
        });
        const took = performance.now() - started;
        // Unwrap, random, init, encrypt, destroy: five delayed calls.
        assert.ok(took >= 5 * DELAY_MS, `the token answered in ${took.toFixed(0)} ms: the module did not delay`);
        if (inline) assert.ok(late >= 4 * DELAY_MS, `a 5 ms timer ran only ${late.toFixed(1)} ms late`);
        else assert.ok(late < 3 * DELAY_MS, `a 5 ms timer ran ${late.toFixed(1)} ms late while the token worked`);
        assert.equal(sealed.length, 1);
      } finally {
        await hsm.close();
      }
    });
  }
});
