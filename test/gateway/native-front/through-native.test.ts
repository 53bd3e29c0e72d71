/**
 * The proxy suites again, with their `uws` base pointed at the native front
 * (proxy-fixture.ts, KCM_PROXY_FRONT=native): the routes it serves answer
 * from its own loop (passthrough, upstream faults, headers, slow clients),
 * every other request reaches the pipeline through its tunnel. Each suite
 * must pass unchanged. proxy-upstream-queue.test.ts is left out: it reads
 * the JavaScript pool's queue, which the native front does not use
 * (upstream-queue.test.ts here covers the native pool).
 */
import { describe } from 'node:test';
import { nativeFrontSkip } from './native-front-fixture.ts';

process.env.KCM_PROXY_FRONT = 'native';
const skip = nativeFrontSkip();
if (skip) {
  describe('the proxy suites through the native front', { skip }, () => {});
} else {
  await import('../proxy/proxy-routes.test.ts');
  await import('../proxy/proxy-faults.test.ts');
  await import('../proxy/proxy-header-bytes.test.ts');
  await import('../proxy/slow-clients.test.ts');
}
