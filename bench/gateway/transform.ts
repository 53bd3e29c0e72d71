/**
 * Cost of the proxy's JSON field transform per document (issue 5: "2 KB JSON
 * with 5 encrypted fields"), against the same run's baseline of what a
 * parsing JSON proxy pays: JSON.parse + JSON.stringify of the same body. The
 * gateway's transform never does either: it scans the bytes once and splices
 * the new values in (pipeline/json-scan.ts, json-splice.ts).
 *
 *   node --import tsx bench/gateway/transform.ts [--quick] [--rounds 7] [--docs 20000] [--json FILE]
 *
 * Contestants, each per document, interleaved round by round on the same
 * bytes (native backend, one L3 key held by a StaticKeyProvider):
 * - baseline: the body bytes → UTF-8 text → JSON.parse → JSON.stringify
 * - checked scan: scanJsonBody (media type, size, UTF-8, syntax, depth; the
 *   5 fields located), to separate the cost of the checks from the fields
 * - encrypt request: scanJsonBody → encryptRequestFields (5 fields, one
 *   native call, the new body spliced)
 * - decrypt response: scanJsonBody → decryptResponseFields for a reader
 *   (5 fields, one native call, the new body spliced)
 * - native pass + encrypt / decrypt in one call: what the proxy runs when
 *   the native module is loaded (json-targets.ts, then encryptFoundTargets /
 *   decryptFoundTargets; no JavaScript scan)
 * - mask response: the same for a non-reader (masks, no crypto)
 * Guard before timing: the encrypted body holds no plaintext field and
 * decrypts back to the original. Prints a Markdown table; exits 0 unless the
 * run itself fails (a report, not a test).
 */
import { writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { checkJsonBody, scanJsonBody } from '../../gateway/src/pipeline/json-body.ts';
import { nativeTargets } from '../../gateway/src/pipeline/json-targets.ts';
import { StaticKeyProvider } from '../../gateway/src/pipeline/key-provider.ts';
import { decryptFoundTargets, decryptResponseFields } from '../../gateway/src/pipeline/transform-decrypt.ts';
import { encryptFoundTargets, encryptRequestFields } from '../../gateway/src/pipeline/transform-encrypt.ts';
import { planFor } from '../../gateway/src/pipeline/transform-json.ts';
import { compilePolicy } from '../../gateway/src/policy/policy-schema.ts';
import { cryptoFor } from '../../native/index.ts';
import { machineFacts } from '../aead/machine.ts';
import { sampleOrder } from '../scenarios/payloads.ts';

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? dflt) : dflt;
}

const quick = process.argv.includes('--quick');
const ROUNDS = Number(arg('rounds', quick ? '3' : '7'));
const DOCS = Number(arg('docs', quick ? '3000' : '20000'));
const JSON_TYPE = 'application/json';

const FIELDS = ['$.card.number', '$.card.cvv', '$.customer.email', '$.customer.phone', '$.customer.taxId'];
const rule = (select: string) => ({ select, field: select.slice(2) });
const policy = {
  id: 'bench',
  key: 'orders',
  defaults: { tenant: { from: 'cert' }, readers: { identities: ['reader'], others: 'mask' } },
  routes: [
    {
      method: 'POST',
      path: '/orders',
      upstream: 'http://127.0.0.1:1',
      request: FIELDS.map(rule),
      response: FIELDS.map(rule),
    },
  ],
};

/** The ~2 KB order of the benchmark suite (bench/scenarios/payloads.ts), as text. */
function sampleDocument(): string {
  return JSON.stringify(sampleOrder());
}

interface Row {
  name: string;
  /** Mean µs per document in each round. */
  rounds: number[];
  samples: number[];
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] as number;
}

