/**
 * Who is calling: the identity in a verified client certificate (ADR-401).
 * The authorization engine (common/src/authz/) matches policies against it by
 * exact CN, URI SAN or SHA-256 fingerprint. Only {@link identityOf} and the
 * development loopback identity make these objects; neither carries keys.
 */
import type { X509Certificate } from 'node:crypto';

export interface Identity {
  /** `certificate`: a verified client certificate; `dev-loopback`: plain HTTP on loopback in development mode. */
  source: 'certificate' | 'dev-loopback';
  /** The subject's last CN, or null when it has none. */
  cn: string | null;
  /** The whole subject as Node prints it (`CN=…`, one RDN per line). */
  subject: string;
  issuer: string;
  uris: string[];
  dnsNames: string[];
  emails: string[];
  /** `AB:CD:…` (Node's X509Certificate.fingerprint256); empty for dev-loopback. */
  fingerprint256: string;
}

/** One `type:value` list as Node prints subjectAltName; values with special characters come JSON-quoted. */
function splitNameList(text: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  let i = 0;
  while (i < text.length) {
    const colon = text.indexOf(':', i);
    if (colon < 0) break;
    const type = text.slice(i, colon).trim();
    let value: string;
    let next: number;
    if (text[colon + 1] === '"') {
      // JSON string: find the closing quote that is not escaped.
      let j = colon + 2;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      value = JSON.parse(text.slice(colon + 1, j + 1)) as string;
      next = text.indexOf(',', j + 1);
    } else {
      next = text.indexOf(',', colon + 1);
      value = text.slice(colon + 1, next < 0 ? undefined : next);
    }
    out.push([type, value]);
    if (next < 0) break;
    i = next + 1;
  }
  return out;
}

/** The last `CN=` of a subject as Node prints it (one `key=value` per line, special values JSON-quoted). */
function commonName(subject: string): string | null {
  let cn: string | null = null;
  for (const line of subject.split('\n')) {
    if (!line.startsWith('CN=')) continue;
    const v = line.slice(3);
    cn = v.startsWith('"') ? (JSON.parse(v) as string) : v;
  }
  return cn;
}

/** The identity in a certificate (whose chain and validity the caller already checked). */
export function identityOf(cert: X509Certificate): Identity {
  const sans = cert.subjectAltName ? splitNameList(cert.subjectAltName) : [];
  const of = (t: string) => sans.filter(([type]) => type === t).map(([, v]) => v);
  return {
    source: 'certificate',
    cn: commonName(cert.subject),
    subject: cert.subject,
    issuer: cert.issuer,
    uris: of('URI'),
    dnsNames: of('DNS'),
    emails: of('email'),
    fingerprint256: cert.fingerprint256,
  };
}

/** The development-mode caller on a plain loopback listener (never produced when TLS is configured). */
export const DEV_LOOPBACK_IDENTITY: Identity = Object.freeze({
  source: 'dev-loopback',
  cn: 'local-operator',
  subject: 'CN=local-operator',
  issuer: '',
  uris: Object.freeze([]) as unknown as string[],
  dnsNames: Object.freeze([]) as unknown as string[],
  emails: Object.freeze([]) as unknown as string[],
  fingerprint256: '',
});

/** A short name for logs and audit records: CN, else first URI, else fingerprint. */
export function describeIdentity(id: Identity | null): string {
  if (!id) return 'anonymous';
  return id.cn ?? id.uris[0] ?? id.fingerprint256;
}
