/**
 * The native front's route table (native/src/front/table.rs documents the
 * encoding): the policy routes in match order, which of them it serves,
 * their upstreams, the gateway's trusted peers, the upstream pool limits and
 * the texts of its answers. Every fact it holds comes from the objects the
 * pipeline itself runs on, so the two cannot disagree on them.
 *
 * A route is served natively only when the pipeline's answer can be had
 * without JavaScript (docs/decisions/0001-native-data-plane.md, steps 2
 * and 3): no response rules; request rules only when the native scan takes
 * them, none stringifies a non-string or binds a record id, the backend is
 * `native`, and no audit log must record the request; a tenant from a
 * header or a path parameter (the front has no TLS, so no certificate); and
 * an `http:` upstream at an IP address. Nothing is served when `serve` is false (the
 * gateway drains, or a gateway-wide transform hook or audit sink must see
 * every request), or when the trust cannot be listed.
 */
import { STATUS_CODES } from 'node:http';
import { isIP } from 'node:net';
import { ERRORS } from '../../../common/src/errors.ts';
import { ENVELOPE_TEXT_HEAD, MAX_CONTEXT_BYTES } from '../../../common/src/format/envelope.ts';
import type { PeerTrust } from '../pipeline/caller.ts';
import { fieldContext } from '../pipeline/field-context.ts';
import { encodeRules } from '../pipeline/json-targets.ts';
import type { PolicySet } from '../policy/policy-loader.ts';
import type { CompiledRoute, Upstream } from '../policy/policy-types.ts';
import type { RoutePattern } from '../policy/route-pattern.ts';
import { proxyRouteName } from '../proxy/proxy-routes.ts';
import { upstreamLabel } from '../upstream/forward.ts';
import type { UpstreamOptions } from '../upstream/upstream-pools.ts';

export interface FrontTableInput {
  policies: PolicySet;
  /** Upstream name → URL, replacing the policy's URL (as proxyMatcher applies it). */
  upstreamUrls?: ReadonlyMap<string, URL> | undefined;
  upstream: UpstreamOptions;
  /** Patterns of the routes the pipeline matches before the policies (direct API, extra routes). */
  reserved: readonly string[];
  trust: PeerTrust;
  /** False: the front serves nothing and tunnels every connection. */
  serve: boolean;
  /** An audit log records each request of a route with field rules: the front serves none of those. */
  audit: boolean;
  /**
   * The key layer tells of key changes (GatewayKeys.onKeysChanged): without
   * that, the front's key copies could outlive a revocation, so it seals nothing.
   */
  keyEvents: boolean;
  /** The id of a metrics name (the same id for the same name, for the life of the front). */
  nameId: (name: string) => number;
}

export interface FrontTable {
  bytes: Buffer;
  /** How many routes it serves. */
  served: number;
}

class Writer {
  readonly #parts: Buffer[] = [];
  u8(n: number): this {
    this.#parts.push(Buffer.from([n]));
    return this;
  }
  u16(n: number): this {
    const b = Buffer.alloc(2);
    b.writeUInt16LE(n);
    this.#parts.push(b);
    return this;
  }
  u32(n: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(Math.min(n, 0xffffffff));
    this.#parts.push(b);
    return this;
  }
  bytes(v: string | Uint8Array): this {
    const b = typeof v === 'string' ? Buffer.from(v, 'latin1') : Buffer.from(v);
    this.u32(b.length);
    this.#parts.push(b);
    return this;
  }
  raw(b: Uint8Array): this {
    this.#parts.push(Buffer.from(b));
    return this;
  }
  list<T>(items: readonly T[], each: (w: this, item: T) => void): this {
    this.u32(items.length);
    for (const item of items) each(this, item);
    return this;
  }
  done(): Buffer {
    return Buffer.concat(this.#parts);
  }
}

/** 16 bytes of an IP address (IPv4 as ::ffff:a.b.c.d); `text` must pass isIP. */
export function addressBytes(text: string): Buffer {
  const out = Buffer.alloc(16);
  if (isIP(text) === 4) {
    out[10] = 0xff;
    out[11] = 0xff;
    text.split('.').forEach((d, i) => {
      out[12 + i] = Number(d);
    });
    return out;
  }
  const groups = (part: string): number[] => {
    if (part === '') return [];
    const out: number[] = [];
    for (const g of part.split(':')) {
      if (g.includes('.')) {
        const [a = 0, b = 0, c = 0, d = 0] = g.split('.').map(Number);
        out.push((a << 8) | b, (c << 8) | d);
      } else out.push(Number.parseInt(g, 16));
    }
    return out;
  };
  const [head = '', tail] = text.split('::');
  const h = groups(head);
  const t = tail === undefined ? [] : groups(tail);
  const all = tail === undefined ? h : [...h, ...new Array(8 - h.length - t.length).fill(0), ...t];
  for (const [i, g] of all.entries()) out.writeUInt16BE(g, 2 * i);
  return out;
}

const MAPPED_PREFIX = Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]);

