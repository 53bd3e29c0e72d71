/**
 * One benchmark server per process, started by the harness (pinned to the
 * server CPU) as `node --import tsx bench/scenarios/serve.ts --kind K [--tls DIR]`.
 * Prints one JSON line with its ports once listening, then serves until killed.
 *
 * Kinds:
 *  - gateway      the gateway (startGateway + LocalGatewayKeys, in-process keys;
 *                 backend from KCM_CRYPTO_BACKEND): uWS front, plus the h2 mTLS
 *                 front when --tls names the PKI directory; with --hsm DIR a
 *                 throwaway SoftHSM2 token in DIR serves the pkcs11 field backend
 *                 for the key `bench` (hsm.keys), so its direct API runs in the token;
 *                 --hsm-module PATH loads another module over that token (a stand-in
 *                 for a network HSM: bench/hsm/slow-token.c), --hsm-inline sets hsm.inline
 *  - bare-uws     the bare baseline of the uWS front: reads the body, JSON.parse,
 *                 answers {"data": <the parsed body>} (same front, same body size, no crypto)
 *  - bare-h2      the same on node:http2 with mTLS (the h2 front's baseline)
 *  - node-crypto  peer: a minimal node:http + node:crypto AES-256-GCM encrypt service
 *  - node-proxy   peer of the policy proxy: the hand-written node:http + node:crypto + undici
 *                 encrypting proxy of ./node-proxy.ts, in front of --upstream PORT (the sample app)
 *  - bare-forward the floor of the proxy rows (./bare-forward.ts): uWS front + keep-alive
 *                 net.Socket to --upstream PORT, no pipeline, no crypto
 *  - sample-app   the sample app behind the proxy: POST /orders stores and echoes the
 *                 order, GET /orders/:id returns the stored one, GET /static/:id a fixed 2 KB JSON
 */
import { execFileSync } from 'node:child_process';
import { createCipheriv, randomBytes } from 'node:crypto';
import { accessSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { sampleOrder } from './payloads.ts';

const { values } = parseArgs({
  options: {
    kind: { type: 'string' },
    tls: { type: 'string' },
    upstream: { type: 'string' },
    hsm: { type: 'string' },
    'hsm-module': { type: 'string' },
    'hsm-inline': { type: 'boolean' },
  },
});

function announce(ports: Record<string, number>): void {
  process.stdout.write(`${JSON.stringify(ports)}\n`);
}

function tlsFiles(dir: string) {
  return {
    certFile: join(dir, 'server.crt'),
    keyFile: join(dir, 'server.key'),
    caFile: join(dir, 'ca.crt'),
  };
}

const SOFTHSM_MODULE = '/usr/lib/softhsm/libsofthsm2.so';

/**
 * A fresh SoftHSM2 token in `dir` (config + token directory; SOFTHSM2_CONF is
 * set for this process before the module initialises) and the pkcs11 backend
 * over it, serving the key `bench`. The PIN is random and printed nowhere.
 * Throws with the reason when softhsm2 is not installed.
 */
async function benchHsm(dir: string) {
  try {
    accessSync(SOFTHSM_MODULE);
    execFileSync('softhsm2-util', ['--version'], { stdio: 'pipe' });
  } catch {
    throw new Error('softhsm2 not installed (apt-get install softhsm2)');
  }
  mkdirSync(join(dir, 'tokens'), { recursive: true, mode: 0o700 });
  const conf = join(dir, 'softhsm2.conf');
  writeFileSync(conf, `directories.tokendir = ${join(dir, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\n`);
  process.env.SOFTHSM2_CONF = conf;
  const pin = randomBytes(12).toString('hex');
  const label = `okcm-bench-${process.pid}`;
  execFileSync(
    'softhsm2-util',
    ['--init-token', '--free', '--label', label, '--so-pin', randomBytes(12).toString('hex'), '--pin', pin],
    {
      stdio: 'pipe',
    },
  );
  const { HsmBackend } = await import('../../gateway/src/hsm/hsm-backend.ts');
  const { defaultCrypto } = await import('../../native/index.ts');
  return HsmBackend.open({
    module: values['hsm-module'] ?? SOFTHSM_MODULE,
    tokenLabel: label,
    pin,
    sessions: 2,
    inline: values['hsm-inline'] === true,
    keys: ['bench'],
    crypto: defaultCrypto(),
  });
}

async function gateway(): Promise<void> {
  const { startGateway } = await import('../../gateway/src/gateway-server.ts');
  const { LocalGatewayKeys } = await import('../../gateway/src/gateway-keys.ts');
  const hsm = values.hsm ? await benchHsm(values.hsm) : undefined;
  const gw = await startGateway({
    keys: new LocalGatewayKeys(),
    ...(hsm ? { hsm } : {}),
    uws: { host: '127.0.0.1', port: 0 },
    ...(values.tls ? { h2Tls: { host: '127.0.0.1', port: 0, ...tlsFiles(values.tls) } } : {}),
  });
  announce({ uws: gw.ports.uws as number, ...(gw.ports.h2Tls ? { h2Tls: gw.ports.h2Tls } : {}) });
}

async function bareUws(): Promise<void> {
  const { loadUws } = await import('../../gateway/src/http/uws-load.ts');
  const uws = loadUws().uws as typeof import('@trufflesuite/uws-js-unofficial') | null;
  if (!uws) throw new Error(`uWS native binary not loaded: ${loadUws().error}`);
  const app = uws.App();
  app.any('/*', (res) => {
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
    });
    const chunks: Buffer[] = [];
    res.onData((chunk, last) => {
      chunks.push(Buffer.from(new Uint8Array(chunk)));
      if (!last || aborted) return;
      const body = Buffer.concat(chunks);
      const doc: unknown = body.length > 0 ? JSON.parse(body.toString('utf8')) : {};
      res.cork(() => {
        res.writeHeader('content-type', 'application/json');
        res.end(JSON.stringify({ data: doc }));
      });
    });
  });
  app.listen('127.0.0.1', 0, (s) => {
    if (!s) throw new Error('bare-uws: listen failed');
    announce({ uws: uws.us_socket_local_port(s as never) });
  });
}

