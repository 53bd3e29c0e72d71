/**
 * A small exact router: `METHOD /path/:param`. Unknown paths → 404
 * `not_found`, known paths with another method → 405 `method_not_allowed`.
 * Every route names the permission (`action`) the server authorizes before
 * its handler runs; a route with an unknown action is refused at
 * construction (`invalid_config`), so no route can be reachable unchecked.
 */
import { type Action, isAction } from '../../../common/src/authz/permissions.ts';
import { KcmError } from '../../../common/src/errors.ts';
import type { Identity } from '../../../common/src/tls/identity.ts';

export interface RouteContext {
  body: Record<string, unknown>;
  params: Record<string, string>;
  /** The authenticated and authorized caller (set by the server before the handler runs). */
  identity?: Identity | null;
  /** From traceparent / x-correlation-id, else fresh; echoed as `x-correlation-id`. */
  correlationId?: string;
}

export interface Route {
  method: 'GET' | 'POST' | 'DELETE';
  path: string;
  /** The permission checked for the caller (common/src/authz/permissions.ts). */
  action: Action;
  /**
   * The tenant the request concerns, for tenant-scoped actions; default: the
   * `:tenant` path parameter. Undefined = all tenants (needs tenants "*").
   */
  tenant?: (ctx: { params: Record<string, string> }) => string | undefined;
  /** Returns [status, JSON body]. */
  handler(ctx: RouteContext): Promise<[number, unknown]>;
}

interface Compiled extends Route {
  parts: string[];
}

export class Router {
  readonly #routes: Compiled[];

  /** Throws `invalid_config` naming the route when its action is not a known permission. */
  constructor(routes: Route[]) {
    for (const r of routes) {
      if (!isAction(r.action)) {
        throw new KcmError('invalid_config', `route ${r.method} ${r.path}: unknown action ${String(r.action)}`);
      }
    }
    this.#routes = routes.map((r) => ({ ...r, parts: r.path.split('/') }));
  }

  /** The route table, in match order (method, path, action): for listings and the authorization matrix test. */
  table(): { method: Route['method']; path: string; action: Action }[] {
    return this.#routes.map(({ method, path, action }) => ({ method, path, action }));
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
