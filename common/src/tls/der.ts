/**
 * A minimal DER reader for the X.509 parts node:crypto does not expose: a
 * CRL's fields (RFC 5280 §5.1) and a certificate's issuer, subject and
 * serial number as DER (for exact comparisons with a CRL). Reading only; DER
 * only (indefinite lengths and high tag numbers are refused); every length is
 * checked against the bytes present before slicing. Throws a plain Error
 * whose message says what is malformed; callers wrap it with the file name.
 */

export interface Tlv {
  tag: number;
  /** The whole element (tag, length, content). */
  bytes: Buffer;
  /** The content octets. */
  value: Buffer;
  /** Offset just past the element in the buffer it was read from. */
  end: number;
}

export const TAG = {
  integer: 0x02,
  bitString: 0x03,
  oid: 0x06,
  utcTime: 0x17,
  generalizedTime: 0x18,
  sequence: 0x30,
  set: 0x31,
  context0: 0xa0,
} as const;

/** The element at `at` in `buf`. Throws when truncated or not DER. */
export function readTlv(buf: Buffer, at = 0): Tlv {
  if (at + 2 > buf.length) throw new Error('truncated DER');
  const tag = buf[at] as number;
  if ((tag & 0x1f) === 0x1f) throw new Error('DER high tag numbers are not supported');
  let len = buf[at + 1] as number;
  let p = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    // 0: indefinite length (BER, not DER); over 4 bytes: longer than anything we read.
    if (n === 0 || n > 4) throw new Error('bad DER length');
    if (p + n > buf.length) throw new Error('truncated DER');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + (buf[p + i] as number);
    p += n;
  }
  if (p + len > buf.length) throw new Error('truncated DER');
  return { tag, bytes: buf.subarray(at, p + len), value: buf.subarray(p, p + len), end: p + len };
}

/** The one element that fills `der` exactly, with tag `tag`. */
export function readWhole(der: Buffer, tag: number, what: string): Tlv {
  const t = readTlv(der);
  if (t.tag !== tag || t.end !== der.length) throw new Error(`${what}: not a single DER element`);
  return t;
}

/** The elements of a constructed value (SEQUENCE, SET, [n]). */
export function children(t: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let at = 0; at < t.value.length; ) {
    const c = readTlv(t.value, at);
    out.push(c);
    at = c.end;
  }
  return out;
}

/** `t`, checked to have tag `tag`. */
export function expect(t: Tlv | undefined, tag: number, what: string): Tlv {
  if (t?.tag !== tag) throw new Error(`${what}: missing or wrong type`);
  return t;
}

/** An OBJECT IDENTIFIER as dotted decimal. */
export function oidOf(t: Tlv): string {
  const v = expect(t, TAG.oid, 'OID').value;
  if (v.length === 0) throw new Error('empty OID');
  const arcs: number[] = [];
  let n = 0;
  for (const b of v) {
    n = n * 128 + (b & 0x7f);
    if (n > Number.MAX_SAFE_INTEGER) throw new Error('OID arc too large');
    if ((b & 0x80) === 0) {
      if (arcs.length === 0) arcs.push(n < 80 ? Math.floor(n / 40) : 2, n < 80 ? n % 40 : n - 80);
      else arcs.push(n);
      n = 0;
    }
  }
  if ((v[v.length - 1] as number) & 0x80) throw new Error('truncated OID');
  return arcs.join('.');
}

/** A UTCTime or GeneralizedTime (`…Z`, whole seconds, as RFC 5280 §4.1.2.5 requires). */
export function timeOf(t: Tlv | undefined): Date {
  if (!t) throw new Error('missing time');
  const s = t.value.toString('latin1');
  const m =
    t.tag === TAG.utcTime
      ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s)
      : t.tag === TAG.generalizedTime
        ? /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s)
        : null;
  if (!m) throw new Error('bad time');
  const [y, mo, d, h, mi, se] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  // UTCTime: YY >= 50 is 19YY, else 20YY (RFC 5280 §4.1.2.5.1).
  const year = t.tag === TAG.utcTime ? (y >= 50 ? 1900 + y : 2000 + y) : y;
  return new Date(Date.UTC(year, mo - 1, d, h, mi, se));
}

/** An INTEGER's magnitude as upper-case hex without leading zero bytes (serial numbers). */
export function serialHex(t: Tlv): string {
  const v = expect(t, TAG.integer, 'serial number').value;
  let i = 0;
  while (i < v.length - 1 && v[i] === 0) i++;
  return v.subarray(i).toString('hex').toUpperCase();
}

const ATTRIBUTE_NAMES: Record<string, string> = {
  '2.5.4.3': 'CN',
  '2.5.4.5': 'serialNumber',
  '2.5.4.6': 'C',
  '2.5.4.7': 'L',
  '2.5.4.8': 'ST',
  '2.5.4.10': 'O',
  '2.5.4.11': 'OU',
  '0.9.2342.19200300.100.1.25': 'DC',
};

/** A Name (SEQUENCE OF RDN) for log lines: `CN=x, O=y` (string values decoded; others as #hex). */
export function nameText(name: Tlv): string {
  const parts: string[] = [];
  for (const rdn of children(expect(name, TAG.sequence, 'name'))) {
    for (const atv of children(expect(rdn, TAG.set, 'RDN'))) {
      const [type, value] = children(expect(atv, TAG.sequence, 'attribute'));
      const oid = oidOf(expect(type, TAG.oid, 'attribute type'));
      const v = value as Tlv;
      // UTF8String, PrintableString, IA5String, T61String; BMPString is UTF-16BE.
      const text =
        v.tag === 0x0c || v.tag === 0x13 || v.tag === 0x16 || v.tag === 0x14
          ? v.value.toString(v.tag === 0x0c ? 'utf8' : 'latin1')
          : v.tag === 0x1e
            ? Buffer.from(v.value).swap16().toString('utf16le')
            : `#${v.value.toString('hex')}`;
      parts.push(`${ATTRIBUTE_NAMES[oid] ?? oid}=${text}`);
    }
  }
  return parts.join(', ');
}

/** A certificate's issuer and subject Names and its serial number, from its DER. */
export function certificateNames(der: Buffer): { issuer: Tlv; subject: Tlv; serial: string } {
  const cert = readWhole(der, TAG.sequence, 'certificate');
  const tbs = children(expect(children(cert)[0], TAG.sequence, 'tbsCertificate'));
  // version [0] is optional (v1 certificates omit it).
  const at = tbs[0]?.tag === TAG.context0 ? 1 : 0;
  return {
    serial: serialHex(expect(tbs[at], TAG.integer, 'serial number')),
    issuer: expect(tbs[at + 2], TAG.sequence, 'issuer'),
    subject: expect(tbs[at + 4], TAG.sequence, 'subject'),
  };
}
