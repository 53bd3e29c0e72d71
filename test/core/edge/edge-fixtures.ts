/**
 * A Core edge API for tests: real TLS certificates (makeTestPki), a real
 * SQLite IntegrityStore with MACs, the KeyEventBus, and an in-memory L3 lease
 * source over real native key handles (the key hierarchy behind it is the
 * KEYS code's subject, tested there). edge-a may use tenant-a, edge-b
 * tenant-b; the app certificate is valid but allowed nothing.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { type ClientHttp2Session, connect, type IncomingHttpHeaders } from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KcmError } from '../../../common/src/errors.ts';
import { type IssuedCert, makeTestPki, type TestPki } from '../../../common/src/pki/index.ts';
import { allowListAccess } from '../../../core/src/edge/edge-access.ts';
import { type EdgeServer, type EdgeServerOptions, startEdgeServer } from '../../../core/src/edge/edge-server.ts';
import { KeyEventBus } from '../../../core/src/events/key-event-bus.ts';
import type { L3LeaseSet, L3LeaseSource, LeasedL3Version } from '../../../core/src/keys/l3-lease-source.ts';
import { IntegrityStore } from '../../../core/src/store/integrity-store.ts';
import { openStore } from '../../../core/src/store/open-store.ts';
import { RecordMac } from '../../../core/src/store/record-mac.ts';
import type { KeyEventRecord, KeyEventType } from '../../../core/src/store/records.ts';
import type { Store } from '../../../core/src/store/store.ts';
import { type Crypto, defaultCrypto, type KeyHandle } from '../../../native/index.ts';

interface FixtureService {
  versions: Map<number, { state: 'ACTIVE' | 'EXPIRED'; handle: KeyHandle }>;
  active: number;
  minDecrypt: number;
}

/** Tenants → services → native L3 handles; states as the KEYS code enforces them. */
export class FixtureLeaseSource implements L3LeaseSource {
  readonly tenants = new Map<
    string,
    { state: 'ACTIVE' | 'SUSPENDED' | 'REVOKED'; services: Map<string, FixtureService> }
  >();
  readonly reported: { tenant: string; service: string; version: number; count: number }[] = [];
  calls = 0;

  constructor(private readonly crypto: Crypto) {}

  /** Adds a service with versions 1..n, n active. */
  add(tenant: string, service: string, n = 1): void {
    let t = this.tenants.get(tenant);
    if (!t) {
      t = { state: 'ACTIVE', services: new Map() };
      this.tenants.set(tenant, t);
    }
    const versions = new Map<number, { state: 'ACTIVE' | 'EXPIRED'; handle: KeyHandle }>();
    for (let v = 1; v <= n; v++)
      versions.set(v, { state: v === n ? 'ACTIVE' : 'EXPIRED', handle: this.crypto.generateKey() });
    t.services.set(service, { versions, active: n, minDecrypt: 1 });
  }

  /** Adds version active+1 and makes it active. */
  rotate(tenant: string, service: string): number {
    const s = this.tenants.get(tenant)?.services.get(service);
    if (!s) throw new Error('no such service');
    const old = s.versions.get(s.active);
    if (old) old.state = 'EXPIRED';
    s.active += 1;
    s.versions.set(s.active, { state: 'ACTIVE', handle: this.crypto.generateKey() });
    return s.active;
  }

  handle(tenant: string, service: string, version: number): KeyHandle {
    const h = this.tenants.get(tenant)?.services.get(service)?.versions.get(version)?.handle;
    if (!h) throw new Error('no such version');
    return h;
  }

  async leaseSet(tenant: string, service: string, want: readonly number[]): Promise<L3LeaseSet> {
    this.calls++;
    const t = this.tenants.get(tenant);
    if (!t) throw new KcmError('tenant_not_found');
    if (t.state === 'REVOKED') throw new KcmError('tenant_revoked');
    const s = t.services.get(service);
    if (!s) throw new KcmError('key_not_found');
    const pick = (v: number): LeasedL3Version | null => {
      const x = s.versions.get(v);
      return x && v >= s.minDecrypt ? { version: v, state: x.state, handle: x.handle } : null;
    };
    const active = t.state === 'ACTIVE' ? pick(s.active) : null;
    const decryptOnly = want
      .filter((v) => v !== s.active)
      .map(pick)
      .filter((x) => x !== null);
    return {
      tenant,
      service,
      active,
      decryptOnly:
        t.state === 'SUSPENDED' ? [...decryptOnly, ...[pick(s.active)].filter((x) => x !== null)] : decryptOnly,
      minDecryptVersion: s.minDecrypt,
      tenantState: t.state,
      activeBudgetLeft: null,
    };
  }

  async reportEncryptions(tenant: string, service: string, version: number, count: number): Promise<void> {
    this.reported.push({ tenant, service, version, count });
  }

