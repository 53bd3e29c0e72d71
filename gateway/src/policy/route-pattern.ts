/**
 * Route path patterns: `/orders`, `/orders/:id`, `/t/:tenant/files/*`.
 *
 * A pattern is `/`-separated segments: literal text, `:name` (one non-empty
 * segment, percent-decoded, captured as `name`), or a final `*` (zero or more
 * remaining segments, captured raw as `*`). Matching is on the path only (no
 * query string) and case-sensitive. When several patterns match, the more
 * specific wins ({@link comparePatterns}).
 */

export type PatternSegment = { kind: 'literal'; text: string } | { kind: 'param'; name: string } | { kind: 'rest' };

export interface RoutePattern {
  readonly text: string;
  readonly segments: readonly PatternSegment[];
  readonly params: readonly string[];
}

/** Most segments a pattern may have. */
export const MAX_PATTERN_SEGMENTS = 32;

const PARAM = /^:([A-Za-z_][A-Za-z0-9_]*)$/;
const LITERAL = /^[A-Za-z0-9._~!$&'()+,;=@%-]+$/;

/** Parses a pattern; throws Error with a reason for anything malformed. */
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
    segments.push({ kind: 'literal', text: seg });
  });
  return { text, segments, params };
}

/**
 * Matches a request path (no query string) against a pattern. Returns the
 * captured parameters, or undefined when the path does not match or a
 * parameter is not valid percent-encoding.
 */
export function matchRoutePattern(pattern: RoutePattern, path: string): Record<string, string> | undefined {
  if (!path.startsWith('/')) return undefined;
  const parts = path === '/' ? [] : path.slice(1).split('/');
  const params: Record<string, string> = Object.create(null);
  const segs = pattern.segments;
  for (let i = 0; i < segs.length; i++) {
    const seg = segs[i] as PatternSegment;
    if (seg.kind === 'rest') {
      params['*'] = parts.slice(i).join('/');
      return params;
    }
    const part = parts[i];
    if (part === undefined) return undefined;
    if (seg.kind === 'literal') {
      if (part !== seg.text) return undefined;
    } else {
      if (part === '') return undefined;
      try {
        params[seg.name] = decodeURIComponent(part);
      } catch {
        return undefined;
      }
    }
  }
  return parts.length === segs.length ? params : undefined;
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

/** The shape of a pattern with parameter names erased: two patterns of one shape match the same paths. */
export function patternShape(p: RoutePattern): string {
  return `/${p.segments.map((s) => (s.kind === 'literal' ? s.text : s.kind === 'param' ? ':' : '*')).join('/')}`;
}
