/**
 * Route path patterns (`/orders`, `/orders/:id`, `/t/:tenant/files/*`) and
 * the form a request path must have before any route is matched.
 *
 * A pattern is `/`-separated segments: literal text, `:name` (one non-empty
 * segment, percent-decoded, captured as `name`), or a final `*` (zero or more
 * remaining segments, captured raw as `*`). Matching is on the path only (no
 * query string). When several patterns match, the more specific wins
 * ({@link comparePatterns}).
 *
 * Why paths are checked and literals matched leniently: the gateway forwards
 * the path the client sent, and upstreams normalise a path before routing it
 * (WHATWG URL resolves dot segments, `%2e` and `\`; Express ignores case and
 * a trailing slash; Go's ServeMux routes on the percent-decoded path; Tomcat
 * and Spring strip `;params`). A spelling that missed the route with field
 * rules but reached the upstream's handler of that route would carry the
 * fields in clear. So the route stage refuses the spellings that no
 * comparison can make safe ({@link isCanonicalPath}: 400 `bad_request`),
 * and a literal segment matches ASCII case-insensitively and after
 * percent-decoding, with one trailing slash ignored: `/Orders`, `/%6Frders`
 * and `/orders/` all match `/orders`. The forwarded path is never rewritten.
 * No regular expression runs on a request path, and a path is not copied
 * unless a route with captures matches it.
 */

export type PatternSegment =
  | { kind: 'literal'; text: string; folded: string }
  | { kind: 'param'; name: string }
  | { kind: 'rest' };

export interface RoutePattern {
  readonly text: string;
  readonly segments: readonly PatternSegment[];
  readonly params: readonly string[];
}

/** Most segments a pattern may have. */
export const MAX_PATTERN_SEGMENTS = 32;

const PARAM = /^:([A-Za-z_][A-Za-z0-9_]*)$/;
const LITERAL = /^[A-Za-z0-9._~!$&'()+,;=@%-]+$/;

const SLASH = 0x2f;
const BACKSLASH = 0x5c;
const PERCENT = 0x25;
const DOT = 0x2e;
const SEMICOLON = 0x3b;
const HASH = 0x23;

function hexDigit(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const l = c | 0x20;
  return l >= 0x61 && l <= 0x66 ? l - 0x57 : -1;
}

/** The byte `%XX` at `s[i]`, `s[i + 1]` spells, or -1 (past the end included: NaN is no digit). */
function hexByte(s: string, i: number): number {
  const h = hexDigit(s.charCodeAt(i));
  const l = hexDigit(s.charCodeAt(i + 1));
  return h < 0 || l < 0 ? -1 : (h << 4) | l;
}

const lower = (c: number): number => (c >= 0x41 && c <= 0x5a ? c | 0x20 : c);

/** A segment that is `.` or `..` once decoded: `units` decoded characters, `dots` of them dots. */
const isDotSegment = (units: number, dots: number): boolean => units > 0 && units <= 2 && dots === units;

/**
 * Whether a request path (no query string) is in the canonical form the
 * route stage accepts. Refused: anything not starting with `/`; a raw
 * control character, space, DEL or non-ASCII character; a raw `\`, `;`
 * (matrix parameters) or `#`; an empty segment (`//`, `/a//b`); a dot
 * segment (`.` or `..`, raw or with `%2e`); malformed percent-encoding; `%2F`,
 * `%5C`, `%3B`, or the escape of a control character (`%00`–`%1F`, `%7F`);
 * escapes of bytes ≥ 0x80 that do not form UTF-8 (`%FF`: a `:param` could
 * not capture it, so the path would fall through to a less specific route
 * that an upstream decoding it differently would not take); a double-encoded
 * escape, `%25` followed by two hex digits (`/ord%2565rs`: an upstream that
 * decodes twice reads `/orders`, a route with rules the gateway did not
 * match). One trailing slash is allowed. One scan, no allocation unless a
 * ≥ 0x80 escape is there.
 */
export function isCanonicalPath(path: string): boolean {
  const n = path.length;
  if (n === 0 || path.charCodeAt(0) !== SLASH) return false;
  let units = 0;
  let dots = 0;
  let high = false;
  for (let i = 1; i < n; i++) {
    let c = path.charCodeAt(i);
    if (c === SLASH) {
      if (units === 0 || isDotSegment(units, dots)) return false;
      units = 0;
      dots = 0;
      continue;
    }
    if (c === PERCENT) {
      c = hexByte(path, i + 1); // -1 when malformed
      if (c < 0x20 || c === 0x7f || c === SLASH || c === BACKSLASH || c === SEMICOLON) return false;
      if (c === PERCENT && hexByte(path, i + 3) >= 0) return false;
      if (c >= 0x80) high = true;
      i += 2;
    } else if (c <= 0x20 || c >= 0x7f || c === BACKSLASH || c === SEMICOLON || c === HASH) {
      return false;
    }
    units++;
    if (c === DOT) dots++;
  }
  if (isDotSegment(units, dots)) return false;
  if (high) {
    try {
      decodeURIComponent(path);
    } catch {
      return false;
    }
  }
  return true;
}

/**
 * The comparison form of a literal: `%XX` of an ASCII byte other than `%` is
 * decoded, other escapes are kept with lower-case hex, ASCII letters are
 * lower-cased. The pattern's literal must be valid percent-encoding.
 */
function foldLiteral(text: string): string {
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const b = c === PERCENT ? hexByte(text, i + 1) : -1;
    if (b >= 0 && b < 0x80 && b !== PERCENT) {
      out += String.fromCharCode(lower(b));
      i += 2;
    } else {
      out += String.fromCharCode(lower(c));
    }
  }
  return out;
}