function readBody(req: { on(ev: string, f: (c: Buffer) => void): unknown }, done: (body: Buffer) => void): void {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => done(Buffer.concat(chunks)));
}

function bareH2(dir: string): void {
  const f = tlsFiles(dir);
  const server = http2.createSecureServer({
    cert: readFileSync(f.certFile),
    key: readFileSync(f.keyFile),
    ca: readFileSync(f.caFile),
    requestCert: true,
    rejectUnauthorized: true,
    allowHTTP1: true,
  });
  server.on('request', (req, res) => {
    readBody(req, (body) => {
      const doc: unknown = body.length > 0 ? JSON.parse(body.toString('utf8')) : {};
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ data: doc }));
    });
  });
  server.listen(0, '127.0.0.1', () => announce({ h2Tls: (server.address() as AddressInfo).port }));
}

function nodeCrypto(): void {
  const key = randomBytes(32);
  const server = http.createServer((req, res) => {
    readBody(req, (body) => {
      const doc = JSON.parse(body.toString('utf8')) as { plaintext: string; context?: string };
      const nonce = randomBytes(12);
      const c = createCipheriv('aes-256-gcm', key, nonce);
      if (doc.context) c.setAAD(Buffer.from(doc.context, 'base64'));
      const ct = Buffer.concat([nonce, c.update(Buffer.from(doc.plaintext, 'base64')), c.final(), c.getAuthTag()]);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ data: { ciphertext: ct.toString('base64') } }));
    });
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => announce({ http: (server.address() as AddressInfo).port }));
}

function sampleApp(): void {
  const fixed = JSON.stringify(sampleOrder());
  const stored = new Map<string, string>();
  const server = http.createServer((req, res) => {
    readBody(req, (body) => {
      const url = req.url ?? '/';
      const send = (status: number, text: string) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(text);
      };
      if (req.method === 'POST' && url === '/orders') {
        const doc = JSON.parse(body.toString('utf8')) as { id?: string };
        const text = JSON.stringify(doc);
        stored.set(String(doc.id ?? 'last'), text);
        return send(201, text);
      }
      const m = /^\/orders\/([^/?]+)$/.exec(url);
      if (req.method === 'GET' && m) return send(200, stored.get(m[1] as string) ?? fixed);
      if (req.method === 'GET' && url.startsWith('/static/')) return send(200, fixed);
      send(404, '{"error":"not found"}');
    });
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => announce({ http: (server.address() as AddressInfo).port }));
}

switch (values.kind) {
  case 'gateway':
    await gateway();
    break;
  case 'bare-uws':
    await bareUws();
    break;
  case 'bare-h2':
    if (!values.tls) throw new Error('bare-h2 needs --tls DIR');
    bareH2(values.tls);
    break;
  case 'node-crypto':
    nodeCrypto();
    break;
  case 'node-proxy': {
    const { startNodeProxy } = await import('./node-proxy.ts');
    announce({ http: await startNodeProxy(Number(values.upstream)) });
    break;
  }
  case 'bare-forward': {
    const { startBareForward } = await import('./bare-forward.ts');
    announce({ http: await startBareForward(Number(values.upstream)) });
    break;
  }
  case 'sample-app':
    sampleApp();
    break;
  default:
    throw new Error(`serve.ts: unknown --kind ${JSON.stringify(values.kind)}`);
}
