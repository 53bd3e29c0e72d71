/**
 * A listener's CRL file, replaced without a restart: CRLs are reissued every
 * few days (their nextUpdate), and one that has expired makes OpenSSL refuse
 * every client under its CA. The file's directory is watched (debounced,
 * compared by content, as ReloadableTls does); a new file is checked exactly
 * as at start-up (loadCrlFile); a bad one is refused with a log line and the
 * old CRLs stay in use. Attached servers get a new secure context
 * (`setSecureContext`): new handshakes check the new CRLs, and since a new
 * context has new session-ticket keys, no client resumes a session made
 * under the old ones. Open connections are the caller's: {@link onReload}
 * gives it the new set (see revokedInChain). A CRL that is past its
 * nextUpdate, at load or later while in use, is logged when it happens.
 */
import type { X509Certificate } from 'node:crypto';
import type { SecureContextOptions, Server as TlsServer } from 'node:tls';
import { type Crl, crlTimeProblem, type LoadedCrls, loadCrlFile } from './crl-files.ts';
import { type FileWatch, watchFiles } from './watch-files.ts';

export interface ReloadableCrlOptions {
  /** The CAs clients must chain to (each needs a CRL in the file). */
  caCerts: readonly X509Certificate[];
  /** Watch the file (default true). */
  watch?: boolean;
  /** Quiet time after the last file event before reloading (default 200 ms). */
  debounceMs?: number;
  log?: (msg: string) => void;
  now?: () => number;
}

/** setTimeout's longest delay (about 24.8 days); a later nextUpdate re-arms. */
const MAX_TIMER_MS = 2 ** 31 - 1;

function crlText(c: Crl): string {
  return `${c.issuer} (${c.revoked.size} revoked, next update ${c.nextUpdate?.toISOString() ?? 'none'})`;
}

export class ReloadableCrl {
  readonly file: string;
  readonly #caCerts: readonly X509Certificate[];
  readonly #log: (msg: string) => void;
  readonly #now: () => number;
  #current: LoadedCrls;
  #version = 1;
  readonly #servers = new Map<TlsServer, SecureContextOptions>();
  readonly #listeners = new Set<(loaded: LoadedCrls) => void>();
  readonly #warned = new WeakSet<Crl>();
  #watch: FileWatch | undefined;
  #timer: NodeJS.Timeout | undefined;

  /**
   * Loads and checks `file` now (throws `invalid_certificate` naming the
   * file: a listener refuses to start with a bad CRL file), logs CRLs that
   * are already out of date, then starts watching. Call {@link close} to stop.
   */
  constructor(file: string, o: ReloadableCrlOptions) {
    this.file = file;
    this.#caCerts = [...o.caCerts];
    this.#log = o.log ?? ((m) => console.error(m));
    this.#now = o.now ?? Date.now;
    this.#current = loadCrlFile(file, this.#caCerts);
    this.#log(`tls: loaded CRL file ${file}: ${this.#current.crls.map(crlText).join('; ')}`);
    this.#checkTimes();
    if (o.watch ?? true) {
      this.#watch = watchFiles([file], () => this.reload('file change'), {
        debounceMs: o.debounceMs ?? 200,
        log: (m) => this.#log(`tls: ${m}`),
      });
    }
  }

  /** The CRLs in use. */
  get current(): LoadedCrls {
    return this.#current;
  }

  /** One PEM string per CRL in use: the TLS `crl` option. */
  get pems(): string[] {
    return this.#current.pems;
  }

  /** 1 at start, +1 per applied reload. */
  get version(): number {
    return this.#version;
  }

  /**
   * Gives `server` every future CRL set: `setSecureContext({ ...context, crl })`.
   * `context` must hold the server's whole secure context (key, cert, ca,
   * minVersion…): setSecureContext resets what it is not given. Returns this.
   */
  attach(server: TlsServer, context: SecureContextOptions): this {
    this.#servers.set(server, context);
    server.once('close', () => this.#servers.delete(server));
    return this;
  }

  /** Calls `fn` after each applied reload (e.g. to end connections of newly revoked clients). Returns an unsubscribe function. */
  onReload(fn: (loaded: LoadedCrls) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /**
   * Re-reads the file now. True when a changed, valid file was applied;
   * false when nothing changed or the new file was refused (logged as
   * `tls: kept the current CRLs (<reason>): <why>`). Never throws.
   */
  reload(reason = 'manual'): boolean {
    let next: LoadedCrls;
    try {
      next = loadCrlFile(this.file, this.#caCerts);
    } catch (err) {
      this.#log(`tls: kept the current CRLs (${reason}): ${err instanceof Error ? err.message : String(err)}`);
      return false;
    }
    if (next.digest === this.#current.digest) return false;
    for (const [server, context] of this.#servers) {
      try {
        server.setSecureContext({ ...context, crl: next.pems });
      } catch (err) {
        this.#log(`tls: kept the current CRLs (${reason}): ${err instanceof Error ? err.message : String(err)}`);
        return false;
      }
    }
    this.#current = next;
    this.#version++;
    this.#log(`tls: loaded CRL file ${this.file} (${reason}): ${next.crls.map(crlText).join('; ')}`);
    this.#checkTimes();
    for (const fn of this.#listeners) {
      try {
        fn(next);
      } catch (err) {
        this.#log(`tls: CRL reload listener failed: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    return true;
  }

  /** Logs each CRL in use that is out of date (once), and arms a timer for the next nextUpdate. */
  #checkTimes(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const now = this.#now();
    let soonest = Number.POSITIVE_INFINITY;
    for (const c of this.#current.crls) {
      const problem = crlTimeProblem(c, now);
      if (problem && !this.#warned.has(c)) {
        this.#warned.add(c);
        this.#log(
          `tls: WARNING: the CRL from ${c.issuer} in ${this.file} is ${problem}: every client certificate under that CA is refused until a newer CRL is loaded`,
        );
      }
      const next = c.nextUpdate?.getTime();
      if (next !== undefined && next >= now) soonest = Math.min(soonest, next);
      if (now < c.thisUpdate.getTime()) soonest = Math.min(soonest, c.thisUpdate.getTime());
    }
    if (soonest === Number.POSITIVE_INFINITY) return;
    this.#timer = setTimeout(() => this.#checkTimes(), Math.min(soonest - now + 1_000, MAX_TIMER_MS));
    this.#timer.unref();
  }

  /** Stops watching and the expiry timer; attached servers keep their current context. */
  close(): void {
    this.#watch?.close();
    this.#watch = undefined;
    clearTimeout(this.#timer);
    this.#servers.clear();
    this.#listeners.clear();
  }
}
