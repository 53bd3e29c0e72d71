/**
 * JSON over node:http for the Core's APIs: bounded body reading, one error
 * shape `{ "error": { "code", "message" } }`, statuses from the error table.
 * Errors that are not KcmErrors become 500 `internal_error` with no detail
 * (the detail goes to the server log, never to the client).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { KcmError } from '../../../common/src/errors.ts';
import { SealProviderError } from '../seal/seal-provider.ts';

export const MAX_BODY_BYTES = 64 * 1024;

/** Reads and parses a JSON object body; throws KcmError `bad_request` (400) or `plaintext_too_large` (413). */
export async function readJson(req: IncomingMessage, limit = MAX_BODY_BYTES): Promise<Record<string, unknown>> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limit) throw new KcmError('plaintext_too_large', `body over ${limit} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new KcmError('plaintext_too_large', `body over ${limit} bytes`);
    chunks.push(chunk as Buffer);
  }
  return jsonObjectOf(chunks, size);
}

/**
 * The JSON object a request body of `size` bytes in `chunks` holds ({} when
 * empty); throws KcmError `bad_request` when it is not JSON or not an object.
 * Shared by the admin API (node:http) and the edge API (node:http2).
 */
export function jsonObjectOf(chunks: readonly Buffer[], size: number): Record<string, unknown> {
  if (size === 0) return {};
  let value: unknown;
  try {
    value = JSON.parse(Buffer.concat(chunks as Buffer[], size).toString('utf8'));
  } catch {
    throw new KcmError('bad_request', 'body is not valid JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new KcmError('bad_request', 'body must be a JSON object');
  }
  return value as Record<string, unknown>;
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
  });
  res.end(text);
}

/** Maps an error to its status and public body; returns the code for logging. */
export function sendError(res: ServerResponse, err: unknown, log: (msg: string) => void = () => {}): string {
  if (err instanceof SealProviderError) {
    log(`seal provider: ${err.message}`);
    const code = err.retryable ? 'seal_provider_unavailable' : 'seal_provider_rejected';
    return sendError(res, new KcmError(code, err.kind), log);
  }
  if (err instanceof KcmError) {
    if (err.source === 'internal') {
      // Internal codes keep their detail for the log; the client gets the code only.
      log(`${err.code}: ${err.message}`);
      sendJson(res, err.status, { error: { code: err.code, message: err.code.replaceAll('_', ' ') } });
    } else {
      sendJson(res, err.status, { error: { code: err.code, message: err.message } });
    }
    return err.code;
  }
  log(`internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  sendJson(res, 500, { error: { code: 'internal_error', message: 'internal error' } });
  return 'internal_error';
}

/** A string field or `bad_request` naming it. */
export function stringField(body: Record<string, unknown>, name: string, maxLength = 4096): string {
  const v = body[name];
  if (typeof v !== 'string' || v.length === 0 || v.length > maxLength) {
    throw new KcmError('bad_request', `${name} must be a non-empty string of at most ${maxLength} characters`);
  }
  return v;
}

/** An optional integer field within bounds, or `bad_request` naming it. */
export function intField(body: Record<string, unknown>, name: string, min: number, max: number): number | undefined {
  const v = body[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new KcmError('bad_request', `${name} must be an integer from ${min} to ${max}`);
  }
  return v;
}
