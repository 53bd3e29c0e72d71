/**
 * A real key hierarchy for tests: SQLite store in a temp dir, an initialised
 * root of trust (2-of-3 Shamir), a test clock, an in-memory audit sink, the
 * key event bus (events recorded), and a restart that unseals a fresh Core
 * on the same database with the shares.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KcmError } from '../../../common/src/errors.ts';
import { MemoryAuditSink } from '../../../core/src/audit/audit-sink.ts';
import { KeyEventBus } from '../../../core/src/events/key-event-bus.ts';
import { ivkPolicy } from '../../../core/src/ivk/ivk-policy.ts';
import { type KeyHierarchyConfig, keyHierarchyConfig } from '../../../core/src/keys/l3/key-settings.ts';
import { L1Registry } from '../../../core/src/l1/l1-registry.ts';
import { RootOfTrust } from '../../../core/src/root/root-of-trust.ts';
import type { SealConfig } from '../../../core/src/seal/open-seal-provider.ts';
import { IntegrityStore } from '../../../core/src/store/integrity-store.ts';
import { openStore } from '../../../core/src/store/open-store.ts';
import type { KeyEventRecord } from '../../../core/src/store/records.ts';
import type { Store } from '../../../core/src/store/store.ts';
import { KeyHierarchy } from '../../../core/src/tenants/key-hierarchy.ts';
import { defaultCrypto } from '../../../native/index.ts';

export const DAY = 86_400_000;

export interface Fixture {
  keys: KeyHierarchy;
  root: RootOfTrust;
  store: IntegrityStore;
  raw: Store;
  l1: L1Registry;
  audit: MemoryAuditSink;
  events: KeyEventRecord[];
  clock: { now: number };
  /** Seals this Core and starts another on the same database, unsealed with the shares. */
  restart(): Promise<void>;
  close(): Promise<void>;
}

export interface FixtureOptions {
  l1Providers?: Record<string, SealConfig>;
  keys?: Partial<Record<keyof KeyHierarchyConfig, unknown>>;
  /** An existing store (e.g. PostgreSQL); default a fresh SQLite file. */
  openRaw?: () => Promise<Store>;
}

export async function hierarchyFixture(o: FixtureOptions = {}): Promise<Fixture> {
  const dir = mkdtempSync(join(tmpdir(), 'kcm-keys-'));
  const openRaw = o.openRaw ?? (() => openStore({ kind: 'sqlite', path: join(dir, 'core.db') }));
  const crypto = defaultCrypto();
  const clock = { now: Date.UTC(2026, 0, 1) };
  const audit = new MemoryAuditSink();
  const events: KeyEventRecord[] = [];
  const config = keyHierarchyConfig(o.keys ?? {});
  const policy = ivkPolicy({
    rotationPeriodMs: 30 * DAY,
    graceMs: 2 * 3_600_000,
    maxWraps: 1000,
    hardExpiryMs: 400 * DAY,
  });
  let shares: string[] = [];

  const build = async (raw: Store, init: boolean) => {
    const store = new IntegrityStore(raw);
    const root = new RootOfTrust({
      crypto,
      store,
      region: 'eu-1',
      sealProvider: null,
      ivkPolicy: policy,
      audit,
      now: () => clock.now,
    });
    await root.load();
    if (init) shares = (await root.init({ threshold: 2, shareCount: 3 })).shares.map((s) => s.payload);
    else for (const s of shares.slice(0, 2)) await root.submitShare(s);
    const l1 = new L1Registry(o.l1Providers ?? {}, { devMode: true, retry: { attempts: 2, baseMs: 1, maxMs: 5 } });
    const bus = new KeyEventBus();
    bus.subscribe((e) => events.push(e));
    const keys = new KeyHierarchy({ crypto, store, root, l1, bus, audit, now: () => clock.now, config });
    return { store, root, l1, keys };
  };

  const f = { audit, events, clock, raw: await openRaw() } as Fixture;
  Object.assign(f, await build(f.raw, true));
  f.restart = async () => {
    f.keys.wipe();
    f.root.seal('test restart');
    await f.l1.close();
    await f.raw.close();
    f.raw = await openRaw();
    Object.assign(f, await build(f.raw, false));
  };
  f.close = async () => {
    f.keys.wipe();
    f.root.seal('test end');
    await f.l1.close();
    await f.raw.close();
    rmSync(dir, { recursive: true, force: true });
  };
  return f;
}

/** The KcmError code of a rejection (fails the test when it resolves). */
export async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    return err instanceof KcmError
      ? err.code
      : `${(err as Error).name}:${(err as { code?: string }).code ?? (err as Error).message}`;
  }
  throw new Error('expected a rejection');
}