export interface Cidr {
  v4: boolean;
  addr: Buffer;
  prefix: number;
}

/**
 * A route's trusted peers as the front checks them, following TrustedPeers
 * (tenant-source.ts): IPv4 entries for IPv4 peers, IPv6 entries for IPv6
 * peers, and an IPv6 entry inside ::ffff:0:0/96 (prefix ≥ 96) for IPv4
 * peers too.
 */
export function cidrs(entries: readonly string[]): Cidr[] {
  const out: Cidr[] = [];
  for (const e of entries) {
    const [addr = '', bits] = e.split('/');
    const family = isIP(addr);
    const prefix = bits === undefined ? (family === 4 ? 32 : 128) : Number(bits);
    const bytes = addressBytes(addr);
    if (family === 4) out.push({ v4: true, addr: bytes, prefix });
    else {
      out.push({ v4: false, addr: bytes, prefix });
      if (prefix >= 96 && bytes.subarray(0, 12).equals(MAPPED_PREFIX))
        out.push({ v4: true, addr: bytes, prefix: prefix - 96 });
    }
  }
  return out;
}

/** The rule encoding of the native target scan, when the front can seal under `r`'s request rules itself. */
function sealRules(r: CompiledRoute): Uint8Array | undefined {
  if (r.request.length === 0 || r.response.length > 0 || (r.backend ?? 'native') !== 'native') return undefined;
  // A stringified non-string, or a record id, takes the JavaScript transform.
  if (r.request.some((rule) => rule.nonString === 'stringify' || rule.recordId !== undefined)) return undefined;
  if (r.request.some((rule) => fieldContext(r.policyId, rule, undefined).length > MAX_CONTEXT_BYTES)) return undefined;
  return encodeRules(r.request) ?? undefined;
}

/** The URL's host when it is an IP address (without an IPv6 literal's brackets). */
function ipOf(url: URL): string | undefined {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  return isIP(host) === 0 ? undefined : host;
}

function writeCidr(w: Writer, c: Cidr): void {
  w.u8(c.v4 ? 4 : 6)
    .raw(c.addr)
    .u8(c.prefix);
}

/**
 * Why the native front would not serve `r` itself, or undefined when it
 * would (`kcm gateway --check` prints it per route).
 */
export function notServed(
  r: CompiledRoute,
  url: URL,
  i: Pick<FrontTableInput, 'audit' | 'keyEvents'>,
): string | undefined {
  if (r.response.length > 0) return "response decryption is the pipeline's";
  if (r.request.length > 0) {
    if (i.audit) return 'an audit log records it';
    if (!i.keyEvents) return 'the key layer reports no key events';
    if (sealRules(r) === undefined) return 'its rules need the pipeline (record id, stringify, pkcs11)';
  }
  if (r.tenant.from === 'cert') return 'tenant from a certificate';
  if (url.protocol !== 'http:') return 'upstream not http:';
  if (ipOf(url) === undefined) return 'upstream host is a name, not an address';
  return undefined;
}

function writePattern(w: Writer, p: RoutePattern): void {
  w.list(p.segments, (w, s) => {
    if (s.kind === 'literal') w.u8(0).bytes(s.folded).bytes(s.text);
    else
      w.u8(s.kind === 'param' ? 1 : 2)
        .bytes('')
        .bytes('');
  });
}

