/**
 * The typed per-request context every pipeline stage reads and fills in.
 * Adapters build it synchronously from what the transport gives them (the
 * uWS request object is gone after the first await, so every header is
 * copied here); stages add the route, the caller, the body and the response.
 */
import type { KcmError } from '../../../common/src/errors.ts';
import type { RequestBody } from './request-body.ts';
import type { Route } from './router.ts';

/** Which front adapter accepted the request. */
export type AdapterName = 'uws' | 'h2' | 'h2c' | 'http1' | 'https1';

/**
 * What the transport knows about the peer. A request that arrived with a
 * verified client certificate (`certificate` set) is identified by that
 * certificate only, never by `address` (caller.ts identifyCaller): an
 * {@link UnusableCertificate} is refused, it never falls back to the address.
 */
export interface PeerInfo {
  /** Remote address as text (IPv4, or IPv6 without brackets). */
  address: string;
  /**
   * Set when, and only when, the peer presented a client certificate the
   * listener verified (mTLS listeners; every request there has one).
   */
  certificate?: PresentedCertificate;
}

/** A verified client certificate, usable as an identity or not. */
export type PresentedCertificate = PeerCertificate | UnusableCertificate;

/** The identity parts of a verified client certificate. */
export interface PeerCertificate {
  /** Subject CN: exactly one, non-empty. */
  cn: string;
  /** URI SANs (e.g. SPIFFE ids). */
  uris: readonly string[];
  fingerprint256: string;
  unusable?: undefined;
}

/** A verified client certificate that cannot name a caller (its subject has no CN, an empty one, or several). */
export interface UnusableCertificate {
  /** Why, for logs and the audit; never quotes the subject. */
  unusable: string;
  fingerprint256: string;
  cn?: undefined;
}

/** True when `c` names a caller (exactly one CN). */
export function isUsableCertificate(c: PresentedCertificate): c is PeerCertificate {
  return c.unusable === undefined;
}

/**
 * What `tenantsForCertificate` says a client certificate may act for: a list
 * of tenant ids (none: no tenant), or 'any' (every tenant, present and
 * future: an operations tool, a multi-tenant platform service).
 */
export type CertificateTenants = readonly string[] | 'any';

/** Who is calling, as the identity stage decided. */
export interface Caller {
  kind: 'certificate' | 'trusted-peer';
  /** CN for certificates, the address for trusted peers. */
  id: string;
  /**
   * Tenants the caller may act for; 'any' for trusted peers (loopback /
   * configured networks) and for certificates mapped to 'any' (identity file `"*"`).
   */
  tenants: ReadonlySet<string> | 'any';
}

/** A response a stage decided on; the respond stage writes it. */
export interface PipelineResponse {
  status: number;
  /** Lower-case names; an array writes the header once per value (e.g. set-cookie from an upstream). */
  headers: Record<string, string | string[]>;
  body: Buffer | string;
  /** Close the connection after responding (e.g. a body left unread). */
  close?: boolean;
}

/** Adapter side of responding: write one complete response, or nothing if the client is gone. */
export interface Responder {
  send(response: PipelineResponse): void;
}

export interface RequestContext {
  readonly adapter: AdapterName;
  /** Upper-case method. */
  readonly method: string;
  /** Path without the query string. */
  readonly path: string;
  readonly query: string;
  /** Lower-case header names; repeated headers joined with ", ". */
  readonly headers: Readonly<Record<string, string>>;
  readonly peer: PeerInfo;
  readonly body: RequestBody;
  readonly responder: Responder;
  /** process.hrtime.bigint() when the adapter accepted the request. */
  readonly startedAt: bigint;
  /** From traceparent / x-correlation-id, or generated. */
  readonly correlationId: string;
  /**
   * Set by the adapter when the client goes away; stages stop and nothing is
   * written. Setting it to true runs the {@link onAbort} hooks.
   */
  aborted: boolean;
  /**
   * Runs `fn` once when the client goes away (at once if it already has):
   * stages use it to cancel work they start (the upstream request). Returns
   * the function that unregisters `fn`; call it when the work `fn` would
   * cancel is over, so nothing it holds outlives that work.
   */
  onAbort(fn: () => void): () => void;
  /** Set by the route stage; `unmatched` when no route matched. */
  routeName: string;
  /** The matched route. */
  route?: Route;
  /** Path parameters of the matched route. */
  params: Record<string, string>;
  caller?: Caller;
  /** The tenant the request acts for: resolved in the identify stage (proxy routes) or by the handler (direct API). */
  tenant?: string;
  /** The L3 key a direct API request names (its audit resource). */
  keyId?: string;
  /** The L3 versions a direct API request looked up to open ciphertexts, `<key id> v<version>` (its audit resource). */
  auditKeys?: string[];
  /** The request is being (or was) sent to the upstream: a refusal now comes after the upstream may have acted on it. */
  forwarded?: boolean;
  /** The record of the request fields' key use was written before forwarding (audit/request-audit.ts). */
  auditForwarded?: boolean;
  /** Who a trusted peer said reads the response fields (callerHeaders), for the audit record's actor. */
  auditReader?: { identity?: string; roles: readonly string[] };
  /** The raw body, when the route reads it whole. Passthrough stages forward these bytes untouched. */
  rawBody?: Buffer;
  /** What the matched route keeps between its own stages (e.g. the proxy's ProxyState); owned by the route. */
  routeState?: object;
  /** The parsed JSON body, when the route declares `body: 'json'`. */
  json?: unknown;
  /** The answer, once a stage has one; stages after that (up to respond) are skipped. */
  response?: PipelineResponse;
  /** The error that produced the response, for metrics and audit. */
  error?: KcmError;
  /** Precise failure reasons (e.g. `auth_failed`, `wrong_tenant`) for the audit record only; never sent. */
  auditReasons?: string[];
  /** Set by the respond stage. */
  responded: boolean;
}

/** Reads a correlation id from traceparent (its trace id) or x-correlation-id, else makes one. */
export function correlationIdOf(headers: Readonly<Record<string, string>>, next: () => string): string {
  const tp = headers.traceparent;
  if (tp) {
    const m = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/.exec(tp);
    if (m?.[1]) return m[1];
  }
  const cid = headers['x-correlation-id'];
  if (cid && /^[A-Za-z0-9._~:-]{1,128}$/.test(cid)) return cid;
  return next();
}
