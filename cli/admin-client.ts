/**
 * How `kcm` commands call the Core admin API: one function for every
 * command, speaking HTTPS with a client certificate (mTLS, ADR-401) or plain
 * HTTP to a development Core on loopback.
 *
 * Where to connect and as whom: flags (`--addr`, `--cert`, `--key`, `--ca`)
 * or the environment (`KCM_ADDR`, `KCM_CLIENT_CERT`, `KCM_CLIENT_KEY`,
 * `KCM_CA_CERT`); default `http://127.0.0.1:8200`. Files are read when the
 * connection opens; their contents never appear in an error.
 */
import { readFileSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { flag, type ParsedArgs } from './args.ts';

export interface AdminTarget {
  addr: string;
  cert?: string;
  key?: string;
  ca?: string;
}

/** The connection flags every admin command accepts (merge into its parseArgs spec). */
export const ADMIN_FLAGS = { addr: true, cert: true, key: true, ca: true } as const;

export const ADMIN_USAGE =
  '[--addr URL] [--cert FILE --key FILE] [--ca FILE]   (or KCM_ADDR, KCM_CLIENT_CERT, KCM_CLIENT_KEY, KCM_CA_CERT)';

/** The target named by flags, then the environment, then the development default. */
export function adminTarget(p: ParsedArgs, env: NodeJS.ProcessEnv = process.env): AdminTarget {
  const t: AdminTarget = { addr: flag(p, 'addr') ?? env.KCM_ADDR ?? 'http://127.0.0.1:8200' };
  const cert = flag(p, 'cert') ?? env.KCM_CLIENT_CERT;
  const key = flag(p, 'key') ?? env.KCM_CLIENT_KEY;
  const ca = flag(p, 'ca') ?? env.KCM_CA_CERT;
  if (cert) t.cert = cert;
  if (key) t.key = key;
  if (ca) t.ca = ca;
  if ((t.cert === undefined) !== (t.key === undefined)) throw new Error('--cert and --key go together');
  return t;
}

function readFor(what: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new Error(`cannot read the ${what} file ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
}

/**
 * Sends one JSON request and returns the parsed JSON answer. Throws Error
 * "STATUS code: message" for a non-2xx answer (202 "approval requested" is a
 * success: its body is returned), and "cannot reach the Core at ADDR: …" when
 * no answer arrives within 30 s.
 */
export async function adminCall(t: AdminTarget, method: string, path: string, body?: unknown): Promise<unknown> {
  const url = new URL(path, t.addr);
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  const headers: Record<string, string | number> = { accept: 'application/json' };
  if (payload) Object.assign(headers, { 'content-type': 'application/json', 'content-length': payload.length });
  const tls =
    url.protocol === 'https:'
      ? {
          ...(t.cert ? { cert: readFor('client certificate', t.cert) } : {}),
          ...(t.key ? { key: readFor('client key', t.key) } : {}),
          ...(t.ca ? { ca: readFor('CA', t.ca) } : {}),
        }
      : {};
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  const res = await new Promise<{ status: number; text: string }>((resolve, reject) => {
    const req = send(url, { method, headers, timeout: 30_000, ...tls }, (r: IncomingMessage) => {
      const chunks: Buffer[] = [];
      r.on('data', (c: Buffer) => chunks.push(c));
      r.on('end', () => resolve({ status: r.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      r.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (err) => reject(new Error(`cannot reach the Core at ${t.addr}: ${err.message}`)));
    req.end(payload);
  });
  let out: { error?: { code?: string; message?: string } } = {};
  try {
    out = res.text ? JSON.parse(res.text) : {};
  } catch {
    // A non-JSON answer is reported by status below.
  }
  if (res.status < 200 || res.status > 299) {
    throw new Error(`${res.status} ${out.error?.code ?? ''}: ${out.error?.message ?? 'request failed'}`);
  }
  return out;
}
