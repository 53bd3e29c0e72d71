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
