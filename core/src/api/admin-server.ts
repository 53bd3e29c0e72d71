/**
 * The Core's admin API over node:http(s): `/v1/sys/*` (status, init, unseal,
 * seal), `/v1/ivk*` (IVK versions), `/healthz` (process alive) and `/readyz`
 * (200 only when active). Bound to loopback unless TLS is configured: mTLS
 * identities and roles arrive with the security plane; until then the admin
 * API must not be reachable from the network in clear.
 */

import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { KcmError } from '../../../common/src/errors.ts';
import type { RootOfTrust } from '../root/root-of-trust.ts';
import { readJson, sendError, sendJson } from './http-json.ts';
import { Router } from './router.ts';
import { ivkRoutes } from './routes/ivk.ts';
import { sysRoutes } from './routes/sys.ts';

export interface AdminListenConfig {
  host: string;
  port: number;
  tls?: { certFile: string; keyFile: string; caFile?: string };
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

export interface AdminServer {
  server: Server;
  url: string;
  close(): Promise<void>;
}

export async function startAdminServer(
  root: RootOfTrust,
  listen: AdminListenConfig,
  log: (msg: string) => void = (m) => console.error(m),
): Promise<AdminServer> {
  if (!listen.tls && !LOOPBACK.has(listen.host)) {
    throw new KcmError('invalid_config', `admin API on ${listen.host} without TLS: bind to loopback or configure tls`);
  }
  const router = new Router([...sysRoutes(root), ...ivkRoutes(root)]);
  const hosts = allowedHosts(listen);
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    void serve(router, root, req, res, log, hosts);
  };
  const server = listen.tls
    ? createHttpsServer(
        {
          cert: readFileSync(listen.tls.certFile),
          key: readFileSync(listen.tls.keyFile),
          // A CA means client certificates: required and verified (mTLS).
          ...(listen.tls.caFile
            ? { ca: readFileSync(listen.tls.caFile), requestCert: true, rejectUnauthorized: true }
            : {}),
        },
        handle,
      )
    : createHttpServer(handle);
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const host = listen.host.includes(':') ? `[${listen.host}]` : listen.host;
  return {
    server,
    url: `${listen.tls ? 'https' : 'http'}://${host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/**
 * Host names a request may carry on a plain-HTTP loopback listener: the
 * loopback names. Anything else is refused, so a web page cannot reach the
 * API through DNS rebinding. (Over TLS a rebound name fails the certificate
 * check in the browser; null = no Host check.)
 */
function allowedHosts(listen: AdminListenConfig): Set<string> | null {
  return listen.tls ? null : new Set([listen.host.toLowerCase(), ...LOOPBACK]);
}

/** The host part of a Host header ("[::1]:8200" → "::1", "example:80" → "example"). */
function hostOf(header: string | undefined): string {
  const h = (header ?? '').toLowerCase();
  if (h.startsWith('[')) return h.slice(1, h.indexOf(']'));
  return h.replace(/:\d+$/, '');
}

/**
 * Browser-borne requests are refused: a Host other than ours (DNS rebinding),
 * and a mutating request that is not `application/json` (a cross-site form or
 * no-cors fetch cannot send that type without a preflight).
 */
function checkOrigin(req: IncomingMessage, hosts: Set<string> | null): void {
  if (hosts && !hosts.has(hostOf(req.headers.host))) throw new KcmError('bad_request', 'unexpected Host header');
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
    if (type !== 'application/json')
      throw new KcmError('bad_request', 'requests that change state must be application/json');
  }
}

async function serve(
  router: Router,
  root: RootOfTrust,
  req: IncomingMessage,
  res: ServerResponse,
  log: (m: string) => void,
  hosts: Set<string> | null,
) {
  try {
    const path = (req.url ?? '/').split('?')[0] as string;
    checkOrigin(req, hosts);
    if (path === '/healthz') return sendJson(res, 200, { ok: true });
    if (path === '/readyz') {
      const s = root.status();
      return sendJson(res, s.state === 'active' ? 200 : 503, { ready: s.state === 'active', state: s.state });
    }
    const { route, params } = router.match(req.method ?? 'GET', path);
    const body = route.method === 'GET' ? {} : await readJson(req);
    const [status, out] = await route.handler({ body, params });
    sendJson(res, status, out);
  } catch (err) {
    if (!res.headersSent) sendError(res, err, log);
    else res.destroy();
  }
}
