/**
 * One HTTP/2 request on a fresh session (h2c, or h2 over TLS with an
 * optional client certificate), for tests of the gateway's node:http2 fronts.
 * Resolves with the status, the body as text and the ALPN protocol; rejects
 * on a session or stream error, or when the stream ends without a response
 * (a refused handshake).
 */
import http2 from 'node:http2';

export interface H2Reply {
  status: number;
  body: string;
  alpn: string | false | undefined;
}

export interface H2RequestOptions {
  /** TLS: the CA to trust, and the client certificate and key, if any (servername `localhost`). */
  tls?: { ca: string; cert?: string; key?: string };
  /** Default: GET without a body, POST with one. */
  method?: string;
  /** Sent as is when a string, else as JSON; either way with `content-type: application/json`. */
  body?: unknown;
  headers?: Record<string, string>;
}

export function h2Request(url: string, path: string, o: H2RequestOptions = {}): Promise<H2Reply> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(url, o.tls ? { ...o.tls, servername: 'localhost' } : {});
    session.on('error', (err) => {
      session.destroy();
      reject(err);
    });
    const headers: http2.OutgoingHttpHeaders = {
      ':path': path,
      ':method': o.method ?? (o.body === undefined ? 'GET' : 'POST'),
      ...(o.body === undefined ? {} : { 'content-type': 'application/json' }),
      ...o.headers,
    };
    const req = session.request(headers);
    let status = 0;
    let body = '';
    req.on('response', (h) => {
      status = Number(h[':status']);
    });
    req.setEncoding('utf8');
    req.on('data', (d: string) => {
      body += d;
    });
    req.on('error', (err) => {
      session.destroy();
      reject(err);
    });
    req.on('end', () => {
      const alpn = session.alpnProtocol;
      session.close();
      // A refused handshake can end the stream with no response at all.
      if (status === 0) reject(new Error(`no response (stream reset ${req.rstCode})`));
      else resolve({ status, body, alpn });
    });
    const payload = o.body === undefined ? undefined : typeof o.body === 'string' ? o.body : JSON.stringify(o.body);
    req.end(payload);
  });
}
