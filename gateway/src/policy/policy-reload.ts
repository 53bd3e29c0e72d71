/**
 * Policy reload while the gateway serves (docs/gateway.md "Reloading
 * policies"): the policy directory is read, compiled and checked again as
 * at start (JSON, schema, duplicate routes, a `pkcs11` route without `hsm`,
 * `upstreams.urls` names), then the proxy's routes are replaced at once
 * (GatewayServer.reloadPolicies): new requests match the new set, requests in
 * flight keep the route they matched. A set that fails is refused as a
 * whole, its errors logged naming file, line and field, and the set in force
 * stays. Triggers: a change to a policy file of the directory (watched,
 * debounced; a change that leaves every file's bytes as they were is
 * ignored) and {@link PolicyReloader.reload} (`kcm gateway` calls it on
 * SIGHUP). Applied and refused reloads are counted in
 * `okcm_gateway_policy_reloads_total{outcome}`.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { KcmError } from '../../../common/src/errors.ts';
import { type FileWatch, watchDirectory } from '../../../common/src/tls/watch-files.ts';
import type { GatewayServer } from '../gateway-server.ts';
import { loadPolicies, ROUTE_POLICY_EXAMPLE_SUFFIX, ROUTE_POLICY_SUFFIX } from './policy-loader.ts';

export interface PolicyReloadOptions {
  dir: string;
  /** Read `*.routes.example.json` too (as at start). */
  examples: boolean;
  server: GatewayServer;
  log: (msg: string) => void;
}

/** Quiet time after the last change before a reload (editors write in several steps). */
const DEBOUNCE_MS = 200;

export class PolicyReloader {
  readonly #o: PolicyReloadOptions;
  #fingerprint: string;
  #watch: FileWatch | undefined;

  /** `o.server` serves the policies of `o.dir` as they are now (read at start). */
  constructor(o: PolicyReloadOptions) {
    this.#o = o;
    this.#fingerprint = this.#currentFingerprint();
  }

  /**
   * Reads the directory again and applies it (see the file comment); true when
   * the new set is in force. With `onlyIfChanged`, files whose bytes are all
   * as last applied are not reloaded (false, nothing logged).
   */
  reload(reason: string, onlyIfChanged = false): boolean {
    const { server, log } = this.#o;
    const fingerprint = this.#currentFingerprint();
    if (onlyIfChanged && fingerprint === this.#fingerprint) return false;
    let routes: number;
    try {
      routes = server.reloadPolicies(loadPolicies(this.#o.dir, { examples: this.#o.examples }));
    } catch (err) {
      server.metrics.policyReloads.inc({ outcome: 'refused' });
      const why = err instanceof KcmError ? (err.detail ?? err.message) : String(err);
      log(`policy reload (${reason}) refused, the policies in force stay:\n${why}`);
      return false;
    }
    this.#fingerprint = fingerprint;
    server.metrics.policyReloads.inc({ outcome: 'applied' });
    log(`policies reloaded (${reason}): ${routes} routes from ${this.#o.dir}`);
    return true;
  }

  /** Reloads when a policy file of the directory changes (idempotent). */
  watch(): void {
    const { dir, examples, log } = this.#o;
    this.#watch ??= watchDirectory(
      dir,
      (name) => isPolicyFile(name, examples),
      () => this.reload('file change', true),
      { debounceMs: DEBOUNCE_MS, log },
    );
  }

  /** Stops watching. */
  close(): void {
    this.#watch?.close();
    this.#watch = undefined;
  }

  /** SHA-256 over the names and bytes of the policy files now in the directory ('' when it cannot be read). */
  #currentFingerprint(): string {
    const h = createHash('sha256');
    try {
      for (const name of readdirSync(this.#o.dir).sort()) {
        if (!isPolicyFile(name, this.#o.examples)) continue;
        h.update(`${name}\0`);
        h.update(readFileSync(join(this.#o.dir, name)));
        h.update('\0');
      }
    } catch {
      return '';
    }
    return h.digest('hex');
  }
}

function isPolicyFile(name: string, examples: boolean): boolean {
  return name.endsWith(ROUTE_POLICY_SUFFIX) || (examples && name.endsWith(ROUTE_POLICY_EXAMPLE_SUFFIX));
}
