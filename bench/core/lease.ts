/**
 * Lease latency from the edge client on a warm Core (issue 4: "p99 < 1 ms").
 *
 *   node --import tsx bench/core/lease.ts [--n 5000] [--json FILE]
 *
 * Set-up: a real Core in this process (SQLite, Shamir-unsealed root of trust,
 * the tenant key hierarchy as lease source, the edge API on loopback over
 * http2 + mTLS), one CoreEdgeClient with its persistent session. Warm: the
 * tenant's L2/L3 are in the Core's cache and the session transport key is
 * imported before measuring. Rows:
 *   - baseline: an empty http2 round trip on the same session (a 404 path:
 *     TLS, h2 framing, identity check, JSON error), measured interleaved;
 *   - lease (network): CoreEdgeClient.refresh — request, Core lease source,
 *     HKDF + wrap of the active version, response, client HKDF + unwrap;
 *   - lease (cache hit): CoreEdgeClient.encryptionKey on a cached lease.
 */
import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { CoreEdgeClient } from '../../gateway/src/keys/core-edge-client.ts';
import { defaultCrypto } from '../../native/index.ts';
import { h2Connect, h2Json } from '../../test/core/edge/edge-fixtures.ts';
import { startHierarchyCore } from '../../test/core/edge/hierarchy-core.ts';
import { arg, row, summarize } from './bench-stats.ts';

const n = Number(arg('n', '5000'));
const core = await startHierarchyCore();
await core.keys.tenants.create({ id: 'acme' });
await core.keys.services.create('acme', 'orders');
core.allow['edge-a'] = ['acme'];
const edge = core.pki.edgeA;
const client = new CoreEdgeClient({
  url: core.server.url,
  tls: { cert: edge.certPem, key: edge.keyPem, ca: core.pki.ca.certPem },
  crypto: defaultCrypto(),
  log: () => {},
});
// A second session with the same certificate for the baseline (the client's session is internal).
const raw = await h2Connect(core.server.url, core.pki.ca.certPem, edge);

const lease: number[] = [];
const base: number[] = [];
const hit: number[] = [];
for (let i = 0; i < 500; i++) {
  await client.refresh('acme', 'orders');
  await h2Json(raw, 'GET', '/v1/edge/none');
}
for (let i = 0; i < n; i++) {
  let t0 = performance.now();
  await h2Json(raw, 'GET', '/v1/edge/none');
  base.push(performance.now() - t0);
  t0 = performance.now();
  await client.refresh('acme', 'orders');
  lease.push(performance.now() - t0);
  t0 = performance.now();
  await client.encryptionKey('acme', 'orders');
  hit.push(performance.now() - t0);
}
const out = {
  baseline: summarize(base),
  lease: summarize(lease),
  cacheHit: summarize(hit),
  loadAverage: loadavg(),
  node: process.version,
  when: new Date().toISOString(),
};
console.log(
  `load average ${loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')}`,
);
console.log(row('baseline: empty h2 round trip (404)', out.baseline));
console.log(row('lease over mTLS (refresh, warm Core)', out.lease));
console.log(row('lease from the client cache', out.cacheHit));
console.log(`lease p99 target < 1 ms: ${out.lease.p99 < 1 ? 'met' : 'MISSED'}`);
const json = arg('json', '');
if (json) writeFileSync(json, `${JSON.stringify(out, null, 2)}\n`);
raw.close();
await client.close();
await core.close();
