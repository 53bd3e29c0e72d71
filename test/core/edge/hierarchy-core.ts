/**
 * A real Core for edge tests and benchmarks: SQLite store, root of trust
 * initialised with Shamir 2-of-3, the tenant key hierarchy (KEYS code) as the
 * lease source, its KeyEventBus feeding the edge API. `restart()` seals this
 * Core and starts another on the same database and port, unsealed with the
 * shares — what a restarted `kcm core` does.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestPki } from '../../../common/src/pki/index.ts';
import { MemoryAuditSink } from '../../../core/src/audit/audit-sink.ts';
import { allowListAccess } from '../../../core/src/edge/edge-access.ts';
import { type EdgeServer, startEdgeServer } from '../../../core/src/edge/edge-server.ts';
import { KeyEventBus } from '../../../core/src/events/key-event-bus.ts';
import { ivkPolicy } from '../../../core/src/ivk/ivk-policy.ts';
import { L1Registry } from '../../../core/src/l1/l1-registry.ts';
import { RootOfTrust } from '../../../core/src/root/root-of-trust.ts';
import { IntegrityStore } from '../../../core/src/store/integrity-store.ts';
import { openStore } from '../../../core/src/store/open-store.ts';
import type { Store } from '../../../core/src/store/store.ts';
import { KeyHierarchy } from '../../../core/src/tenants/key-hierarchy.ts';
import { defaultCrypto } from '../../../native/index.ts';
import { testPki } from './edge-fixtures.ts';

export interface HierarchyCore {
  pki: TestPki;
  keys: KeyHierarchy;
  store: IntegrityStore;
  bus: KeyEventBus;
  server: EdgeServer;
  /** Edge id → tenants it may lease (mutable). */
  allow: Record<string, string[]>;
  restart(): Promise<void>;
  close(): Promise<void>;
}

const DAY = 86_400_000;

export async function startHierarchyCore(
  o: { log?: (m: string) => void; onAck?: (edgeId: string, seq: number) => void } = {},
): Promise<HierarchyCore> {
  const pki = testPki();
  const crypto = defaultCrypto();
  const dir = mkdtempSync(join(tmpdir(), 'okcm-edge-core-'));
  const audit = new MemoryAuditSink();
  const allow: Record<string, string[]> = { 'edge-a': [], 'edge-b': [] };
  const policy = ivkPolicy({
    rotationPeriodMs: 30 * DAY,
    graceMs: 2 * 3_600_000,
    maxWraps: 1000,
    hardExpiryMs: 400 * DAY,
  });
  let shares: string[] = [];
  let raw: Store;
  let l1: L1Registry;
  let root: RootOfTrust;

  const build = async (init: boolean, port: number) => {
    raw = await openStore({ kind: 'sqlite', path: join(dir, 'core.db') });
    const store = new IntegrityStore(raw);
    root = new RootOfTrust({ crypto, store, region: 'eu-1', sealProvider: null, ivkPolicy: policy, audit });
    await root.load();
    if (init) shares = (await root.init({ threshold: 2, shareCount: 3 })).shares.map((s) => s.payload);
    else for (const s of shares.slice(0, 2)) await root.submitShare(s);
    l1 = new L1Registry({}, { devMode: true, retry: { attempts: 1, baseMs: 1, maxMs: 5 } });
    const bus = new KeyEventBus();
    const keys = new KeyHierarchy({ crypto, store, root, l1, bus, audit });
    const server = await startEdgeServer({
      host: '127.0.0.1',
      port,
      tls: { cert: pki.core.certPem, key: pki.core.keyPem, ca: pki.ca.certPem },
      crypto,
      source: keys,
      bus,
      store,
      access: allowListAccess(() => allow),
      log: o.log ?? (() => {}),
      ...(o.onAck ? { onAck: o.onAck } : {}),
    });
    return { store, bus, keys, server };
  };

  const stop = async () => {
    await core.server.close();
    core.keys.wipe();
    root.seal('test');
    await l1.close();
    await raw.close();
  };

  const core = { pki, allow, ...(await build(true, 0)) } as HierarchyCore;
  core.restart = async () => {
    const port = core.server.port;
    await stop();
    Object.assign(core, await build(false, port));
  };
  core.close = async () => {
    await stop();
    rmSync(dir, { recursive: true, force: true });
  };
  return core;
}
