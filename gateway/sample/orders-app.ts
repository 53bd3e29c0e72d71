/**
 * The sample upstream app that ships with the gateway (`kcm dev`, tests and
 * the benchmark's "app called directly" baseline): a tiny orders service
 * that stores whatever JSON it is given, per tenant (header `x-tenant-id`),
 * in memory. Behind the gateway and policies/orders.routes.example.json it
 * only ever sees ciphertext for the card and customer fields; called
 * directly it stores plaintext — that contrast is the point of the demo.
 *
 *   POST /orders                    → 201 {id, …order}
 *   GET  /orders                    → {orders: […]}
 *   GET  /orders/:id                → the order, or 404
 *   PUT  /orders/:id/customer       → replaces order.customer.{email,birthDate}
 *   GET  /healthz                   → {ok: true}
 *
 * Bodies over 256 KiB → 413, malformed JSON → 400. Not a product component:
 * no persistence, no authentication.
 */
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

const MAX_BODY = 256 * 1024;

export interface OrdersApp {
  server: Server;
  url: string;
  /** Every request body the app received, raw (tests assert it never saw a plaintext). */
  received: Buffer[];
  close(): Promise<void>;
}

type Order = Record<string, unknown> & { id: string };

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function readBody(req: IncomingMessage, received: Buffer[]): Promise<Record<string, unknown> | number> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > MAX_BODY) return 413;
    chunks.push(c);
  }
  const raw = Buffer.concat(chunks);
  received.push(raw);
  try {
    const v = JSON.parse(raw.toString('utf8')) as unknown;
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : 400;
  } catch {
    return 400;
  }
}

/** Starts the app on `port` (0 = any free port) of `host` (default loopback). */
export async function startOrdersApp(o: { port?: number; host?: string } = {}): Promise<OrdersApp> {
  const tenants = new Map<string, Map<string, Order>>();
  const received: Buffer[] = [];
  const ordersOf = (req: IncomingMessage) => {
    const t = String(req.headers['x-tenant-id'] ?? 'default');
    const known = tenants.get(t);
    if (known) return known;
    const m = new Map<string, Order>();
    tenants.set(t, m);
    return m;
  };
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] as string;
    const parts = path.split('/').filter(Boolean);
    const handle = async (): Promise<void> => {
      if (req.method === 'GET' && path === '/healthz') return send(res, 200, { ok: true });
      if (parts[0] !== 'orders' || parts.length > 3) return send(res, 404, { error: 'not found' });
      const orders = ordersOf(req);
      if (req.method === 'GET' && parts.length === 1) return send(res, 200, { orders: [...orders.values()] });
      if (req.method === 'POST' && parts.length === 1) {
        const body = await readBody(req, received);
        if (typeof body === 'number') return send(res, body, { error: body === 413 ? 'too large' : 'bad json' });
        const order: Order = { ...body, id: randomUUID() };
        orders.set(order.id, order);
        return send(res, 201, order);
      }
      const order = orders.get(parts[1] as string);
      if (!order) return send(res, 404, { error: 'no such order' });
      if (req.method === 'GET' && parts.length === 2) return send(res, 200, order);
      if (req.method === 'PUT' && parts[2] === 'customer') {
        const body = await readBody(req, received);
        if (typeof body === 'number') return send(res, body, { error: body === 413 ? 'too large' : 'bad json' });
        order.customer = { ...(order.customer as object | undefined), ...body };
        return send(res, 200, order);
      }
      return send(res, 405, { error: 'method not allowed' });
    };
    handle().catch(() => {
      if (!res.headersSent) send(res, 500, { error: 'internal' });
      else res.destroy();
    });
  });
  server.listen(o.port ?? 0, o.host ?? '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    server,
    url: `http://127.0.0.1:${port}`,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
