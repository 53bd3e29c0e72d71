/**
 * Loads the route policy files of a directory at start-up and answers "which
 * route serves this request". Files are `*.routes.json` (other JSON files in
 * policies/, such as authorization maps, are not route policies);
 * `*.routes.example.json` are read only when asked (tests, `kcm dev`).
 */
import { isUtf8 } from 'node:buffer';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { KcmError } from '../../../common/src/errors.ts';
import { compilePolicy } from './policy-schema.ts';
import type { CompiledPolicy, CompiledRoute } from './policy-types.ts';
import { comparePatterns, matchesExactly, matchRoutePattern, patternShape } from './route-pattern.ts';

export const ROUTE_POLICY_SUFFIX = '.routes.json';
export const ROUTE_POLICY_EXAMPLE_SUFFIX = '.routes.example.json';

export interface RouteMatch {
  route: CompiledRoute;
  /** Parameters the path pattern captured (percent-decoded; `*` holds the raw rest). */
  params: Record<string, string>;
}

/** The compiled policies of a gateway, immutable once built. */
export class PolicySet {
  /** Routes, most specific first; a route of an exact method before `*` at equal specificity. */
  readonly routes: readonly CompiledRoute[];

  /**
   * Builds a set; throws KcmError `invalid_policy` for a reused policy id or
   * two routes of one method and shape. `fingerprint`: SHA-256 of the file
   * names and bytes it was compiled from (loadPolicies), so a reload can tell
   * a change from the same bytes ('' when not read from files).
   */
  constructor(
    readonly policies: readonly CompiledPolicy[],
    readonly fingerprint = '',
  ) {
    const problems: string[] = [];
    const ids = new Map<string, string>();
    const shapes = new Map<string, string>();
    for (const p of policies) {
      const prior = ids.get(p.id);
      if (prior) problems.push(`${p.file}: policy id "${p.id}" is already used by ${prior}`);
      ids.set(p.id, p.file);
      for (const r of p.routes) {
        const key = `${r.method} ${patternShape(r.pattern)}`;
        const first = shapes.get(key);
        if (first) problems.push(`${r.source}: ${r.method} ${r.pattern.text} is already routed at ${first}`);
        else shapes.set(key, r.source);
      }
    }
    if (problems.length) throw new KcmError('invalid_policy', problems.join('\n'));
    const all = policies.flatMap((p) => p.routes);
    this.routes = all
      .map((route, order) => ({ route, order }))
      .sort(
        (a, b) =>
          comparePatterns(a.route.pattern, b.route.pattern) ||
          Number(a.route.method === '*') - Number(b.route.method === '*') ||
          a.order - b.order,
      )
      .map((x) => x.route);
  }

  /**
   * The route for a request. `path` is the URL path without the query string,
   * in canonical form (`isCanonicalPath`). Literals match leniently (case,
   * escapes, one trailing slash: route-pattern.ts). When the chosen route
   * does not match `path` as written, an upstream that routes exactly may
   * read it as another route: if the most specific route of a compatible
   * method that `path` spells exactly (as is, or without its one trailing
   * slash) is another route with `request` or `response` rules, the request
   * is refused. A path that spells its route exactly costs one walk of that
   * route's pattern, no second scan of the table.
   * Throws KcmError `not_found` when no pattern matches, `method_not_allowed`
   * when patterns match but none for this method, `bad_request` ("path is
   * ambiguous"; the path is not echoed) for the case above.
   */
  match(method: string, path: string): RouteMatch {
    let pathMatched = false;
    for (const route of this.routes) {
      const params = matchRoutePattern(route.pattern, path);
      if (!params) continue;
      if (route.method !== method && route.method !== '*') {
        pathMatched = true;
        continue;
      }
      if (!matchesExactly(route.pattern, path)) this.#refuseIfAmbiguous(route, method, path);
      return { route, params };
    }
    throw new KcmError(pathMatched ? 'method_not_allowed' : 'not_found');
  }

  /**
   * Throws `bad_request` when an exact reading of `path` (as is; without its
   * one trailing slash, as Spring 5 or Express with `caseSensitive` read it)
   * takes a route with rules other than `chosen`. Only for lenient matches.
   */
  #refuseIfAmbiguous(chosen: CompiledRoute, method: string, path: string): void {
    const n = path.length;
    const trimmed = n > 1 && path.charCodeAt(n - 1) === 0x2f ? path.slice(0, -1) : undefined;
    for (const reading of trimmed === undefined ? [path] : [path, trimmed]) {
      const exact = this.#mostSpecificExact(method, reading);
      if (exact && exact !== chosen && (exact.request.length > 0 || exact.response.length > 0)) {
        throw new KcmError('bad_request', 'path is ambiguous');
      }
    }
  }

  /** The most specific route of `method` (or `*`) whose pattern `path` spells exactly. */
  #mostSpecificExact(method: string, path: string): CompiledRoute | undefined {
    for (const route of this.routes) {
      if ((route.method === method || route.method === '*') && matchesExactly(route.pattern, path)) return route;
    }
    return undefined;
  }
}

/**
 * The text of one policy file. Throws KcmError `invalid_policy` naming the
 * file when it cannot be read (a directory, no permission) or is not UTF-8:
 * decoding would turn bad bytes into U+FFFD, and a selector could then name
 * another field than the one written.
 */
function readPolicyBytes(file: string): Buffer {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (err) {
    throw new KcmError('invalid_policy', `${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  if (!isUtf8(bytes)) throw new KcmError('invalid_policy', `${file}: not valid UTF-8`);
  return bytes;
}

/**
 * Reads and compiles every `*.routes.json` in `dir` (and `*.routes.example.json`
 * when `examples`), in file-name order. Throws KcmError `invalid_policy` with
 * every error of every file (`file:line:column: field.path: reason`; a file
 * that cannot be read, e.g. a directory, or is not UTF-8: `file: reason`), or
 * `invalid_config` when the directory cannot be read or holds no policy.
 */
export function loadPolicies(dir: string, options: { examples?: boolean } = {}): PolicySet {
  let names: string[];
  try {
    names = readdirSync(dir).sort();
  } catch (err) {
    throw new KcmError(
      'invalid_config',
      `cannot read the policy directory ${dir}: ${(err as NodeJS.ErrnoException).code}`,
    );
  }
  const wanted = names.filter(
    (n) => n.endsWith(ROUTE_POLICY_SUFFIX) || (options.examples === true && n.endsWith(ROUTE_POLICY_EXAMPLE_SUFFIX)),
  );
  if (wanted.length === 0) throw new KcmError('invalid_config', `no *${ROUTE_POLICY_SUFFIX} files in ${dir}`);
  const policies: CompiledPolicy[] = [];
  const errors: string[] = [];
  const fingerprint = createHash('sha256');
  for (const name of wanted) {
    const file = join(dir, name);
    try {
      const bytes = readPolicyBytes(file);
      fingerprint.update(`${name}\0${bytes.length}\0`).update(bytes);
      policies.push(compilePolicy(file, bytes.toString('utf8')));
    } catch (err) {
      if (!(err instanceof KcmError) || err.code !== 'invalid_policy') throw err;
      errors.push(err.detail ?? err.message);
    }
  }
  if (errors.length) throw new KcmError('invalid_policy', errors.join('\n'));
  return new PolicySet(policies, fingerprint.digest('hex'));
}
