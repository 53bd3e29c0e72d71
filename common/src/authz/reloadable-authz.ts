/**
 * The authorization engine over a policy file that can change without a
 * restart: the file's directory is watched (debounced) and SIGHUP can be
 * asked for; a changed file is validated like at start-up and swapped in
 * whole, so every request sees either the old or the new policy. A bad file
 * is refused with a log line and the old policy stays in force.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Identity } from '../tls/identity.ts';
import { type FileWatch, watchFiles } from '../tls/watch-files.ts';
import { AuthzEngine, type AuthzRequest, type Decision, type EngineOptions } from './engine.ts';
import type { Action } from './permissions.ts';
import { loadPolicyFile } from './policy-file.ts';

/** What an API needs from authorization: the engine, reloadable or not. */
export interface Authorizer {
  authorize(identity: Identity | null, request: AuthzRequest): Decision;
  tenantsFor(identity: Identity | null, action: Action): '*' | string[];
}

export interface ReloadableAuthzOptions extends EngineOptions {
  watch?: boolean;
  debounceMs?: number;
  sighup?: boolean;
  log?: (msg: string) => void;
}

function digestOf(file: string): string | null {
  try {
    return createHash('sha256').update(readFileSync(file)).digest('hex');
  } catch {
    return null;
  }
}

export class ReloadableAuthz implements Authorizer {
  readonly file: string;
  readonly #o: ReloadableAuthzOptions;
  readonly #log: (msg: string) => void;
  #engine: AuthzEngine;
  #digest: string | null;
  #version = 1;
  #watch: FileWatch | undefined;
  readonly #onHup = () => this.reload('SIGHUP');

  /** Loads `file` now; throws `invalid_policy` naming the file and field (a service refuses to start). */
  constructor(file: string, o: ReloadableAuthzOptions = {}) {
    this.file = file;
    this.#o = o;
    this.#log = o.log ?? ((m) => console.error(m));
    this.#digest = digestOf(file);
    this.#engine = new AuthzEngine(loadPolicyFile(file), o);
    if (o.watch ?? true) {
      this.#watch = watchFiles([file], () => this.reload('file change'), {
        debounceMs: o.debounceMs ?? 200,
        log: (m) => this.#log(`authz: ${m}`),
      });
    }
    if (o.sighup) process.on('SIGHUP', this.#onHup);
  }

  get engine(): AuthzEngine {
    return this.#engine;
  }

  /** 1 at start, +1 per applied reload. */
  get version(): number {
    return this.#version;
  }

  authorize(identity: Identity | null, request: AuthzRequest): Decision {
    return this.#engine.authorize(identity, request);
  }

  tenantsFor(identity: Identity | null, action: Action): '*' | string[] {
    return this.#engine.tenantsFor(identity, action);
  }

  /**
   * Re-reads the file. True when a changed, valid policy was applied; false
   * when unchanged or refused (logged as `authz: kept the current policy`). Never throws.
   */
  reload(reason = 'manual'): boolean {
    const digest = digestOf(this.file);
    if (digest !== null && digest === this.#digest) return false;
    try {
      this.#engine = new AuthzEngine(loadPolicyFile(this.file), this.#o);
    } catch (err) {
      this.#log(`authz: kept the current policy (${reason}): ${err instanceof Error ? err.message : String(err)}`);
      return false;
    }
    this.#digest = digest;
    this.#version++;
    this.#log(`authz: loaded ${this.file} (${reason}): ${this.#engine.policy.bindings.length} identities`);
    return true;
  }

  close(): void {
    this.#watch?.close();
    process.off('SIGHUP', this.#onHup);
  }
}
