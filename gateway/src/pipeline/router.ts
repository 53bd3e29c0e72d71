/**
 * Routes: method + path pattern (`/v1/encrypt/:key`) → a named handler with
 * its body needs. Matching splits the path on `/`; `:name` segments capture
 * one non-empty segment. No regular expressions run on request paths.
 *
 * Paths reach a matcher only once the route stage has checked them
 * (`isCanonicalPath`, policy/route-pattern.ts: no dot or empty segment, no
 * `\`, `;`, `%2F`, …). The direct API routes here match exactly
 * (case-sensitive, no trailing slash): they answer locally and forward
 * nothing, so no upstream reading of the path matters. Policy routes match
 * leniently (policy/route-pattern.ts).
 */
import type { RequestContext } from './context.ts';

/**
 * `none`: the body is not read. `json`: read whole (≤ bodyLimit), JSON
 * content type required, parsed into ctx.json. `raw`: read whole (≤
 * bodyLimit, Content-Length first, bytes counted) into ctx.rawBody, with no
 * content-type check and no parse (proxy routes: a passthrough forwards these
 * very bytes).
 */
export type BodyMode = 'none' | 'json' | 'raw';

export interface Route {
  /** Stable name: the metrics label and the audit action. */
  name: string;
  /** Upper-case method, or `*` for any (proxy routes). */
  method: string;
  /** `/segment/:param/…` */
  pattern: string;
  /** `json`: the limits stage reads the whole body (≤ bodyLimit) and parses it into ctx.json. */
  body: BodyMode;
  /** Bytes; defaults to the pipeline's maxBodyBytes. */
  bodyLimit?: number;
  /** True when the route needs an identified caller (the identity stage answers 401 otherwise). */
  auth: boolean;
  /** The audit action of a route that uses keys (e.g. `gateway.decrypt`): each request leaves a record (audit/request-audit.ts). */
  audit?: string;
  /** The route's "upstream": for direct API routes, the local handler; sets ctx.response. */
  handle(ctx: RequestContext): void | Promise<void>;
  /**
   * Runs in the identify stage, after the caller is known and before the
   * body is read: route-specific authorization and tenant resolution (proxy
   * routes set ctx.tenant). Throws a KcmError to refuse.
   */
  authorize?(ctx: RequestContext): void;
  /** The route's own request-transform hook (after the gateway-wide one). */
  requestTransform?(ctx: RequestContext): void | Promise<void>;
  /** The route's own response-transform hook (after the gateway-wide one). */
  responseTransform?(ctx: RequestContext): void | Promise<void>;
}

/** Anything that maps method + path to a route: {@link Router}, or a chain of them. */
export interface RouteMatcher {
  match(method: string, path: string): RouteMatch;
}

interface Compiled {
  route: Route;
  segments: readonly string[];
}

export type RouteMatch =
  | { kind: 'found'; route: Route; params: Record<string, string> }
  | { kind: 'method_not_allowed'; allow: string }
  | { kind: 'not_found' };

/** A fixed set of routes, matched in order. Throws at construction on a malformed pattern. */
export class Router implements RouteMatcher {
  readonly #compiled: Compiled[];

  constructor(routes: readonly Route[]) {
    this.#compiled = routes.map((route) => {
      if (!route.pattern.startsWith('/')) throw new Error(`route ${route.name}: pattern must start with /`);
      return { route, segments: route.pattern.split('/').slice(1) };
    });
  }

  match(method: string, path: string): RouteMatch {
    const parts = path.split('/').slice(1);
    const allowed: string[] = [];
    for (const c of this.#compiled) {
      const params = matchSegments(c.segments, parts);
      if (!params) continue;
      if (c.route.method === method || c.route.method === '*') return { kind: 'found', route: c.route, params };
      allowed.push(c.route.method);
    }
    return allowed.length > 0 ? { kind: 'method_not_allowed', allow: allowed.join(', ') } : { kind: 'not_found' };
  }
}

function matchSegments(pattern: readonly string[], parts: readonly string[]): Record<string, string> | undefined {
  if (pattern.length !== parts.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i] as string;
    const v = parts[i] as string;
    if (p.startsWith(':')) {
      if (v.length === 0) return undefined;
      params[p.slice(1)] = v;
    } else if (p !== v) {
      return undefined;
    }
  }
  return params;
}

/**
 * Tries each matcher in order: the first `found` wins; otherwise a
 * `method_not_allowed` (with the union of allowed methods) beats `not_found`.
 */
export class MatcherChain implements RouteMatcher {
  constructor(private readonly matchers: readonly RouteMatcher[]) {}

  match(method: string, path: string): RouteMatch {
    const allow: string[] = [];
    for (const m of this.matchers) {
      const r = m.match(method, path);
      if (r.kind === 'found') return r;
      if (r.kind === 'method_not_allowed') allow.push(r.allow);
    }
    return allow.length > 0 ? { kind: 'method_not_allowed', allow: allow.join(', ') } : { kind: 'not_found' };
  }
}

/**
 * A matcher whose routes can be replaced while the gateway serves (a policy
 * reload): each match reads the set in force at that moment; a request keeps
 * the route it matched whatever is swapped in after.
 */
export class SwappableMatcher implements RouteMatcher {
  #current: RouteMatcher;

  constructor(initial: RouteMatcher) {
    this.#current = initial;
  }

  match(method: string, path: string): RouteMatch {
    return this.#current.match(method, path);
  }

  swap(next: RouteMatcher): void {
    this.#current = next;
  }
}
