/**
 * Field selectors: a small, bounded subset of JSONPath.
 *
 *   $.card.number            member "card", then member "number"
 *   $.items[*].card.number   every element of the array "items", then …
 *   $["odd key"][*]          a member whose name is not an identifier (JSON string syntax)
 *
 * A name segment matches only an own member of an object; `[*]` matches only
 * the elements of an array. There are no indices, slices, filters or
 * recursive descent: a selector names a set of places by shape alone, so two
 * selectors select the same place exactly when their segment lists are equal,
 * and one selects inside the other exactly when its list is a prefix
 * ({@link selectorsOverlap}). The root itself (`$`) is not selectable.
 */

export type SelectorSegment = { kind: 'member'; name: string } | { kind: 'each' };

export interface Selector {
  /** Canonical text (what {@link formatSelector} prints), stable across spellings. */
  readonly text: string;
  readonly segments: readonly SelectorSegment[];
}

/** Most segments a selector may have (bounds the walk and the AAD context). */
export const MAX_SELECTOR_SEGMENTS = 32;
/** Longest selector text accepted. */
export const MAX_SELECTOR_CHARS = 512;

const IDENT = /^[A-Za-z_$][A-Za-z0-9_$-]*/;

/** A selector syntax error: `reason` names the offset, never more of the input than the selector itself. */
export class SelectorSyntaxError extends Error {}

/**
 * Parses selector text. Throws {@link SelectorSyntaxError} for anything but
 * `$` followed by 1–32 `.name`, `["name"]` or `[*]` segments.
 */
export function parseSelector(text: string): Selector {
  if (text.length > MAX_SELECTOR_CHARS) throw new SelectorSyntaxError(`longer than ${MAX_SELECTOR_CHARS} characters`);
  if (!text.startsWith('$')) throw new SelectorSyntaxError('must start with "$"');
  const segments: SelectorSegment[] = [];
  let i = 1;
  while (i < text.length) {
    if (segments.length === MAX_SELECTOR_SEGMENTS) {
      throw new SelectorSyntaxError(`more than ${MAX_SELECTOR_SEGMENTS} segments`);
    }
    if (text[i] === '.') {
      const m = IDENT.exec(text.slice(i + 1));
      if (!m) throw new SelectorSyntaxError(`expected a name after "." at offset ${i}`);
      segments.push({ kind: 'member', name: m[0] });
      i += 1 + m[0].length;
    } else if (text.startsWith('[*]', i)) {
      segments.push({ kind: 'each' });
      i += 3;
    } else if (text.startsWith('["', i)) {
      const end = closingQuote(text, i + 2);
      if (end < 0 || text[end + 1] !== ']') throw new SelectorSyntaxError(`unterminated ["…"] at offset ${i}`);
      let name: string;
      try {
        name = JSON.parse(text.slice(i + 1, end + 1)) as string;
      } catch {
        throw new SelectorSyntaxError(`bad escape in ["…"] at offset ${i}`);
      }
      segments.push({ kind: 'member', name });
      i = end + 2;
    } else {
      throw new SelectorSyntaxError(`expected ".name", ["name"] or [*] at offset ${i}`);
    }
  }
  if (segments.length === 0) throw new SelectorSyntaxError('selects the whole document; name a field');
  return { text: formatSegments(segments), segments };
}

/** Index of the `"` that closes a JSON string whose body starts at `from`, or -1. */
function closingQuote(text: string, from: number): number {
  for (let i = from; i < text.length; i++) {
    if (text[i] === '\\') i++;
    else if (text[i] === '"') return i;
  }
  return -1;
}

/** Canonical text of segments: `.name` for identifiers, `["…"]` otherwise. */
export function formatSegments(segments: readonly SelectorSegment[]): string {
  let out = '$';
  for (const s of segments) {
    if (s.kind === 'each') out += '[*]';
    else if (IDENT.exec(s.name)?.[0] === s.name) out += `.${s.name}`;
    else out += `[${JSON.stringify(s.name)}]`;
  }
  return out;
}

function sameSegment(a: SelectorSegment, b: SelectorSegment): boolean {
  return a.kind === b.kind && (a.kind === 'each' || a.name === (b as { name: string }).name);
}

/** True when `prefix`'s segments begin `s`'s (equal selectors included). */
export function isPrefixOf(prefix: Selector, s: Selector): boolean {
  if (prefix.segments.length > s.segments.length) return false;
  return prefix.segments.every((seg, i) => sameSegment(seg, s.segments[i] as SelectorSegment));
}

/** True when the two can select the same value or one value inside the other. */
export function selectorsOverlap(a: Selector, b: Selector): boolean {
  return isPrefixOf(a, b) || isPrefixOf(b, a);
}

/** Number of `[*]` segments. */
export function wildcardCount(s: Selector): number {
  return s.segments.reduce((n, seg) => n + (seg.kind === 'each' ? 1 : 0), 0);
}