/**
 * Whether `path[start, end)` spells the folded literal `lit` ({@link foldLiteral}
 * applied on the fly; no allocation).
 */
function literalMatches(lit: string, path: string, start: number, end: number): boolean {
  if (end - start < lit.length) return false;
  let k = 0;
  for (let j = start; j < end; k++) {
    let c = path.charCodeAt(j);
    if (c === PERCENT) {
      const b = hexByte(path, j + 1);
      if (b < 0) return false;
      if (b >= 0x80 || b === PERCENT) {
        // Kept escaped: `%` and two lower-case hex digits.
        if (lit.charCodeAt(k) !== PERCENT) return false;
        if (lit.charCodeAt(k + 1) !== lower(path.charCodeAt(j + 1))) return false;
        if (lit.charCodeAt(k + 2) !== lower(path.charCodeAt(j + 2))) return false;
        j += 3;
        k += 2;
        continue;
      }
      c = b;
      j += 3;
    } else {
      j++;
    }
    if (lit.charCodeAt(k) !== lower(c)) return false;
  }
  return k === lit.length;
}

/** Parses a pattern; throws Error with a reason for anything malformed or that no checked path could match. */
export function parseRoutePattern(text: string): RoutePattern {
  if (!text.startsWith('/')) throw new Error('must start with "/"');
  const raw = text === '/' ? [] : text.slice(1).split('/');
  if (raw.length > MAX_PATTERN_SEGMENTS) throw new Error(`more than ${MAX_PATTERN_SEGMENTS} segments`);
  const segments: PatternSegment[] = [];
  const params: string[] = [];
  raw.forEach((seg, i) => {
    if (seg === '*') {
      if (i !== raw.length - 1) throw new Error('"*" may only be the last segment');
      segments.push({ kind: 'rest' });
      return;
    }
    const p = PARAM.exec(seg);
    if (p) {
      const name = p[1] as string;
      if (params.includes(name)) throw new Error(`parameter :${name} appears twice`);
      params.push(name);
      segments.push({ kind: 'param', name });
      return;
    }
    if (!LITERAL.test(seg)) throw new Error(`segment ${i + 1} is empty or has characters a path cannot hold`);
    if (!isCanonicalPath(`/${seg}`)) {
      throw new Error(
        `segment ${i + 1} can never match: request paths with a dot segment, ";" or a bad or forbidden percent-escape are refused`,
      );
    }
    segments.push({ kind: 'literal', text: seg, folded: foldLiteral(seg) });
  });
  return { text, segments, params };
}

