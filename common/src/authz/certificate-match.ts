/**
 * How identity files name a client certificate, shared by the Core's
 * identity policy (policy-file.ts, engine.ts) and the gateway's identity file
 * (gateway/src/gateway-identities.ts): exactly one of its CN, one of its URI
 * SANs, or its SHA-256 fingerprint, compared exactly.
 */

import { type FieldFail, strictObject } from '../format/strict-object.ts';

export type MatchKind = 'cn' | 'uri' | 'fingerprint';

export interface CertificateMatch {
  kind: MatchKind;
  value: string;
}

/** The members a `match` object may have. */
export const MATCH_KEYS: readonly MatchKind[] = ['cn', 'uri', 'fingerprint'];

const FINGERPRINT = /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/;

/**
 * The match `v` describes: an object with exactly one of {@link MATCH_KEYS};
 * `fail(field, why)` reports what is wrong with it (`unknownWhy` for a key
 * that is not one of them, in the caller's wording).
 */
export function certificateMatchOf(v: unknown, field: string, fail: FieldFail, unknownWhy?: string): CertificateMatch {
  const m = strictObject(v, field, MATCH_KEYS, fail, unknownWhy);
  const keys = Object.keys(m) as MatchKind[];
  if (keys.length !== 1) fail(field, 'must have exactly one of cn, uri, fingerprint');
  const kind = keys[0] as MatchKind;
  const value = m[kind];
  if (typeof value !== 'string' || value.length === 0 || value.length > 1024) {
    fail(`${field}.${kind}`, 'must be a non-empty string of at most 1024 characters');
  }
  if (kind === 'fingerprint' && !FINGERPRINT.test(value)) {
    fail(`${field}.fingerprint`, 'must be a SHA-256 fingerprint as AB:CD:… (32 upper-case hex pairs)');
  }
  return { kind, value };
}

/** Bindings a document may hold (Core policy files, gateway identity files). */
export const MAX_BINDINGS = 10_000;

/**
 * The document both identity formats share (`{ version: 1, description?,
 * identities: [...] }`): checks the top level, parses each binding with
 * `parseBinding(v, field)`, and refuses a match named twice. `fail` reports
 * in the caller's words (`unknownWhy` for an unknown key); `repeatDetail`
 * adds to the repeat message what the caller shows of the match.
 */
export function bindingsOf<B extends { match: CertificateMatch }>(
  doc: unknown,
  fail: FieldFail,
  parseBinding: (v: unknown, field: string) => B,
  o: { unknownWhy?: string; repeatDetail?: (b: B) => string } = {},
): B[] {
  const d = strictObject(doc, '(top level)', ['version', 'description', 'identities'], fail, o.unknownWhy);
  if (d.version !== 1) fail('version', 'must be 1');
  if (!Array.isArray(d.identities)) fail('identities', 'must be an array');
  if (d.identities.length > MAX_BINDINGS) fail('identities', `has more than ${MAX_BINDINGS} entries`);
  const bindings = d.identities.map((b, i) => parseBinding(b, `identities[${i}]`));
  const seen = new Map<string, number>();
  for (const [i, b] of bindings.entries()) {
    const key = `${b.match.kind}\0${b.match.value}`;
    const first = seen.get(key);
    if (first !== undefined) {
      fail(`identities[${i}].match`, `repeats identities[${first}].match${o.repeatDetail?.(b) ?? ''}`);
    }
    seen.set(key, i);
  }
  return bindings;
}

/** What of a certificate a match can name. */
export interface MatchableCertificate {
  cn: string | null;
  uris: readonly string[];
  fingerprint256: string;
}

/** Bindings indexed by what they match; a certificate's bindings in one lookup per name it has. */
export class CertificateIndex<B extends { match: CertificateMatch }> {
  readonly #byKind: Record<MatchKind, Map<string, B>> = { cn: new Map(), uri: new Map(), fingerprint: new Map() };

  constructor(bindings: readonly B[]) {
    for (const b of bindings) this.#byKind[b.match.kind].set(b.match.value, b);
  }

  /** The bindings naming `cert` (by CN, any URI SAN, or fingerprint), each once. */
  bindingsOf(cert: MatchableCertificate): B[] {
    const out = new Set<B>();
    const byCn = cert.cn === null ? undefined : this.#byKind.cn.get(cert.cn);
    if (byCn) out.add(byCn);
    for (const u of cert.uris) {
      const b = this.#byKind.uri.get(u);
      if (b) out.add(b);
    }
    const byFp = this.#byKind.fingerprint.get(cert.fingerprint256);
    if (byFp) out.add(byFp);
    return [...out];
  }
}