async function main(): Promise<void> {
  const crypto = cryptoFor('native');
  const keys = new StaticKeyProvider().add('acme', 'orders', 1, crypto.generateKey());
  const [route] = compilePolicy('bench.routes.json', JSON.stringify(policy)).routes;
  if (!route) throw new Error('no route');
  const plainText = sampleDocument();
  const plainBytes = Buffer.from(plainText);
  const req = { route, tenant: 'acme', params: {}, keys };
  const reader = { ...req, caller: { identity: 'reader', roles: [] } };
  const stranger = { ...req, caller: { identity: 'other', roles: [] } };

  const requestPlan = planFor(route.request);
  const responsePlan = planFor(route.response);
  const scanRequest = (b: Buffer) => scanJsonBody(b, JSON_TYPE, route.limits, requestPlan);
  const scanResponse = (b: Buffer) => scanJsonBody(b, JSON_TYPE, route.limits, responsePlan);
  // Guard: the request transform hides the fields and the response transform restores them.
  const encBytes = (await encryptRequestFields(scanRequest(plainBytes), req)).body;
  if (!encBytes) throw new Error('guard: nothing encrypted');
  const encText = encBytes.toString();
  for (const v of ['4111 1111 1111 1111', 'ada.lovelace@example.com', 'GB123456789']) {
    if (encText.includes(v)) throw new Error('guard: plaintext left in the encrypted body');
  }
  const back = (await decryptResponseFields(scanResponse(encBytes), reader)).body;
  if (back?.toString() !== plainText) throw new Error('guard: round trip changed the document');

  // The proxy's fast path: the native target pass, then the one-call seal / open (proxy-transforms.ts).
  const fastEncrypt = async (b: Buffer) => {
    checkJsonBody(b, JSON_TYPE, route.limits);
    const found = nativeTargets(b, route.request, route.limits);
    const r = found && (await encryptFoundTargets(b, req, found));
    if (!r) throw new Error('guard: the native request path declined');
    return r;
  };
  const fastDecrypt = async (b: Buffer) => {
    checkJsonBody(b, JSON_TYPE, route.limits);
    const found = nativeTargets(b, route.response, route.limits);
    const r = found && (await decryptFoundTargets(b, reader, found));
    if (!r) throw new Error('guard: the native response path declined');
    return r;
  };
  if ((await fastDecrypt((await fastEncrypt(plainBytes)).body as Buffer)).body?.toString() !== plainText) {
    throw new Error('guard: the native round trip changed the document');
  }

  const contestants: [string, () => Promise<void> | void][] = [
    [
      'baseline: UTF-8 decode + JSON.parse + JSON.stringify',
      () => void JSON.stringify(JSON.parse(plainBytes.toString())),
    ],
    ['checked scan (scanJsonBody), fields located, none changed', () => void scanRequest(plainBytes)],
    [
      'encrypt request (scan + 5 fields + splice)',
      async () => void (await encryptRequestFields(scanRequest(plainBytes), req)),
    ],
    ['decrypt response for a reader', async () => void (await decryptResponseFields(scanResponse(encBytes), reader))],
    ['native pass + encrypt request in one call (the proxy path)', async () => void (await fastEncrypt(plainBytes))],
    ['native pass + decrypt for a reader in one call (the proxy path)', async () => void (await fastDecrypt(encBytes))],
    [
      'mask response for a non-reader',
      async () => void (await decryptResponseFields(scanResponse(encBytes), stranger)),
    ],
  ];
  const rows: Row[] = contestants.map(([name]) => ({ name, rounds: [], samples: [] }));
  for (const [, fn] of contestants) for (let i = 0; i < 500; i++) await fn();
  for (let r = 0; r < ROUNDS; r++) {
    process.stderr.write(`round ${r + 1}/${ROUNDS}\n`);
    for (let c = 0; c < contestants.length; c++) {
      const fn = (contestants[c] as [string, () => Promise<void> | void])[1];
      const row = rows[c] as Row;
      const t0 = performance.now();
      for (let i = 0; i < DOCS; i++) {
        const s = performance.now();
        await fn();
        if (i % 16 === 0) row.samples.push((performance.now() - s) * 1000);
      }
      row.rounds.push(((performance.now() - t0) * 1000) / DOCS);
    }
  }
  const base = median((rows[0] as Row).rounds);
  const facts = machineFacts();
  const out = rows.map((row) => {
    const sorted = [...row.samples].sort((a, b) => a - b);
    return {
      name: row.name,
      meanUs: median(row.rounds),
      p50Us: percentile(sorted, 0.5),
      p99Us: percentile(sorted, 0.99),
      ratio: median(row.rounds) / base,
      rounds: row.rounds,
    };
  });
  console.log(`# JSON field transform: ${plainBytes.length}-byte document, ${FIELDS.length} selected fields\n`);
  console.log(
    `${facts.cpuModel}, ${facts.nproc} CPUs, node ${facts.node}; ${ROUNDS} rounds × ${DOCS} documents, median of round means; p50/p99 from every 16th document.\n`,
  );
  console.log('| Contestant | µs/doc (median of rounds) | p50 µs | p99 µs | × baseline |');
  console.log('|---|---:|---:|---:|---:|');
  for (const o of out) {
    console.log(
      `| ${o.name} | ${o.meanUs.toFixed(2)} | ${o.p50Us.toFixed(2)} | ${o.p99Us.toFixed(2)} | ${o.ratio.toFixed(2)} |`,
    );
  }
  const json = arg('json', '');
  if (json)
    writeFileSync(
      json,
      `${JSON.stringify({ machine: facts, bytes: plainBytes.length, fields: FIELDS.length, rows: out }, null, 2)}\n`,
    );
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
