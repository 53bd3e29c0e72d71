/**
 * A small exact router: `METHOD /path/:param`. Unknown paths → 404
 * `not_found`, known paths with another method → 405 `method_not_allowed`.
 */
import { KcmError } from '../../../common/src/errors.ts';

export interface RouteContext {
  body: Record<string, unknown>;
  params: Record<string, string>;
}

export interface Route {
  method: 'GET' | 'POST' | 'DELETE';
  path: string;
  /** Returns [status, JSON body]. */
  handler(ctx: RouteContext): Promise<[number, unknown]>;
}

interface Compiled extends Route {
  parts: string[];
}

export class Router {
  readonly #routes: Compiled[];

  constructor(routes: Route[]) {
    this.#routes = routes.map((r) => ({ ...r, parts: r.path.split('/') }));
  }

  /** Finds the route; throws `not_found` / `method_not_allowed`. */
  match(method: string, path: string): { route: Route; params: Record<string, string> } {
    const parts = path.split('/');
    let pathKnown = false;
    for (const r of this.#routes) {
      if (r.parts.length !== parts.length) continue;
      const params: Record<string, string> = {};
      const ok = r.parts.every((p, i) => {
        const actual = parts[i] as string;
        if (p.startsWith(':')) {
          try {
            params[p.slice(1)] = decodeURIComponent(actual);
          } catch {
            throw new KcmError('bad_request', 'malformed percent-encoding in the path');
          }
          return actual.length > 0;
        }
        return p === actual;
      });
      if (!ok) continue;
      pathKnown = true;
      if (r.method === method) return { route: r, params };
    }
    throw new KcmError(pathKnown ? 'method_not_allowed' : 'not_found', `${method} ${path}`);
  }
}
