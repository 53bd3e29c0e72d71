/**
 * One HTTPS request with an optional client certificate, for mTLS tests.
 * Resolves with the status, the parsed JSON body and the server
 * certificate's fingerprint; a refused handshake or a reset connection
 * resolves as `{ status: 0, error }` (never rejects), so a test can assert
 * "refused" for either form of refusal.
 */
import { request } from 'node:https';
import type { TLSSocket } from 'node:tls';

export interface ClientCert {
  certPem: string;
  keyPem: string;
}

export interface MtlsReply {
  status: number;
  // biome-ignore lint/suspicious/noExplicitAny: JSON bodies are checked by the tests
  body: any;
  serverFingerprint?: string;
  error?: string;
}

export interface MtlsRequest {
  url: string;
  method?: string;
  body?: unknown;
  /** The CA that signed the server certificate (PEM). */
  ca: string | string[];
  client?: ClientCert | null;
  /** An https.Agent for keep-alive; default none (a fresh handshake per request). */
  agent?: import('node:https').Agent;
  timeoutMs?: number;
}

export function mtlsRequest(r: MtlsRequest): Promise<MtlsReply> {
  const method = r.method ?? 'GET';
  const payload = r.body === undefined ? undefined : JSON.stringify(r.body);
  return new Promise((resolve) => {
    let fingerprint: string | undefined;
    const req = request(
      r.url,
      {
        method,
        ca: r.ca,
        ...(r.client ? { cert: r.client.certPem, key: r.client.keyPem } : {}),
        agent: r.agent ?? false,
        headers: payload === undefined ? {} : { 'content-type': 'application/json' },
        timeout: r.timeoutMs ?? 10_000,
      },
      (res) => {
        fingerprint = (res.socket as TLSSocket).getPeerX509Certificate?.()?.fingerprint256;
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let body: unknown = text;
          try {
            body = text ? JSON.parse(text) : null;
          } catch {}
          resolve({ status: res.statusCode ?? 0, body, ...(fingerprint ? { serverFingerprint: fingerprint } : {}) });
        });
        res.on('error', (e) => resolve({ status: 0, body: null, error: e.message }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e: NodeJS.ErrnoException) => resolve({ status: 0, body: null, error: e.code ?? e.message }));
    req.end(payload);
  });
}