/** The first segment of each pattern, lower case; undefined when one starts with a parameter or `*` (it shadows every path). */
function reservedSegments(patterns: readonly string[]): string[] | undefined {
  const out = new Set<string>();
  for (const p of patterns) {
    const first = p.split('/')[1] ?? '';
    if (first === '' || first.startsWith(':') || first === '*') return undefined;
    out.add(first.toLowerCase());
  }
  return [...out];
}

const STATUSES = ['upstream_unavailable', 'upstream_timeout', 'upstream_busy', 'upstream_bad_response'] as const;

/** The table for `i` (see the file comment). */
export function frontTable(i: FrontTableInput): FrontTable {
  const reserved = reservedSegments(i.reserved);
  const list = i.trust.list;
  const serveAny = i.serve && reserved !== undefined && list !== undefined;
  const o = i.upstream;
  const w = new Writer().raw(Buffer.from('KFT1'));
  for (const n of [
    o.connections,
    o.maxQueue,
    o.connectTimeoutMs,
    o.headersTimeoutMs,
    o.bodyTimeoutMs,
    o.keepAliveTimeoutMs,
    o.queueTimeoutMs,
    o.maxResponseBytes,
  ]) {
    w.u32(n);
  }
  // The message as JSON string content: the front writes it between quotes as it is.
  for (const code of STATUSES) w.u16(ERRORS[code].status).bytes(JSON.stringify(ERRORS[code].message).slice(1, -1));
  w.list(reserved ?? [], (w, s) => w.bytes(s));
  w.u8(list?.loopback ? 1 : 0);
  w.list(cidrs(list?.entries ?? []), writeCidr);
  const reasons = Object.entries(STATUS_CODES).filter(([, text]) => text !== undefined) as [string, string][];
  w.list(reasons, (w, [code, text]) => w.u16(Number(code)).bytes(text));
  // Upstreams, one per (name, URL), in route order; each route with the index of its own.
  const upstreams: Upstream[] = [];
  const indexOf = new Map<string, number>();
  const routes = i.policies.routes.map((r) => {
    const url = i.upstreamUrls?.get(r.upstream.name) ?? r.upstream.url;
    const key = `${r.upstream.name}\0${url.href}`;
    let at = indexOf.get(key);
    if (at === undefined) {
      at = upstreams.length;
      indexOf.set(key, at);
      upstreams.push({ name: r.upstream.name, url });
    }
    return { r, at, url };
  });
  w.list(upstreams, (w, upstream) => {
    const { url } = upstream;
    const ip = ipOf(url);
    w.bytes(url.host)
      .raw(ip ? addressBytes(ip) : Buffer.alloc(16))
      .u16(url.port === '' ? 80 : Number(url.port))
      .bytes(url.pathname.replace(/\/+$/, ''))
      .bytes(upstreamLabel(upstream));
  });
  let served = 0;
  w.list(routes, (w, { r, at, url }) => {
    const serve = serveAny && notServed(r, url, i) === undefined;
    if (serve) served++;
    w.u32(i.nameId(proxyRouteName(r)))
      .u8(serve ? 1 : 0)
      .bytes(r.method);
    writePattern(w, r.pattern);
    w.u16(at).u32(r.limits.bodyBytes);
    const t = r.tenant;
    if (t.from === 'header') w.u8(1).bytes(t.header.toLowerCase()).u16(0);
    else if (t.from === 'pathParam') w.u8(2).bytes('').u16(r.pattern.params.indexOf(t.param));
    else w.u8(0).bytes('').u16(0);
    w.list(t.from === 'header' ? cidrs(t.trustedPeers.entries) : [], writeCidr);
    w.u8(r.response.length > 0 ? 1 : 0);
    const rules = serve ? sealRules(r) : undefined;
    if (rules === undefined) w.u8(0);
    else {
      w.u8(1)
        .bytes(rules)
        .list(r.request, (w, rule) => w.bytes(fieldContext(r.policyId, rule, undefined)))
        .bytes(r.keyId)
        .bytes(ENVELOPE_TEXT_HEAD)
        .u32(r.limits.maxDepth)
        .u32(r.limits.maxFields);
    }
  });
  return { bytes: w.done(), served };
}
