/**
 * Policy reload while serving (gateway/src/policy/policy-reload.ts): a
 * gateway started from a policy directory picks up a changed policy file
 * without a restart (a route that passed a field in clear encrypts it from
 * the next request on), refuses a broken set as a whole (naming file, line
 * and field) and keeps serving the set in force, ignores a change that
 * leaves the bytes as they were, drops a removed route, applies a change
 * made during start-up, and counts applied and refused reloads in /metrics.
 * A real upstream and real files.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { gatewayConfig } from '../../../gateway/src/gateway-config.ts';
import { loadPolicies } from '../../../gateway/src/policy/policy-loader.ts';
import { PolicyReloader } from '../../../gateway/src/policy/policy-reload.ts';
import { type ConfiguredGateway, startConfiguredGateway } from '../../../gateway/src/start-configured-gateway.ts';
import { startUpstreams, type Upstreams } from './proxy-fixture.ts';

const MARKER = 'RELOAD-MARKER-4111-1111-1111-1111';

/** The policy: POST /orders to the app, encrypting `$.card.number` when `encrypt`. */
function policy(encrypt: boolean, extra: Record<string, unknown> = {}): unknown {
  return {
    id: 'reload',
    key: 'orders',
    upstreams: { app: 'http://127.0.0.1:1' },
    defaults: { tenant: { from: 'header', header: 'x-tenant-id', trustedPeers: ['127.0.0.1'] } },
    routes: [
      {
        method: 'POST',
        path: '/orders',
        upstream: 'app',
        ...(encrypt ? { request: [{ select: '$.card.number' }] } : {}),
        ...extra,
      },
      { method: 'GET', path: '/health-of-app', upstream: 'app' },
    ],
  };
}

