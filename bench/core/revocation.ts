/**
 * Revocation propagation (issue 4: "every connected edge client has dropped
 * the tenant's keys and reported it within 1 s; p99 over 100 revocations").
 *
 *   node --import tsx bench/core/revocation.ts [--revocations 100] [--edges 10] [--json FILE]
 *
 * Set-up: a real Core in this process (SQLite, unsealed root of trust, the
 * tenant key hierarchy, the edge API over http2 + mTLS) and `--edges`
 * CoreEdgeClients (half edge-a, half edge-b certificates), each with its
 * event subscription. Per round: a fresh tenant with one service, leased by
 * every client; then `keys.tenants.revoke` is timed from the call until
 *   - dropped: every client has applied the event (its handles destroyed),
 *   - acked: the Core has stored every client's ack (the client's onAck runs
 *     after the Core answered the ack, i.e. after its store transaction).
 * Baseline in the same run: an empty http2 round trip on one session.
 */
import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { CoreEdgeClient } from '../../gateway/src/keys/core-edge-client.ts';
import { defaultCrypto } from '../../native/index.ts';
import { h2Connect, h2Json } from '../../test/core/edge/edge-fixtures.ts';
import { startHierarchyCore } from '../../test/core/edge/hierarchy-core.ts';
import { arg, row, summarize } from './bench-stats.ts';

const rounds = Number(arg('revocations', '100'));
const edgeCount = Number(arg('edges', '10'));
let acksThisRound = new Set<CoreEdgeClient>();
let ackTarget = 0;
const core = await startHierarchyCore();
const crypto = defaultCrypto();
const clients: CoreEdgeClient[] = [];
let dropped = 0;
for (let i = 0; i < edgeCount; i++) {
  const cert = i % 2 === 0 ? core.pki.edgeA : core.pki.edgeB;
  const c: CoreEdgeClient = new CoreEdgeClient({
    url: core.server.url,
    tls: { cert: cert.certPem, key: cert.keyPem, ca: core.pki.ca.certPem },
    crypto,
    log: () => {},
    onEvent: (e, applied) => {
      if (e.type === 'tenant.revoked' && applied.destroyed > 0) dropped++;
    },
    onAck: (seq) => {
      if (seq >= ackTarget) acksThisRound.add(c);
    },
  });
  c.start();
  clients.push(c);
}
const raw = await h2Connect(core.server.url, core.pki.ca.certPem, core.pki.edgeA);
const waitFor = async (cond: () => boolean, what: string) => {
  const end = performance.now() + 10_000;
  while (!cond()) {
    if (performance.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setImmediate(r));
  }
};
await waitFor(() => clients.every((c) => c.subscribed), 'subscriptions');

const dropMs: number[] = [];
const ackMs: number[] = [];
const base: number[] = [];
for (let r = 0; r < rounds; r++) {
  const tenant = `t-${r}`;
  await core.keys.tenants.create({ id: tenant });
  await core.keys.services.create(tenant, 'orders');
  core.allow['edge-a']?.push(tenant);
  core.allow['edge-b']?.push(tenant);
  await Promise.all(clients.map((c) => c.encryptionKey(tenant, 'orders')));
  const t = performance.now();
  await h2Json(raw, 'GET', '/v1/edge/none');
  base.push(performance.now() - t);
  dropped = 0;
  acksThisRound = new Set();
  ackTarget = (await core.store.latestEventSeq()) + 1;
  const t0 = performance.now();
  await core.keys.tenants.revoke(tenant, { reason: 'bench' });
  await waitFor(() => dropped === clients.length, 'drops');
  dropMs.push(performance.now() - t0);
  await waitFor(() => acksThisRound.size === clients.length, 'acks');
  ackMs.push(performance.now() - t0);
}
const out = {
  edges: edgeCount,
  revocations: rounds,
  baseline: summarize(base),
  dropped: summarize(dropMs),
  acked: summarize(ackMs),
  loadAverage: loadavg(),
  node: process.version,
  when: new Date().toISOString(),
};
console.log(
  `${rounds} revocations, ${edgeCount} connected edge clients, load average ${loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')}`,
);
console.log(row('baseline: empty h2 round trip (404)', out.baseline));
console.log(row('revoke → every client dropped the keys', out.dropped));
console.log(row('revoke → every client ack stored in Core', out.acked));
console.log(`p99 target < 1000 ms: ${out.acked.p99 < 1000 ? 'met' : 'MISSED'}`);
const json = arg('json', '');
if (json) writeFileSync(json, `${JSON.stringify(out, null, 2)}\n`);
raw.close();
for (const c of clients) await c.close();
await core.close();
