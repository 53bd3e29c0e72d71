/** The uWS fast path runs on the native binary, never on the package's silent fallback. */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import { requireNativeUws } from '../../../gateway/src/http/uws-adapter.ts';
import { type Fixture, getText, startFixture } from '../api/gateway-fixture.ts';

const BINARY = `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`;

describe('uWS adapter', () => {
  it('serves from the native binary (uws_linux_x64_115.node on this machine)', async () => {
    const f: Fixture = await startFixture({ h2Plain: undefined } as never);
    try {
      assert.equal((await getText(f, `${f.base.uws}/healthz`)).status, 200);
      const require = createRequire(import.meta.url);
      const keys = Object.keys(require.cache).filter((k) => k.endsWith(BINARY));
      assert.equal(keys.length, 1, `${BINARY} is in the module cache`);
      assert.ok(f.gw.uwsBinary?.endsWith(BINARY));
      if (process.platform === 'linux' && process.arch === 'x64' && process.versions.modules === '115') {
        assert.ok(keys[0]?.endsWith('uws_linux_x64_115.node'));
      }
      assert.ok(
        !Object.keys(require.cache).some((k) => k.includes('uws-js-unofficial/dist/index.js')),
        'fallback not loaded',
      );
    } finally {
      await f.close();
    }
  });

  it('returns the native module from requireNativeUws', () => {
    const { uws, binary } = requireNativeUws();
    assert.equal(typeof uws.App, 'function');
    assert.ok(binary.endsWith(BINARY));
  });
});
