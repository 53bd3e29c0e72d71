/**
 * A real gateway (uWS + h2c/HTTP/1.1 plaintext port) with the policy reverse
 * proxy over LocalGatewayKeys, in front of real upstream servers on port 0:
 *
 * - `app` (node:http): records every request it receives (headers + bytes)
 *   and answers by path (echo, store/read orders, hang, bad JSON, text, gzip);
 * - `raw` (net): speaks broken HTTP on purpose (reset mid-response, garbage);
 * - `refused`: a port nothing listens on.
 *
 * Every test closes what it starts.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { Agent, request } from 'undici';
import { LocalGatewayKeys } from '../../../gateway/src/gateway-keys.ts';
import { type GatewayConfig, type GatewayServer, startGateway } from '../../../gateway/src/gateway-server.ts';
import { loadPolicies, type PolicySet } from '../../../gateway/src/policy/policy-loader.ts';
import type { UpstreamOptions } from '../../../gateway/src/upstream/upstream-pools.ts';
import { loadNative } from '../../../native/ts/load.ts';

export interface Received {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

export interface Upstreams {
  app: http.Server;
  appPort: number;
  raw: net.Server;
  rawPort: number;
  refusedPort: number;
  received: Received[];
  /** Requests of the app whose client (the gateway) went away before the answer. */
  aborted: string[];
  /** Stored order documents by id (what the app "database" holds). */
  orders: Map<string, string>;
  /** Answers every hanging request (`/raw/hang…`, `/dec/hang…`) 200 with an empty body. */
  releaseHanging(): void;
  close(): Promise<void>;
}

const listen = (s: net.Server): Promise<number> =>
  new Promise((resolve) => s.listen(0, '127.0.0.1', () => resolve((s.address() as net.AddressInfo).port)));

export async function startUpstreams(): Promise<Upstreams> {
  const received: Received[] = [];
  const aborted: string[] = [];
  const orders = new Map<string, string>();
  const hanging = new Set<http.ServerResponse>();
  const app = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    res.on('close', () => {
      if (!res.writableFinished) aborted.push(req.url ?? '');
    });
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      received.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      const url = (req.url ?? '').replace(/^\/ct/, '');
      const json = (status: number, text: string) => {
        res.writeHead(status, { 'content-type': 'application/json', etag: '"v1"', 'set-cookie': ['a=1', 'b=2'] });
        res.end(text);
      };
      if (url.startsWith('/raw/echo')) {
        // Header names that are members of Object.prototype: they must pass like any other.
        res.setHeader('constructor', 'up-c');
        res.writeHead(200, {
          'content-type': req.headers['content-type'] ?? 'application/octet-stream',
          'x-upstream': 'app',
          'keep-alive': 'timeout=7',
          'x-private-hop': 'drop me',
          connection: 'x-private-hop',
        });
        res.end(body);
      } else if (url.startsWith('/raw/hang') || url.startsWith('/dec/hang')) {
        hanging.add(res);
      } else if (req.method === 'POST' && url === '/orders') {
        const id = String(orders.size + 1);
        orders.set(id, body.toString('utf8'));
        json(201, JSON.stringify({ id, stored: JSON.parse(body.toString('utf8')) }));
      } else if (req.method === 'GET' && url.startsWith('/orders/')) {
        const doc = orders.get(url.slice('/orders/'.length));
        if (doc) json(200, doc);
        else json(404, '{"error":"no such order"}');
      } else if (url === '/dec/badjson') {
        json(200, '{"card": {"number": "okcm:1:AAAA"');
      } else if (url === '/dec/text') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end('card number 4111 1111 1111 1111');
      } else if (url === '/dec/gzip') {
        res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
        res.end(gzipSync('{"card":{"number":"4111"}}'));
      } else if (url === '/dec/plain') {
        json(200, '{"card":{"number":"4111 1111 1111 1111"}}');
      } else {
        json(404, '{"error":"not here"}');
      }
    });
  });
  app.keepAliveTimeout = 5_000;
  const raw = net.createServer((s) => {
    s.on('error', () => {});
    s.once('data', (d) => {
      const line = d.toString('latin1').split('\r\n')[0] ?? '';
      if (line.includes('/reset')) {
        s.write('HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: 1000\r\n\r\n0123456789');
        setTimeout(() => s.resetAndDestroy(), 20);
      } else {
        s.end('SSH-2.0-OpenSSH_9.2 not http at all\r\n\r\n');
      }
    });
  });
  const sockets = new Set<net.Socket>();
  app.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  const appPort = await listen(app);
  const rawPort = await listen(raw);
  const gone = net.createServer();
  const refusedPort = await listen(gone);
  await new Promise<void>((r) => gone.close(() => r()));
  return {
    app,
    appPort,
    raw,
    rawPort,
    refusedPort,
    received,
    aborted,
    orders,
    releaseHanging() {
      for (const r of hanging) {
        r.writeHead(200, { 'content-type': 'text/plain' });
        r.end();
      }
      hanging.clear();
    },
    async close() {
      for (const r of hanging) r.destroy();
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => app.close(() => r()));
      await new Promise<void>((r) => raw.close(() => r()));
    },
  };
}

