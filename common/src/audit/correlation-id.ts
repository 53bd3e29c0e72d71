/**
 * The correlation id of a request (ADR-902): links the audit record to the
 * caller's trace and to the customer's KMS logs.
 *
 * Order: the trace-id of a valid W3C `traceparent` header (Trace Context
 * §3.2: `version-traceid-parentid-flags`, lower-case hex, trace-id and
 * parent-id not all zeros, version `ff` invalid, version 00 exactly 55
 * characters); else `x-correlation-id` when it is 1–64 characters of
 * `A-Z a-z 0-9 . _ : -`; else a fresh random 128-bit id (32 hex digits).
 */
import { randomBytes } from 'node:crypto';

/** Header values as node:http gives them (lower-case names), or a fetch Headers object. */
export type HeaderBag = Record<string, string | string[] | undefined> | { get(name: string): string | null };

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
const CORRELATION_ID = /^[A-Za-z0-9._:-]{1,64}$/;

function header(h: HeaderBag, name: string): string | undefined {
  if (typeof (h as { get?: unknown }).get === 'function')
    return (h as { get(n: string): string | null }).get(name) ?? undefined;
  const v = (h as Record<string, string | string[] | undefined>)[name];
  return Array.isArray(v) ? v[0] : v;
}

/** The trace-id of a valid `traceparent` value, or undefined. */
export function traceIdFrom(traceparent: string | undefined): string | undefined {
  if (traceparent === undefined || traceparent.length > 512) return undefined;
  const m = TRACEPARENT.exec(traceparent.trim());
  if (!m) return undefined;
  const [, version, traceId, parentId, , rest] = m as unknown as [string, string, string, string, string, string?];
  if (version === 'ff' || (version === '00' && rest !== undefined)) return undefined;
  if (/^0+$/.test(traceId) || /^0+$/.test(parentId)) return undefined;
  return traceId;
}

/** The correlation id for a request's headers, by the order above; never throws. */
export function correlationIdFrom(headers: HeaderBag): string {
  const trace = traceIdFrom(header(headers, 'traceparent'));
  if (trace) return trace;
  const cid = header(headers, 'x-correlation-id')?.trim();
  if (cid && CORRELATION_ID.test(cid)) return cid;
  return randomBytes(16).toString('hex');
}
