/**
 * Writes a new body by replacing byte spans of a scanned JSON body
 * (json-scan.ts) with new JSON text, copying every other byte as it was.
 */

/**
 * Replace body bytes `[start, end)` (one whole JSON value) with `text`: one
 * JSON value, as a string (written as UTF-8) or as UTF-8 bytes (copied).
 */
export interface JsonEdit {
  start: number;
  end: number;
  text: string | Uint8Array;
}

/**
 * The body with every edit applied. Edits must not overlap (the selectors of
 * one direction never do, see policy/field-rule-schema.ts); they may come in
 * any order. One allocation of the exact output size.
 */
export function spliceJson(body: Uint8Array, edits: JsonEdit[]): Buffer {
  edits.sort((a, b) => a.start - b.start);
  let size = body.length;
  for (const e of edits) {
    size += (typeof e.text === 'string' ? Buffer.byteLength(e.text, 'utf8') : e.text.length) - (e.end - e.start);
  }
  const out = Buffer.allocUnsafe(size);
  let from = 0;
  let at = 0;
  for (const e of edits) {
    if (e.start < from) throw new RangeError('overlapping JSON edits');
    out.set(body.subarray(from, e.start), at);
    at += e.start - from;
    if (typeof e.text === 'string') at += out.write(e.text, at, 'utf8');
    else {
      out.set(e.text, at);
      at += e.text.length;
    }
    from = e.end;
  }
  out.set(body.subarray(from), at);
  return out;
}

const SHORT_ESCAPE: Record<number, number> = { 8: 0x62, 9: 0x74, 10: 0x6e, 12: 0x66, 13: 0x72 };
const HEX_DIGITS = '0123456789abcdef';

/**
 * The JSON string literal of the string whose UTF-8 is `utf8` (which must be
 * valid UTF-8), as bytes: what `JSON.stringify` writes for it (`"` and `\`
 * escaped, control characters as `\b \t \n \f \r` or `\u00XX`, every other
 * byte as it is), without ever making a JavaScript string of the value, so
 * the caller can zero the result.
 */
export function jsonStringBytes(utf8: Uint8Array): Buffer {
  const n = utf8.length;
  let size = n + 2;
  for (let k = 0; k < n; k++) {
    const c = utf8[k] as number;
    if (c === 0x22 || c === 0x5c) size += 1;
    else if (c < 0x20) size += SHORT_ESCAPE[c] === undefined ? 5 : 1;
  }
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  out[at++] = 0x22;
  for (let k = 0; k < n; k++) {
    const c = utf8[k] as number;
    if (c === 0x22 || c === 0x5c) {
      out[at++] = 0x5c;
      out[at++] = c;
    } else if (c < 0x20) {
      out[at++] = 0x5c;
      const short = SHORT_ESCAPE[c];
      if (short !== undefined) out[at++] = short;
      else {
        out[at++] = 0x75; // \u00XX
        out[at++] = 0x30;
        out[at++] = 0x30;
        out[at++] = HEX_DIGITS.charCodeAt(c >> 4);
        out[at++] = HEX_DIGITS.charCodeAt(c & 0xf);
      }
    } else out[at++] = c;
  }
  out[at] = 0x22;
  return out;
}
