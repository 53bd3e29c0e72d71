/**
 * Configuration of the pkcs11 backend: the gateway config's `hsm` section,
 * the policy field `backend` (routes and defaults), and the start-up refusal
 * of a pkcs11 route without `hsm`. No token needed.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KcmError } from '../../../common/src/errors.ts';
import { gatewayConfig } from '../../../gateway/src/gateway-config.ts';
import { LocalGatewayKeys } from '../../../gateway/src/gateway-keys.ts';
import { startGateway } from '../../../gateway/src/gateway-server.ts';
import { PolicySet } from '../../../gateway/src/policy/policy-loader.ts';
import { compilePolicy } from '../../../gateway/src/policy/policy-schema.ts';

const PIN_ENV = { KCM_DEV: '1', KCM_TEST_HSM_PIN: 'not-a-real-pin-1234' };
const base = { dev: true, fronts: { uws: { port: 0 } } };

function configError(hsm: unknown, env: NodeJS.ProcessEnv = PIN_ENV): string {
  try {
    gatewayConfig({ ...base, hsm }, '/etc/okcm', env);
  } catch (err) {
    assert.ok(err instanceof KcmError && err.code === 'invalid_config', String(err));
    return err.message;
  }
  assert.fail('expected invalid_config');
}

describe('gateway config: hsm', () => {
  it('accepts a token by label or slot, resolves the module path, defaults sessions and keys', () => {
    const c = gatewayConfig(
      {
        ...base,
        hsm: { module: 'lib/softhsm.so', tokenLabel: 'edge', pinEnv: 'KCM_TEST_HSM_PIN', keys: ['hsm-orders'] },
      },
      '/etc/okcm',
      PIN_ENV,
    );
    assert.deepEqual(c.hsm, {
      module: '/etc/okcm/lib/softhsm.so',
      tokenLabel: 'edge',
      pinEnv: 'KCM_TEST_HSM_PIN',
      sessions: 2,
      inline: false,
      timeoutMs: 10_000,
      keys: ['hsm-orders'],
    });
    const s = gatewayConfig(
      { ...base, hsm: { module: '/m.so', slot: 0, pinEnv: 'KCM_TEST_HSM_PIN', sessions: 4, inline: true } },
      '/',
      PIN_ENV,
    );
    assert.equal(s.hsm?.slot, 0);
    assert.equal(s.hsm?.inline, true);
    assert.deepEqual(s.hsm?.keys, []);
  });

  it('names the bad field, and never prints the PIN', () => {
    const ok = { module: '/m.so', tokenLabel: 'edge', pinEnv: 'KCM_TEST_HSM_PIN' };
    const cases: [unknown, RegExp][] = [
      ['softhsm', /hsm: must be an object/],
      [{ ...ok, pin: '1234' }, /hsm\.pin: unknown field/],
      [{ ...ok, slot: 1 }, /hsm: give exactly one of tokenLabel and slot/],
      [{ module: '/m.so', pinEnv: 'KCM_TEST_HSM_PIN' }, /hsm: give exactly one/],
      [{ ...ok, module: '' }, /hsm\.module: must be a non-empty string/],
      [{ ...ok, pinEnv: 'not a name' }, /hsm\.pinEnv: must be an environment variable name/],
      [{ ...ok, pinEnv: 'KCM_NOT_SET_ANYWHERE' }, /hsm\.pinEnv: environment variable KCM_NOT_SET_ANYWHERE is not set/],
      [{ ...ok, sessions: 0 }, /hsm\.sessions: must be an integer from 1 to 64/],
      [{ ...ok, inline: 'yes' }, /hsm\.inline: must be/],
      [{ ...ok, timeoutMs: 99 }, /hsm\.timeoutMs: must be an integer from 100 to 600000/],
      [{ ...ok, keys: 'hsm-orders' }, /hsm\.keys: must be an array/],
      [{ ...ok, keys: ['ok', 'bad key'] }, /hsm\.keys\[1\]: must be a key id/],
      [{ ...ok, keys: ['a', 'a'] }, /hsm\.keys\[1\]: repeats a/],
      [{ module: '/m.so', slot: -1, pinEnv: 'KCM_TEST_HSM_PIN' }, /hsm\.slot: must be an integer/],
    ];
    for (const [hsm, re] of cases) {
      const msg = configError(hsm);
      assert.match(msg, re);
      assert.ok(!msg.includes(PIN_ENV.KCM_TEST_HSM_PIN), 'the PIN never appears');
    }
  });
});

const policy = (extra: { defaults?: unknown; route?: unknown }) =>
  JSON.stringify(
    {
      id: 'p',
      key: 'orders',
      defaults: { tenant: { from: 'cert' }, ...(extra.defaults as object) },
      routes: [{ method: 'POST', path: '/orders', upstream: 'http://127.0.0.1:1', ...(extra.route as object) }],
    },
    null,
    2,
  );

function policyError(text: string): string {
  try {
    compilePolicy('orders.routes.json', text);
  } catch (err) {
    assert.ok(err instanceof KcmError && err.code === 'invalid_policy', String(err));
    return err.message;
  }
  assert.fail('expected invalid_policy');
}

describe('policy: backend', () => {
  it('defaults to native; a route or the defaults may choose pkcs11', () => {
    assert.equal(compilePolicy('a.routes.json', policy({})).routes[0]?.backend, 'native');
    assert.equal(compilePolicy('a.routes.json', policy({ route: { backend: 'pkcs11' } })).routes[0]?.backend, 'pkcs11');
    assert.equal(
      compilePolicy('a.routes.json', policy({ defaults: { backend: 'pkcs11' } })).routes[0]?.backend,
      'pkcs11',
    );
    assert.equal(
      compilePolicy('a.routes.json', policy({ defaults: { backend: 'pkcs11' }, route: { backend: 'native' } }))
        .routes[0]?.backend,
      'native',
    );
  });

  it('an unknown backend is reported as file:line:column: field', () => {
    assert.match(
      policyError(policy({ route: { backend: 'hsm' } })),
      /orders\.routes\.json:\d+:\d+: routes\[0\]\.backend: must be one of "native", "pkcs11"/,
    );
    assert.match(
      policyError(policy({ defaults: { backend: 7 } })),
      /orders\.routes\.json:\d+:\d+: defaults\.backend: must be one of "native", "pkcs11"/,
    );
  });

  it('startGateway refuses a pkcs11 route when the gateway has no hsm', async () => {
    const policies = new PolicySet([compilePolicy('orders.routes.json', policy({ route: { backend: 'pkcs11' } }))]);
    const keys = new LocalGatewayKeys();
    await assert.rejects(
      startGateway({ keys, uws: { host: '127.0.0.1', port: 0 }, proxy: { policies } }),
      (err: unknown) =>
        err instanceof KcmError &&
        err.code === 'invalid_config' &&
        /orders\.routes\.json:\d+:\d+: backend "pkcs11" needs the gateway config's hsm section/.test(err.message),
    );
    keys.close();
  });
});
