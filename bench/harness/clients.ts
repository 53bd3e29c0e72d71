/**
 * Request senders the load models drive: HTTP/1.1 keep-alive (undici Pool)
 * and h2 over mTLS (node:http2, one session, streams multiplexed). A send
 * resolves when the whole response body has arrived and rejects on a
 * transport error or a status other than the expected one.
 */
import http2 from 'node:http2';
import { Pool } from 'undici';

export interface RequestSpec {
  method: 'GET' | 'POST';
  path: string;
  headers: Record<string, string>;
  body?: string;
  /** Expected status (default 200). */
  status?: number;
}

export interface Sender {
  readonly label: string;
  send(): Promise<void>;
  close(): Promise<void>;
}

export interface TlsClient {
  ca: string;
  cert: string;
  key: string;
}

/**
 * Idle time after which the sender closes a keep-alive connection itself:
 * under uWS's 10 s idle timeout (the gateway's front and the bare echo), so
 * the client never writes a request onto a connection the server is closing.
 * At 60 s a connection idle between phases was sometimes closed by uWS as the
 * next request went out: a `read ECONNRESET` counted as a failed request
 * (CI, 2026-11-29, on the bare echo).
 */
const CLIENT_IDLE_MS = 5_000;

/** HTTP/1.1 keep-alive sender over up to `connections` connections. */
export function http1Sender(label: string, port: number, spec: RequestSpec, connections = 32): Sender {
  const pool = new Pool(`http://127.0.0.1:${port}`, {
    connections,
    pipelining: 1,
    keepAliveTimeout: CLIENT_IDLE_MS,
    keepAliveMaxTimeout: CLIENT_IDLE_MS,
  });
  const expected = spec.status ?? 200;
  const opts = { path: spec.path, method: spec.method, headers: spec.headers, body: spec.body ?? null };
  return {
    label,
    async send() {
      const res = await pool.request(opts);
      await res.body.dump({ limit: Number.POSITIVE_INFINITY });
      if (res.statusCode !== expected) throw new Error(`${label}: status ${res.statusCode}, expected ${expected}`);
    },
    close: () => pool.close(),
  };
}

/** h2 over mTLS sender: one session to 127.0.0.1:port with the client certificate. */
export function h2Sender(label: string, port: number, spec: RequestSpec, tls: TlsClient): Sender {
  const session = http2.connect(`https://127.0.0.1:${port}`, {
    ca: tls.ca,
    cert: tls.cert,
    key: tls.key,
    servername: 'localhost',
  });
  session.on('error', () => {});
  const expected = spec.status ?? 200;
  const headers = { ':method': spec.method, ':path': spec.path, ...spec.headers };
  return {
    label,
    send() {
      return new Promise<void>((resolve, reject) => {
        const req = session.request(headers);
        let status = 0;
        req.on('response', (h) => {
          status = Number(h[':status']);
        });
        req.on('data', () => {});
        req.on('error', reject);
        req.on('end', () => {
          if (status !== expected) reject(new Error(`${label}: status ${status}, expected ${expected}`));
          else resolve();
        });
        req.end(spec.body);
      });
    },
    close: () =>
      new Promise<void>((resolve) => {
        session.close(() => resolve());
      }),
  };
}
