/**
 * The values a direction's rules select in a body, found by the native
 * module in one pass (native/src/json_targets.rs): the scan of json-scan.ts
 * and the walk of field-targets.ts for the common case. The native pass
 * answers exactly what the JavaScript pair would, or declines; it declines on
 * every error (malformed, too deep, a repeated or case-variant member on a
 * selected path, a required field absent, a wrong shape, too many fields) and
 * on member names it would have to decode (escaped, or not ASCII, in an
 * object the rules step into). After a decline the caller scans in
 * JavaScript, which gives every answer and every error: the JavaScript
 * scanner stays the reference, and a property test holds the two to the same
 * targets.
 *
 * Rules that bind a record id read from the body (`recordId.select`) are
 * never sent: their transform needs the JavaScript skeleton.
 */
import { hasLoneSurrogate } from '../../../common/src/format/unicode.ts';
import { type JsonTargetsRules, nativeJsonTargets } from '../../../native/index.ts';
import type { BodyLimits, FieldRule } from '../policy/policy-types.ts';
import { asciiFold } from './json-scan.ts';

/** Target types (the low 3 bits of a target's flags). */
export const TARGET_STRING = 3;
/** Flag of a string holding a backslash escape. */
export const TARGET_ESCAPED = 8;

/** Each rule list's compiled native rules (made once), or null for a list the pass does not take. */
const compiled = new WeakMap<readonly FieldRule[], JsonTargetsRules | null>();

/**
 * The rules in the native pass's encoding (src/json_targets.rs); null for
 * rules it does not take (a record id read from the body, a name without a
 * UTF-8 form, or sizes past the encoding's fields).
 */
export function encodeRules(rules: readonly FieldRule[]): Uint8Array | null {
  if (rules.length === 0 || rules.length > 0xffff) return null;
  const parts: number[] = [rules.length & 0xff, rules.length >> 8];
  const u16 = (n: number) => parts.push(n & 0xff, n >> 8);
  for (const rule of rules) {
    const segments = rule.selector.segments;
    if (rule.recordId?.from === 'selector' || segments.length === 0 || segments.length > 255) return null;
    parts.push(rule.onMissing === 'error' ? 1 : 0, segments.length);
    for (const seg of segments) {
      if (seg.kind === 'each') {
        parts.push(1);
        continue;
      }
      if (hasLoneSurrogate(seg.name)) return null;
      const name = Buffer.from(seg.name, 'utf8');
      if (name.length >= 0xffff) return null;
      parts.push(0);
      u16(name.length);
      parts.push(...name);
      const fold = asciiFold(seg.name);
      if (fold !== undefined && fold.length < 0xffff) {
        u16(fold.length);
        parts.push(...Buffer.from(fold, 'latin1'));
      } else u16(0xffff);
    }
  }
  return Uint8Array.from(parts);
}

/**
 * The targets of `rules` in `body` (valid UTF-8, already within the size
 * limit): 4 numbers each (rule index, value start, value end, flags), in
 * collectTargets' order; undefined when the native pass cannot be had or is
 * not wanted (native/index.ts nativeJsonTargets), the rules are not taken, or
 * the pass declines.
 */
export function nativeTargets(
  body: Uint8Array,
  rules: readonly FieldRule[],
  limits: BodyLimits,
): Uint32Array | undefined {
  const native = nativeJsonTargets();
  if (native === undefined) return undefined;
  let handle = compiled.get(rules);
  if (handle === undefined) {
    const encoded = encodeRules(rules);
    handle = encoded === null ? null : native.jsonTargetsRules(encoded);
    compiled.set(rules, handle);
  }
  if (handle === null) return undefined;
  const out = native.jsonTargets(body, handle, limits.maxDepth, limits.maxFields);
  if (out === null) return undefined;
  if (out.byteOffset % 4 !== 0) return new Uint32Array(new Uint8Array(out).buffer);
  return new Uint32Array(out.buffer, out.byteOffset, out.length / 4);
}
