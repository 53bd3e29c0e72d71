/**
 * The JSON string literal of a UTF-8 value as bytes, never as a JavaScript
 * string (so the caller can zero it): what the native module's
 * dataKeyOpenSplice writes for each plaintext (src/open_splice.rs), and what
 * the gateway's response transform writes on its general path.
 */

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
