/**
 * The edge API's JSON bodies and event-stream lines (docs/core.md "Edge API"),
 * shared by the Core (core/src/edge/) and the edge client (gateway/src/keys/).
 * The parsers check every field the client relies on and throw KcmError
 * `bad_request` naming the field: a malformed answer is never half-used.
 */
import { KcmError } from '../errors.ts';
import { isKeyId, isKeyVersion, isTenantId } from './ids.ts';

export const EDGE_PATHS = {
  lease: '/v1/edge/lease',
  events: '/v1/edge/events',
  ack: '/v1/edge/ack',
  usage: '/v1/edge/usage',
} as const;

/** Most decrypt-only versions one lease request may name. */
export const LEASE_MAX_VERSIONS = 64;

export interface WireLeaseRequest {
  tenant: string;
  service: string;
  /** Decrypt-only versions wanted besides the active one. */
  versions?: number[];
  ttlSeconds?: number;
}

/** One L3 version, wrapped for transport (base64url of nonce ‖ ct ‖ tag, 60 bytes). */
export interface WireLeasedVersion {
  version: number;
  state: 'ACTIVE' | 'EXPIRED';
  wrapped: string;
}

export interface WireLease {
  edgeId: string;
  tenant: string;
  service: string;
  ttlSeconds: number;
  /** base64url of the 16-byte HKDF salt of this lease. */
  salt: string;
  tenantState: 'ACTIVE' | 'SUSPENDED';
  minDecryptVersion: number;
  activeBudgetLeft: number | null;
  /** null while the tenant is suspended (encryption refused). */
  active: WireLeasedVersion | null;
  decryptOnly: WireLeasedVersion[];
}

export type WireEventType =
  | 'tenant.revoked'
  | 'tenant.suspended'
  | 'tenant.resumed'
  | 'l3.rotated'
  | 'l3.revoked'
  | 'l3.min_decrypt';

const EVENT_TYPES = new Set<string>([
  'tenant.revoked',
  'tenant.suspended',
  'tenant.resumed',
  'l3.rotated',
  'l3.revoked',
  'l3.min_decrypt',
]);

/** A key event as streamed: `kind: "event"`. */
export interface WireEvent {
  kind: 'event';
  seq: number;
  type: WireEventType;
  tenant: string;
  service: string | null;
  version: number | null;
  createdAt: number;
}

/** First line of every event stream. */
export interface WireHello {
  kind: 'hello';
  edgeId: string;
  /** Highest event seq in the store when the stream opened. */
  headSeq: number;
  /** The stream sends a heartbeat at least this often; silence for 3× means the link is dead. */
  heartbeatMs: number;
}

export interface WireHeartbeat {
  kind: 'heartbeat';
  at: number;
}

export type WireStreamLine = WireEvent | WireHello | WireHeartbeat;

function bad(field: string): never {
  throw new KcmError('bad_request', `edge API: invalid ${field}`);
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function nat(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) bad(field);
  return v;
}

function version(v: unknown, field: string): number {
  if (typeof v !== 'number' || !isKeyVersion(v)) bad(field);
  return v;
}

function leasedVersion(v: unknown, field: string): WireLeasedVersion {
  if (!isObj(v)) bad(field);
  if (v.state !== 'ACTIVE' && v.state !== 'EXPIRED') bad(`${field}.state`);
  if (typeof v.wrapped !== 'string' || v.wrapped.length > 128) bad(`${field}.wrapped`);
  return { version: version(v.version, `${field}.version`), state: v.state, wrapped: v.wrapped };
}

/** Validates a lease response body. */
export function parseWireLease(v: unknown): WireLease {
  if (!isObj(v)) bad('lease');
  if (typeof v.edgeId !== 'string' || v.edgeId.length === 0) bad('edgeId');
  if (typeof v.tenant !== 'string' || !isTenantId(v.tenant)) bad('tenant');
  if (typeof v.service !== 'string' || !isKeyId(v.service)) bad('service');
  if (typeof v.salt !== 'string') bad('salt');
  if (v.tenantState !== 'ACTIVE' && v.tenantState !== 'SUSPENDED') bad('tenantState');
  if (v.activeBudgetLeft !== null) nat(v.activeBudgetLeft, 'activeBudgetLeft');
  if (!Array.isArray(v.decryptOnly) || v.decryptOnly.length > LEASE_MAX_VERSIONS) bad('decryptOnly');
  return {
    edgeId: v.edgeId,
    tenant: v.tenant,
    service: v.service,
    ttlSeconds: nat(v.ttlSeconds, 'ttlSeconds'),
    salt: v.salt,
    tenantState: v.tenantState,
    minDecryptVersion: nat(v.minDecryptVersion, 'minDecryptVersion'),
    activeBudgetLeft: v.activeBudgetLeft as number | null,
    active: v.active === null ? null : leasedVersion(v.active, 'active'),
    decryptOnly: v.decryptOnly.map((d, i) => leasedVersion(d, `decryptOnly[${i}]`)),
  };
}

/** Parses one NDJSON line of the event stream. */
export function parseWireLine(line: string): WireStreamLine {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    bad('event stream line');
  }
  if (!isObj(v)) bad('event stream line');
  switch (v.kind) {
    case 'heartbeat':
      return { kind: 'heartbeat', at: nat(v.at, 'heartbeat.at') };
    case 'hello':
      if (typeof v.edgeId !== 'string') bad('hello.edgeId');
      return {
        kind: 'hello',
        edgeId: v.edgeId,
        headSeq: nat(v.headSeq, 'hello.headSeq'),
        heartbeatMs: nat(v.heartbeatMs, 'hello.heartbeatMs'),
      };
    case 'event':
      if (typeof v.type !== 'string' || !EVENT_TYPES.has(v.type)) bad('event.type');
      if (typeof v.tenant !== 'string' || !isTenantId(v.tenant)) bad('event.tenant');
      if (v.service !== null && (typeof v.service !== 'string' || !isKeyId(v.service))) bad('event.service');
      return {
        kind: 'event',
        seq: nat(v.seq, 'event.seq'),
        type: v.type as WireEventType,
        tenant: v.tenant,
        service: v.service as string | null,
        version: v.version === null ? null : version(v.version, 'event.version'),
        createdAt: nat(v.createdAt, 'event.createdAt'),
      };
    default:
      bad('event stream line kind');
  }
}