  destroy(): void {
    for (const t of this.tenants.values())
      for (const s of t.services.values()) for (const v of s.versions.values()) v.handle.destroy();
  }
}

export interface EdgeEnv {
  pki: TestPki;
  crypto: Crypto;
  store: IntegrityStore;
  raw: Store;
  bus: KeyEventBus;
  source: FixtureLeaseSource;
  server: EdgeServer;
  logs: string[];
  /** Appends an event in a transaction, then notifies the bus (as the KEYS code does). */
  publish(
    type: KeyEventType,
    tenant: string,
    service?: string | null,
    version?: number | null,
  ): Promise<KeyEventRecord>;
  /** Stops the edge API and starts it again on the same port (a Core restart as the edges see it). */
  restart(o?: Partial<EdgeServerOptions>): Promise<void>;
  /** The PEM an edge client needs. */
  clientTls(cert: IssuedCert): { cert: string; key: string; ca: string };
  cleanup(): Promise<void>;
}

let pkiCache: { dir: string; pki: TestPki } | undefined;

/** One PKI per test process (≈0.5 s to make). */
export function testPki(): TestPki {
  if (!pkiCache) {
    const dir = mkdtempSync(join(tmpdir(), 'okcm-edge-pki-'));
    pkiCache = { dir, pki: makeTestPki(dir) };
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  }
  return pkiCache.pki;
}

export async function makeEdgeEnv(o: Partial<EdgeServerOptions> = {}): Promise<EdgeEnv> {
  const pki = testPki();
  const crypto = defaultCrypto();
  const dir = mkdtempSync(join(tmpdir(), 'okcm-edge-'));
  const raw = await openStore({ kind: 'sqlite', path: join(dir, 'core.db') });
  const store = new IntegrityStore(raw);
  const masterKey = crypto.generateKey();
  store.setMac(new RecordMac(masterKey));
  const bus = new KeyEventBus();
  const source = new FixtureLeaseSource(crypto);
  source.add('tenant-a', 'orders', 2);
  source.add('tenant-b', 'orders', 1);
  const logs: string[] = [];
  const allow = { 'edge-a': ['tenant-a'], 'edge-b': ['tenant-b'] };
  const options = (port: number, extra: Partial<EdgeServerOptions>): EdgeServerOptions => ({
    host: '127.0.0.1',
    port,
    tls: { cert: pki.core.certPem, key: pki.core.keyPem, ca: pki.ca.certPem },
    crypto,
    source,
    bus,
    store,
    access: allowListAccess(() => allow),
    log: (m) => logs.push(m),
    ...o,
    ...extra,
  });
  const env: EdgeEnv = {
    pki,
    crypto,
    store,
    raw,
    bus,
    source,
    logs,
    server: await startEdgeServer(options(0, {})),
    async publish(type, tenant, service = null, version = null) {
      const e = await store.transaction((tx) =>
        tx.appendEvent({ type, tenant, service, version, createdAt: Date.now() }),
      );
      bus.notify([e]);
      return e;
    },
    async restart(extra = {}) {
      const port = env.server.port;
      await env.server.close();
      env.server = await startEdgeServer(options(port, extra));
    },
    clientTls: (cert) => ({ cert: cert.certPem, key: cert.keyPem, ca: pki.ca.certPem }),
    async cleanup() {
      await env.server.close();
      source.destroy();
      store.setMac(null);
      masterKey.destroy();
      await raw.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return env;
}

export interface H2Reply {
  status: number;
  // biome-ignore lint/suspicious/noExplicitAny: JSON bodies are checked by the tests
  body: any;
}

/** Opens an h2 session with a client certificate (or none); rejects when the handshake is refused. */
export function h2Connect(url: string, ca: string, client: IssuedCert | null): Promise<ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const s = connect(url, { ca, ...(client ? { cert: client.certPem, key: client.keyPem } : {}) });
    s.once('error', reject);
    s.once('connect', () => {
      s.off('error', reject);
      s.on('error', () => {});
      resolve(s);
    });
  });
}

/** One JSON request on a session; resolves `{status: 0}` when the stream is reset (e.g. the peer was refused). */
export function h2Json(s: ClientHttp2Session, method: string, path: string, body?: unknown): Promise<H2Reply> {
  return new Promise((resolve) => {
    const text = body === undefined ? '' : JSON.stringify(body);
    const req = s.request({
      ':method': method,
      ':path': path,
      ...(text ? { 'content-type': 'application/json' } : {}),
    });
    let status = 0;
    let data = '';
    req.setEncoding('utf8');
    req.on('response', (h: IncomingHttpHeaders) => {
      status = Number(h[':status']);
    });
    req.on('data', (c: string) => {
      data += c;
    });
    req.on('error', () => resolve({ status: 0, body: null }));
    req.on('end', () => resolve({ status, body: data ? JSON.parse(data) : null }));
    if (text) req.end(text);
    else req.end();
  });
}
