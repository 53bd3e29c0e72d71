/**
 * A TLS identity (certificate, key, CA bundle) that can be replaced without a
 * restart and without dropping connections. Changes are noticed by watching
 * the files' directories (atomic renames and Kubernetes-style symlink swaps
 * included; events are debounced and compared by content), by SIGHUP when
 * asked, or by {@link ReloadableTls.reload}. A new set is checked exactly as
 * at start-up (loadTlsFiles); a bad one is refused with a log line and the
 * old context stays in use. Attached servers get the new context through
 * `setSecureContext`: new handshakes use it, open connections and in-flight
 * requests keep theirs.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { SecureContextOptions, Server as TlsServer } from 'node:tls';
import { KcmError } from '../errors.ts';
import { type LoadedTls, loadTlsFiles, type TlsFiles, type TlsRole } from './cert-files.ts';
import { type FileWatch, watchFiles } from './watch-files.ts';

export interface ReloadableTlsOptions {
  /** What the certificate is for: a listener (`server`), a caller (`client`) or both (a gateway). */
  role: TlsRole;
  /** Watch the files (default true). */
  watch?: boolean;
  /** Quiet time after the last file event before reloading (default 200 ms). */
  debounceMs?: number;
  /** Reload on SIGHUP too (default false; the process decides who owns SIGHUP). */
  sighup?: boolean;
  log?: (msg: string) => void;
  now?: () => number;
}

export type ReloadListener = (loaded: LoadedTls) => void;

function fingerprint(files: TlsFiles): string | null {
  const h = createHash('sha256');
  try {
    for (const f of [files.certFile, files.keyFile, files.caFile]) {
      h.update(f === undefined ? '-' : readFileSync(f)).update('\0');
    }
  } catch {
    return null;
  }
  return h.digest('hex');
}

export class ReloadableTls {
  readonly files: TlsFiles;
  readonly #o: Required<Omit<ReloadableTlsOptions, 'now'>> & { now: () => number };
  #current: LoadedTls;
  #digest: string | null;
  #version = 1;
  readonly #servers = new Set<TlsServer>();
  readonly #listeners = new Set<ReloadListener>();
  #watch: FileWatch | undefined;
  readonly #onHup = () => this.reload('SIGHUP');

  /**
   * Loads and checks `files` now (throws `invalid_certificate` naming the
   * file: a service refuses to start with a bad certificate), then starts
   * watching. Call {@link close} to stop watching.
   */
  constructor(files: TlsFiles, o: ReloadableTlsOptions) {
    this.files = { ...files };
    this.#o = {
      role: o.role,
      watch: o.watch ?? true,
      debounceMs: o.debounceMs ?? 200,
      sighup: o.sighup ?? false,
      log: o.log ?? ((m) => console.error(m)),
      now: o.now ?? Date.now,
    };
    this.#digest = fingerprint(this.files);
    this.#current = loadTlsFiles(this.files, this.#o.role, this.#o.now());
    if (this.#o.watch) {
      const files = [this.files.certFile, this.files.keyFile, ...(this.files.caFile ? [this.files.caFile] : [])];
      this.#watch = watchFiles(files, () => this.reload('file change'), {
        debounceMs: this.#o.debounceMs,
        log: (m) => this.#o.log(`tls: ${m}`),
      });
    }
    if (this.#o.sighup) process.on('SIGHUP', this.#onHup);
  }

  /** The certificate set in use. */
  get current(): LoadedTls {
    return this.#current;
  }

  /** 1 at start, +1 per applied reload. */
  get version(): number {
    return this.#version;
  }

  /** cert/key/ca for `tls.createSecureContext`, `https.Agent`, undici `connect`. */
  contextOptions(): SecureContextOptions {
    const c = this.#current;
    return { cert: c.cert, key: c.key, ...(c.ca ? { ca: c.ca } : {}) };
  }

  /**
   * Options for `https.createServer` / `http2.createSecureServer` /
   * `tls.createServer`. With `clientCerts` (needs a caFile) clients must
   * present a certificate; pair it with guardTlsServer, which refuses
   * unverified peers with a log line, and peerIdentity per request.
   */
  serverOptions(clientCerts: boolean): SecureContextOptions & { requestCert: boolean; rejectUnauthorized: boolean } {
    if (clientCerts && !this.#current.ca) {
      throw new KcmError('invalid_certificate', `client certificates need a CA file next to ${this.files.certFile}`);
    }
    return { ...this.contextOptions(), requestCert: clientCerts, rejectUnauthorized: false, minVersion: 'TLSv1.2' };
  }

  /** Gives `server` every future context (setSecureContext). Returns this. */
  attach(server: TlsServer): this {
    this.#servers.add(server);
    server.once('close', () => this.#servers.delete(server));
    return this;
  }

  /** Calls `fn` after each applied reload (e.g. a client rebuilding its agent). Returns an unsubscribe function. */
  onReload(fn: ReloadListener): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /**
   * Re-reads the files now. Returns true when a changed, valid set was
   * applied; false when nothing changed or the new set was refused (logged
   * as `tls: kept the current certificate: <why>`). Never throws.
   */
  reload(reason = 'manual'): boolean {
    const digest = fingerprint(this.files);
    if (digest !== null && digest === this.#digest) return false;
    let next: LoadedTls;
    try {
      next = loadTlsFiles(this.files, this.#o.role, this.#o.now());
    } catch (err) {
      this.#o.log(`tls: kept the current certificate (${reason}): ${err instanceof Error ? err.message : String(err)}`);
      return false;
    }
    const opts = { cert: next.cert, key: next.key, ...(next.ca ? { ca: next.ca } : {}) };
    for (const s of this.#servers) {
      try {
        s.setSecureContext(opts);
      } catch (err) {
        this.#o.log(
          `tls: kept the current certificate (${reason}): ${err instanceof Error ? err.message : String(err)}`,
        );
        return false;
      }
    }
    this.#current = next;
    this.#digest = digest;
    this.#version++;
    this.#o.log(
      `tls: loaded ${this.files.certFile} (${reason}): ${next.leaf.subject.replaceAll('\n', ', ')}, valid to ${new Date(next.leaf.validTo).toISOString()}, sha256 ${next.leaf.fingerprint256}`,
    );
    for (const fn of this.#listeners) {
      try {
        fn(next);
      } catch (err) {
        this.#o.log(`tls: reload listener failed: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    return true;
  }

  /** Stops watching and listening for SIGHUP; attached servers keep their current context. */
  close(): void {
    this.#watch?.close();
    process.off('SIGHUP', this.#onHup);
    this.#servers.clear();
    this.#listeners.clear();
  }
}