/** The test policy: passthrough, encrypting, decrypting (mask / ciphertext) and fault routes. */
export function testPolicy(): unknown {
  const card = { select: '$.card.number', field: 'card.number' };
  return {
    id: 'proxytest',
    key: 'orders',
    upstreams: { app: 'http://127.0.0.1:1', raw: 'http://127.0.0.1:1', refused: 'http://127.0.0.1:1' },
    defaults: {
      tenant: { from: 'header', header: 'x-tenant-id', trustedPeers: ['127.0.0.1', '::1'] },
      readers: { identities: ['billing'], roles: ['support-lead'], others: 'mask', mask: '****' },
      limits: { bodyBytes: 64 * 1024 },
    },
    routes: [
      { method: '*', path: '/raw/*', upstream: 'app' },
      { method: 'POST', path: '/orders', upstream: 'app', request: [card] },
      { method: 'GET', path: '/orders/:id', upstream: 'app', response: [card] },
      {
        method: 'GET',
        path: '/ct/orders/:id',
        upstream: 'app',
        readers: { identities: ['billing'], roles: [], others: 'ciphertext' },
        response: [card],
      },
      { method: 'GET', path: '/dec/*', upstream: 'app', response: [{ ...card, onMissing: 'skip' }] },
      { method: '*', path: '/refused/*', upstream: 'refused' },
      { method: '*', path: '/sock/*', upstream: 'raw' },
      { method: 'GET', path: '/sockdec/*', upstream: 'raw', response: [{ ...card, onMissing: 'skip' }] },
    ],
  };
}

export interface ProxyFixture {
  gw: GatewayServer;
  keys: LocalGatewayKeys;
  up: Upstreams;
  agent: Agent;
  logs: string[];
  /**
   * `uws`: the uWS front, or the native front when KCM_PROXY_FRONT=native
   * (test/gateway/native-front/through-native.test.ts runs the proxy suites
   * so: what it does not serve it tunnels to the pipeline); `native`: the
   * native front.
   */
  base: { uws: string; plain: string; native: string };
  close(): Promise<void>;
}

/**
 * The PolicySet of one policy document, loaded as the gateway loads it: from
 * `<name>.routes.json` in a temporary directory, removed again.
 */
export function policySetOf(doc: unknown, name = 'test'): PolicySet {
  const dir = mkdtempSync(join(tmpdir(), 'okcm-policy-'));
  try {
    writeFileSync(join(dir, `${name}.routes.json`), JSON.stringify(doc));
    return loadPolicies(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Starts the fixture. `o.upstream` replaces the upstream deadlines the fault
 * tests use (300 ms headers and body, 500 ms connect).
 */
export async function startProxyFixture(
  extra: Partial<GatewayConfig> = {},
  o: { upstream?: Partial<UpstreamOptions> } = {},
): Promise<ProxyFixture> {
  const up = await startUpstreams();
  const policies = policySetOf(testPolicy());
  const keys = new LocalGatewayKeys();
  const logs: string[] = [];
  const gw = await startGateway({
    keys,
    uws: { host: '127.0.0.1', port: 0 },
    h2Plain: { host: '127.0.0.1', port: 0 },
    // The native front too, where the module has one (native-front/native-front-fixture.ts skips its own tests otherwise).
    ...(loadNative().backend?.frontStart ? { native: { host: '127.0.0.1', port: 0 } } : {}),
    log: (m) => logs.push(m),
    proxy: {
      policies,
      upstreamUrls: new Map([
        ['app', new URL(`http://127.0.0.1:${up.appPort}`)],
        ['raw', new URL(`http://127.0.0.1:${up.rawPort}`)],
        ['refused', new URL(`http://127.0.0.1:${up.refusedPort}`)],
      ]),
      upstream: { headersTimeoutMs: 300, bodyTimeoutMs: 300, connectTimeoutMs: 500, ...o.upstream },
      callerHeaders: { identity: 'x-okcm-caller', roles: 'x-okcm-roles' },
    },
    ...extra,
  });
  const agent = new Agent({ keepAliveTimeout: 1000 });
  return {
    gw,
    keys,
    up,
    agent,
    logs,
    base: {
      uws: `http://127.0.0.1:${process.env.KCM_PROXY_FRONT === 'native' ? gw.ports.native : gw.ports.uws}`,
      plain: `http://127.0.0.1:${gw.ports.h2Plain}`,
      native: `http://127.0.0.1:${gw.ports.native}`,
    },
    async close() {
      await agent.close();
      await gw.close();
      keys.close();
      await up.close();
    },
  };
}

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  json(): any;
}

export async function call(
  f: ProxyFixture,
  url: string,
  o: { method?: string; headers?: Record<string, string>; body?: string | Buffer } = {},
): Promise<Reply> {
  const res = await request(url, {
    method: (o.method ?? (o.body === undefined ? 'GET' : 'POST')) as 'GET',
    dispatcher: f.agent,
    headers: { 'x-tenant-id': 't1', ...o.headers },
    ...(o.body !== undefined ? { body: o.body } : {}),
  });
  const body = Buffer.from(await res.body.arrayBuffer());
  return { status: res.statusCode, headers: res.headers, body, json: () => JSON.parse(body.toString('utf8')) };
}
