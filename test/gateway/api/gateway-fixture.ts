/**
 * A real gateway on port 0 (uWS + the h2c/HTTP/1.1 plaintext port) over
 * LocalGatewayKeys, an undici agent to call it, and raw-socket helpers for
 * hostile input. Every test closes what it starts.
 */
import net from 'node:net';
import { Agent, request } from 'undici';
import type { TestPki } from '../../../common/src/pki/index.ts';
import { LocalGatewayKeys } from '../../../gateway/src/gateway-keys.ts';
import { type GatewayConfig, type GatewayServer, startGateway } from '../../../gateway/src/gateway-server.ts';
import type { H2TlsOptions } from '../../../gateway/src/http/h2-adapter.ts';

export interface Fixture {
  gw: GatewayServer;
  keys: LocalGatewayKeys;
  logs: string[];
  agent: Agent;
  base: { uws: string; plain: string };
  close(): Promise<void>;
}

/** The mTLS front on a free loopback port with the test PKI's edge-a certificate, trusting its CA; `extra` adds or overrides. */
export function h2TlsFront(pki: TestPki, extra: Partial<H2TlsOptions> = {}): H2TlsOptions {
  return {
    host: '127.0.0.1',
    port: 0,
    certFile: pki.edgeA.certFile,
    keyFile: pki.edgeA.keyFile,
    caFile: pki.ca.certFile,
    ...extra,
  };
}

export async function startFixture(extra: Partial<GatewayConfig> = {}): Promise<Fixture> {
  const keys = new LocalGatewayKeys();
  const logs: string[] = [];
  const gw = await startGateway({
    keys,
    uws: { host: '127.0.0.1', port: 0 },
    h2Plain: { host: '127.0.0.1', port: 0 },
    log: (m) => logs.push(m),
    ...extra,
  });
  const agent = new Agent({ keepAliveTimeout: 1000 });
  return {
    gw,
    keys,
    logs,
    agent,
    base: { uws: `http://127.0.0.1:${gw.ports.uws}`, plain: `http://127.0.0.1:${gw.ports.h2Plain}` },
    async close() {
      await agent.close();
      await gw.close();
      keys.close();
    },
  };
}

export interface JsonReply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  json: any;
}

/** POSTs JSON (tenant `t1` by header unless `headers` says otherwise). */
export async function postJson(
  f: Fixture,
  url: string,
  body: unknown,
  headers: Record<string, string> = { 'x-okcm-tenant': 't1' },
): Promise<JsonReply> {
  const res = await request(url, {
    method: 'POST',
    dispatcher: f.agent,
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, json: text ? JSON.parse(text) : undefined };
}

export async function getText(f: Fixture, url: string): Promise<{ status: number; text: string; type: string }> {
  const res = await request(url, { dispatcher: f.agent });
  return { status: res.statusCode, text: await res.body.text(), type: String(res.headers['content-type']) };
}

/**
 * Writes `chunks` to a raw TCP connection (with `gapMs` between them) and
 * returns everything the server sent until it closed or `timeoutMs` passed.
 */
export function rawExchange(
  port: number,
  chunks: (string | Buffer)[],
  o: { gapMs?: number; timeoutMs?: number; destroyAfterWrite?: boolean } = {},
): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let text = '';
    let closed = false;
    const done = () => resolve({ text, closed });
    const timer = setTimeout(() => {
      s.destroy();
      done();
    }, o.timeoutMs ?? 2000);
    s.on('data', (d) => {
      text += d.toString('latin1');
    });
    s.on('error', () => {});
    s.on('close', () => {
      closed = true;
      clearTimeout(timer);
      done();
    });
    s.on('connect', async () => {
      for (const c of chunks) {
        if (s.destroyed) break;
        s.write(c);
        if (o.gapMs) await new Promise((r) => setTimeout(r, o.gapMs));
      }
      if (o.destroyAfterWrite) s.destroy();
    });
  });
}

export const b64 = (s: string | Buffer): string => Buffer.from(s).toString('base64');
