/**
 * Content framing both fronts apply to an answer (uws-adapter.ts
 * writeResponse, h2-adapter.ts send), so the two cannot drift apart.
 */
import type { PipelineResponse } from '../pipeline/context.ts';

const DECIMAL = /^[0-9]{1,15}$/;

/** True when the answer carries no content: a HEAD answer, 204 or 304 (RFC 9110 §6.4.1). */
export function withoutContent(status: number, head: boolean): boolean {
  return head || status === 204 || status === 304;
}

/**
 * The Content-Length an answer without content reports, or undefined for
 * none: never for a 204 (RFC 9110 §8.6); for HEAD and 304 the length a GET
 * would get (§8.6, §15.4.5): the answer's own valid `content-length` (the
 * upstream's, when forwarded), else for HEAD the body's length `own` (the
 * gateway's own answers), else none.
 */
export function reportedLength(r: PipelineResponse, head: boolean, own: number): string | undefined {
  if (r.status === 204) return undefined;
  const declared = r.headers['content-length'];
  if (typeof declared === 'string' && DECIMAL.test(declared)) return declared;
  return head && own > 0 ? String(own) : undefined;
}
