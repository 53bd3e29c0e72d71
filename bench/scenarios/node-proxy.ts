/**
 * Peer of the gateway's policy proxy: the encrypting reverse proxy a team
 * would write by hand with `node:http`, `node:crypto` and undici, in front of
 * the sample app (what the issue calls "the hand-written node:http encrypting
 * proxy"). Same routes as `benchPolicy()`:
 *
 *   POST /orders        JSON.parse, 5 fields sealed with AES-256-GCM
 *                       (createCipheriv per field, random nonce, the field
 *                       name as AAD), JSON.stringify, forward, answer the app's reply
 *   GET  /orders/:id    forward, JSON.parse the reply, open the 5 fields, answer
 *   GET  /static/*      forward, answer the app's bytes unchanged
 *
 * One process-wide key (no key hierarchy, no tenants, no envelope header): a
 * lower bound of what the gateway does, so the comparison flatters the peer.
 * `STORED_NODE_ORDER` is stored through it at start-up for the GET scenario.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool } from 'undici';
import { ORDER_FIELDS, sampleOrder } from './payloads.ts';

/** Order id the peer stores (with its own ciphertexts) before measuring. */
export const STORED_NODE_ORDER = 'bench-get-node';

const PATHS = ORDER_FIELDS.map((s) => s.slice(2).split('.'));

type Doc = Record<string, unknown>;

function mapFields(doc: Doc, f: (value: string, name: string) => string): void {
  for (const path of PATHS) {
    let o: Doc | undefined = doc;
    for (let i = 0; i < path.length - 1 && o; i++) o = o[path[i] as string] as Doc | undefined;
    const leaf = path[path.length - 1] as string;
    if (o && typeof o[leaf] === 'string') o[leaf] = f(o[leaf] as string, leaf);
  }
}

/** Starts the peer on 127.0.0.1 (ephemeral port) in front of `appPort`; resolves with its port. */
export async function startNodeProxy(appPort: number): Promise<number> {
  const key = randomBytes(32);
  const pool = new Pool(`http://127.0.0.1:${appPort}`, { connections: 128, pipelining: 1 });
  const seal = (value: string, name: string): string => {
    const nonce = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', key, nonce);
    c.setAAD(Buffer.from(name));
    const ct = Buffer.concat([c.update(value, 'utf8'), c.final()]);
    return Buffer.concat([nonce, ct, c.getAuthTag()]).toString('base64');
  };
  const open = (value: string, name: string): string => {
    const b = Buffer.from(value, 'base64');
    const d = createDecipheriv('aes-256-gcm', key, b.subarray(0, 12));
    d.setAAD(Buffer.from(name));
    d.setAuthTag(b.subarray(b.length - 16));
    return Buffer.concat([d.update(b.subarray(12, b.length - 16)), d.final()]).toString('utf8');
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      try {
        const url = req.url ?? '/';
        let body: string | undefined;
        if (req.method === 'POST') {
          const doc = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Doc;
          mapFields(doc, seal);
          body = JSON.stringify(doc);
        }
        const r = await pool.request({
          method: req.method as 'GET' | 'POST',
          path: url,
          headers: { 'content-type': 'application/json' },
          body: body ?? null,
        });
        let out = Buffer.from(await r.body.arrayBuffer());
        if (req.method === 'GET' && url.startsWith('/orders/')) {
          const doc = JSON.parse(out.toString('utf8')) as Doc;
          mapFields(doc, open);
          out = Buffer.from(JSON.stringify(doc));
        }
        res.writeHead(r.statusCode, { 'content-type': 'application/json' });
        res.end(out);
      } catch {
        res.writeHead(502, { 'content-type': 'application/json' });
        res.end('{"error":"bad gateway"}');
      }
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const r = await fetch(`http://127.0.0.1:${port}/orders`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(sampleOrder(STORED_NODE_ORDER)),
  });
  const text = await r.text();
  if (r.status !== 201 || text.includes('4111 1111 1111 1111')) {
    throw new Error(`node-proxy set-up: POST /orders answered ${r.status}`);
  }
  return port;
}