describe('policy reload while serving', () => {
  let dir: string;
  let up: Upstreams;
  let g: ConfiguredGateway;
  const logs: string[] = [];
  const file = () => join(dir, 'policies', 'orders.routes.json');
  /** Replaces the policy file the way deployment tools do: write aside, rename over. */
  const put = (doc: unknown | string) => {
    writeFileSync(`${file()}.tmp`, typeof doc === 'string' ? doc : JSON.stringify(doc, null, 2));
    renameSync(`${file()}.tmp`, file());
  };
  const waitForLog = async (re: RegExp, from: number) => {
    const end = Date.now() + 10_000;
    while (Date.now() < end) {
      const hit = logs.slice(from).find((l) => re.test(l));
      if (hit) return hit;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`no log line ${re} in:\n${logs.slice(from).join('\n')}`);
  };
  const post = async () => {
    const r = await request(`http://127.0.0.1:${g.server.ports.uws}/orders`, {
      method: 'POST',
      headers: { 'x-tenant-id': 't1', 'content-type': 'application/json' },
      body: JSON.stringify({ card: { number: MARKER } }),
    });
    await r.body.text();
    return { status: r.statusCode, forwarded: up.received.at(-1)?.body.toString() ?? '' };
  };
  const metric = async (outcome: string) => {
    const r = await request(`http://127.0.0.1:${g.server.ports.uws}/metrics`);
    const m = new RegExp(`okcm_gateway_policy_reloads_total\\{outcome="${outcome}"\\} (\\d+)`).exec(
      await r.body.text(),
    );
    return Number(m?.[1] ?? 0);
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'okcm-policy-reload-'));
    mkdirSync(join(dir, 'policies'));
    up = await startUpstreams();
    put(policy(false));
    const config = gatewayConfig(
      {
        dev: true,
        fronts: { uws: { port: 0 } },
        policies: 'policies',
        upstreams: { urls: { app: `http://127.0.0.1:${up.appPort}` } },
        limits: { drainMs: 0 },
      },
      dir,
      { KCM_DEV: '1' },
    );
    const devBefore = process.env.KCM_DEV;
    process.env.KCM_DEV = '1';
    try {
      g = await startConfiguredGateway(config, { log: (m) => logs.push(m) });
    } finally {
      if (devBefore === undefined) delete process.env.KCM_DEV;
      else process.env.KCM_DEV = devBefore;
    }
  });
  after(async () => {
    await g.close();
    await up.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a changed file is in force from the next request; a broken one is refused whole, naming file, line and field', async () => {
    let r = await post();
    assert.equal(r.status, 201);
    assert.ok(r.forwarded.includes(MARKER), 'before: the route passes the body as it is');

    let mark = logs.length;
    put(policy(true));
    assert.match(await waitForLog(/policies reloaded \(file change\): 2 routes/, mark), /from .*policies/);
    r = await post();
    assert.equal(r.status, 201);
    assert.ok(!r.forwarded.includes(MARKER) && r.forwarded.includes('okcm:1:'), 'after: the field is encrypted');
    assert.equal(await metric('applied'), 1);

    // A schema error: the whole set is refused, the message names the file, the line and the field.
    mark = logs.length;
    put(policy(true, { limits: { bodyBytes: 'lots' } }));
    const refused = await waitForLog(/policy reload \(file change\) refused/, mark);
    assert.match(refused, /orders\.routes\.json:\d+:\d+: routes\[0\]\.limits\.bodyBytes: must be an integer/);
    assert.equal(await metric('refused'), 1);
    r = await post();
    assert.ok(!r.forwarded.includes(MARKER), 'the policies in force stay: still encrypting');

    // Not JSON at all (a half-written file): refused too.
    mark = logs.length;
    put('{"id": "reload", "routes": [');
    await waitForLog(/policy reload \(file change\) refused/, mark);
    assert.ok(!(await post()).forwarded.includes(MARKER));

    // The bytes of the set in force again: the watcher sees the change and applies nothing.
    const applied = await metric('applied');
    mark = logs.length;
    put(policy(true));
    await new Promise((r) => setTimeout(r, 600));
    assert.deepEqual(logs.slice(mark), [], 'nothing logged');
    assert.equal(await metric('applied'), applied);
    assert.equal(g.policies?.reload('check', true), false);

    // A route removed is gone for new requests.
    mark = logs.length;
    put({ ...(policy(true) as object), routes: [(policy(true) as { routes: unknown[] }).routes[1]] });
    await waitForLog(/policies reloaded \(file change\): 1 routes/, mark);
    assert.equal((await post()).status, 404);
  });

  it('a reload that moves every route to another upstream closes the old upstream pool', async () => {
    put(policy(true));
    await new Promise((r) => setTimeout(r, 400));
    g.policies?.reload('test');
    assert.equal((await post()).status, 201);
    const appOrigin = `http://127.0.0.1:${up.appPort}`;
    assert.ok(g.server.upstreams?.origins.includes(appOrigin));
    const other = await startUpstreams();
    try {
      const moved = policy(true) as { upstreams: Record<string, string>; routes: { upstream: string }[] };
      moved.upstreams = { other: `http://127.0.0.1:${other.appPort}` };
      for (const r of moved.routes) r.upstream = 'other';
      put(moved);
      await new Promise((r) => setTimeout(r, 400));
      g.policies?.reload('test', true);
      const r = await request(`http://127.0.0.1:${g.server.ports.uws}/orders`, {
        method: 'POST',
        headers: { 'x-tenant-id': 't1', 'content-type': 'application/json' },
        body: JSON.stringify({ card: { number: MARKER } }),
      });
      await r.body.text();
      assert.equal(r.statusCode, 201);
      assert.equal(other.received.length, 1);
      assert.deepEqual(g.server.upstreams?.origins, [`http://127.0.0.1:${other.appPort}`]);
      // The old upstream's pool was quiet: retired and closed, its keep-alive connection with it.
      const connections = () => new Promise<number>((r) => up.app.getConnections((_e, n) => r(n)));
      const end = Date.now() + 3000;
      while ((await connections()) > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
      assert.equal(await connections(), 0);
      assert.deepEqual(g.server.upstreams?.retiredOrigins, []);
      assert.match(logs.join('\n'), /warning: upstreams\.urls\.app: no policy route uses this upstream name any more/);
    } finally {
      await other.close();
    }
  });

  it('under load, reloads swap whole sets: with every set encrypting the field, no request is answered otherwise or forwarded in clear', async () => {
    // Two sets that both encrypt $.card.number, different in bytes (a body limit), swapped while 8 clients post.
    const a = policy(true);
    const b = policy(true, { limits: { bodyBytes: 65536 } });
    put(a);
    g.policies?.reload('test');
    const before = up.received.length;
    let stop = false;
    const statuses = new Map<number, number>();
    const client = async () => {
      while (!stop) {
        const r = await post();
        statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
      }
    };
    const clients = Array.from({ length: 8 }, client);
    for (let i = 0; i < 20; i++) {
      put(i % 2 === 0 ? b : a);
      g.policies?.reload(`swap ${i}`, true);
      await new Promise((r) => setTimeout(r, 10));
    }
    stop = true;
    await Promise.all(clients);
    assert.deepEqual([...statuses.keys()], [201], JSON.stringify([...statuses]));
    const forwarded = up.received.slice(before);
    assert.ok(forwarded.length >= 8, `${forwarded.length} requests`);
    for (const f of forwarded) {
      const text = f.body.toString();
      assert.ok(!text.includes(MARKER) && text.includes('okcm:1:'), 'every forwarded body has the field encrypted');
    }
  });

  it('a change made while the gateway was starting (after the policies were read) is applied once the watch runs', async () => {
    put(policy(false));
    const started = loadPolicies(join(dir, 'policies'));
    put(policy(true)); // written between the read and the watch
    const mark = logs.length;
    const r = new PolicyReloader({
      dir: join(dir, 'policies'),
      examples: false,
      server: g.server,
      inForce: started,
      log: (m) => logs.push(m),
    });
    try {
      r.watch();
      assert.match(logs.slice(mark).join('\n'), /policies reloaded \(changed during start-up\)/);
    } finally {
      r.close();
    }
  });
});
