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
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    void serve(router, root, req, res, log);
  };
  const server = listen.tls
    ? createHttpsServer(
        {
          cert: readFileSync(listen.tls.certFile),
          key: readFileSync(listen.tls.keyFile),
          ...(listen.tls.caFile ? { ca: readFileSync(listen.tls.caFile) } : {}),
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

async function serve(
  router: Router,
  root: RootOfTrust,
  req: IncomingMessage,
  res: ServerResponse,
  log: (m: string) => void,
) {
  try {
    const path = (req.url ?? '/').split('?')[0] as string;
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
