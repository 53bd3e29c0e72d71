/**
 * Policy reload while the gateway serves (docs/gateway.md "Reloading
 * policies"): the policy directory is read, compiled and checked again as
 * at start (JSON, schema, duplicate routes, a `pkcs11` route without `hsm`),
 * then the proxy's routes are replaced at once
 * (GatewayServer.reloadPolicies): new requests match the new set, requests in
 * flight keep the route they matched. A set that fails is refused as a
 * whole, its errors logged naming file, line and field, and the set in force
 * stays. An `upstreams.urls` name no route uses any more is a warning here
 * (the gateway config is not reloaded). Triggers: a change to a policy file
 * of the directory (watched, debounced; files whose bytes are those of the
 * set in force are not applied again) and {@link PolicyReloader.reload}
 * (`kcm gateway` calls it on SIGHUP). Applied and refused reloads are counted
 * in `okcm_gateway_policy_reloads_total{outcome}`.
 */
import { KcmError } from '../../../common/src/errors.ts';
import { type FileWatch, watchDirectory } from '../../../common/src/tls/watch-files.ts';
import type { GatewayServer } from '../gateway-server.ts';
import { loadPolicies, type PolicySet, ROUTE_POLICY_EXAMPLE_SUFFIX, ROUTE_POLICY_SUFFIX } from './policy-loader.ts';

export interface PolicyReloadOptions {
  dir: string;
  /** Read `*.routes.example.json` too (as at start). */
  examples: boolean;
  server: GatewayServer;
  /** The set the server was started with (its fingerprint names the bytes in force). */
  inForce: PolicySet;
  log: (msg: string) => void;
}

/** Quiet time after the last change before a reload (editors write in several steps). */
const DEBOUNCE_MS = 200;

export class PolicyReloader {
  readonly #o: PolicyReloadOptions;
  /** Fingerprint (policy-loader.ts) of the files the set in force was compiled from. */
  #fingerprint: string;
  #watch: FileWatch | undefined;

  constructor(o: PolicyReloadOptions) {
    this.#o = o;
    this.#fingerprint = o.inForce.fingerprint;
  }

  /**
   * Reads the directory again and applies it (see the file comment); true when
   * a new set is in force. With `onlyIfChanged`, files whose bytes are those
   * of the set in force are not applied again (false, nothing logged).
   */
  reload(reason: string, onlyIfChanged = false): boolean {
    const { server, log } = this.#o;
    let set: PolicySet;
    let applied: { routes: number; unusedUpstreams: readonly string[] };
    try {
      set = loadPolicies(this.#o.dir, { examples: this.#o.examples });
      if (onlyIfChanged && set.fingerprint === this.#fingerprint) return false;
      applied = server.reloadPolicies(set);
    } catch (err) {
      server.metrics.policyReloads.inc({ outcome: 'refused' });
      const why = err instanceof KcmError ? (err.detail ?? err.message) : String(err);
      log(`policy reload (${reason}) refused, the policies in force stay:\n${why}`);
      return false;
    }
    this.#fingerprint = set.fingerprint;
    server.metrics.policyReloads.inc({ outcome: 'applied' });
    log(`policies reloaded (${reason}): ${applied.routes} routes from ${this.#o.dir}`);
    for (const name of applied.unusedUpstreams) {
      log(`warning: upstreams.urls.${name}: no policy route uses this upstream name any more`);
    }
    return true;
  }

  /**
   * Reloads when a policy file of the directory changes (idempotent). Also
   * applies, once the watch runs, a change made while the gateway was
   * starting (after the set in force was read, before the watch began).
   */
  watch(): void {
    if (this.#watch) return;
    const { dir, examples, log } = this.#o;
    this.#watch = watchDirectory(
      dir,
      (name) => name.endsWith(ROUTE_POLICY_SUFFIX) || (examples && name.endsWith(ROUTE_POLICY_EXAMPLE_SUFFIX)),
      () => this.reload('file change', true),
      { debounceMs: DEBOUNCE_MS, log },
    );
    this.reload('changed during start-up', true);
  }

  /** Stops watching. */
  close(): void {
    this.#watch?.close();
    this.#watch = undefined;
  }
}