/**
 * Walks `path` along `pattern`. Literals match folded (case-insensitive,
 * percent-decoded) unless `exact`; one trailing slash is ignored unless
 * `exact`. With `params`, fills it with the captures; false when a `:param`
 * is not valid percent-encoded UTF-8.
 */
function walk(pattern: RoutePattern, path: string, exact: boolean, params?: Record<string, string>): boolean {
  const n = path.length;
  if (path.charCodeAt(0) !== SLASH) return false;
  // `/a/` is `/a`; `/a//` keeps its empty segments (and the route stage refuses it).
  const end = !exact && n > 2 && path.charCodeAt(n - 1) === SLASH && path.charCodeAt(n - 2) !== SLASH ? n - 1 : n;
  let at = end > 1 ? 1 : -1; // start of the next segment; -1 when none is left
  const segs = pattern.segments;
  for (let i = 0; i < segs.length; i++) {
    const seg = segs[i] as PatternSegment;
    if (seg.kind === 'rest') {
      if (params) params['*'] = at < 0 ? '' : path.slice(at);
      return true;
    }
    if (at < 0) return false;
    let stop = path.indexOf('/', at);
    if (stop < 0 || stop > end) stop = end;
    if (seg.kind === 'literal') {
      const same = exact
        ? stop - at === seg.text.length && path.startsWith(seg.text, at)
        : literalMatches(seg.folded, path, at, stop);
      if (!same) return false;
    } else {
      if (stop === at) return false;
      if (params) {
        try {
          params[seg.name] = decodeURIComponent(path.slice(at, stop));
        } catch {
          return false;
        }
      }
    }
    at = stop < end ? stop + 1 : -1;
  }
  return at < 0;
}

/**
 * Matches a request path (no query string) against a pattern: literal
 * segments ASCII case-insensitively and after percent-decoding, one trailing
 * slash ignored. Returns the captured parameters (`:name` percent-decoded,
 * `*` raw), or undefined when the path does not match or a parameter is not
 * valid percent-encoding. Allocates nothing unless the path matches. Meant
 * for paths {@link isCanonicalPath} accepted.
 */
export function matchRoutePattern(pattern: RoutePattern, path: string): Record<string, string> | undefined {
  if (!walk(pattern, path, false)) return undefined;
  const params: Record<string, string> = Object.create(null);
  if (pattern.params.length === 0 && pattern.segments.at(-1)?.kind !== 'rest') return params;
  return walk(pattern, path, false, params) ? params : undefined;
}

/**
 * Whether `path` spells `pattern` as written: literals byte for byte, no
 * trailing slash; the reading of an upstream that normalises nothing. When
 * {@link matchRoutePattern} picks a route for a path that this does not
 * match, such an upstream may read the path as a less specific route (say
 * `/orders/new` vs `/orders/:id` for `/orders/NEW`): the route table can
 * compare the two choices.
 */
export function matchesExactly(pattern: RoutePattern, path: string): boolean {
  return walk(pattern, path, true);
}

const RANK = { literal: 0, param: 1, end: 2, rest: 3 } as const;

function rankAt(p: RoutePattern, i: number): number {
  const seg = p.segments[i];
  return seg === undefined ? RANK.end : RANK[seg.kind];
}

/**
 * Orders patterns most specific first (negative when `a` is more specific than
 * `b`): at the first index where they differ, literal < `:param` < end of
 * pattern < `*`, so `/a` beats `/a/*` for the path `/a`.
 */
export function comparePatterns(a: RoutePattern, b: RoutePattern): number {
  const n = Math.max(a.segments.length, b.segments.length);
  for (let i = 0; i < n; i++) {
    const d = rankAt(a, i) - rankAt(b, i);
    if (d !== 0) return d;
  }
  return 0;
}

/**
 * The shape of a pattern with parameter names erased and literals folded as
 * matching compares them: two patterns of one shape (`/Orders/:a`,
 * `/orders/:b`, `/%6Frders/:c`) match the same paths.
 */
export function patternShape(p: RoutePattern): string {
  return `/${p.segments.map((s) => (s.kind === 'literal' ? s.folded : s.kind === 'param' ? ':' : '*')).join('/')}`;
}
