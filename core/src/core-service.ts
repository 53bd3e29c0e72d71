/**
 * Starts a Crypto Core from its configuration: store → integrity layer →
 * seal provider → root of trust → admin API, then auto-unseal (retrying with
 * backoff in the background while still accepting shares) and the IVK
 * trigger ticker. `close()` seals (wiping every key), stops the ticker, closes
 * the listener, the provider and the store.
 */
import { defaultCrypto } from '../../native/index.ts';
import { loadNative } from '../../native/ts/load.ts';
import { type AdminServer, startAdminServer } from './api/admin-server.ts';
import { approvalRoutes } from './api/routes/approvals.ts';
import { edgeRoutes } from './api/routes/edges.ts';
import { serviceKeyRoutes } from './api/routes/service-keys.ts';
import { tenantRoutes } from './api/routes/tenants.ts';
import type { AuditSink } from './audit/audit-sink.ts';
import { type CoreAudit, openCoreAudit } from './audit/open-core-audit.ts';
import type { CoreConfig } from './config.ts';
import type { EdgeServer } from './edge/edge-server.ts';
import { startConfiguredEdge } from './edge/start-edge.ts';
import { KeyEventBus } from './events/key-event-bus.ts';
import { L1Registry } from './l1/l1-registry.ts';
import { ApprovalService } from './quorum/approval-service.ts';
import { coreOperations } from './quorum/core-operations.ts';
import { highRiskRoute } from './quorum/high-risk-route.ts';
import { RootOfTrust } from './root/root-of-trust.ts';
import { DeferredSealProvider } from './seal/deferred-provider.ts';
import { openSealProvider } from './seal/open-seal-provider.ts';
import type { SealProvider } from './seal/seal-provider.ts';
import { IntegrityStore } from './store/integrity-store.ts';
import { openStore } from './store/open-store.ts';
import { KeyHierarchy } from './tenants/key-hierarchy.ts';

export interface CoreService {
  root: RootOfTrust;
  admin: AdminServer;
  audit: AuditSink;
  /** Resolves when the start-up auto-unseal attempt ends (true = unsealed). */
  autoUnsealed: Promise<boolean>;
  /** Tenants, L1 links, L3 service keys, leases (core/src/tenants/key-hierarchy.ts); throws `sealed` until unsealed. */
  keys: KeyHierarchy;
  /** Key events (revocations, rotations) for the edge API, after their transaction commits. */
  bus: KeyEventBus;
  /** The edge API (config `edge`), null when not configured; `edge.ackStatus(seq)` is the operator's ack view. */
  edge: EdgeServer | null;
  /** Four-eyes approval requests (ADR-404) and the registry of high-risk operations. */
  approvals: ApprovalService;
  close(): Promise<void>;
}

export interface StartCoreOptions {
  log?: (msg: string) => void;
  audit?: AuditSink;
  now?: () => number;
}

export async function startCore(config: CoreConfig, o: StartCoreOptions = {}): Promise<CoreService> {
  const log = o.log ?? ((m: string) => console.error(`[core] ${m}`));
  const hardened = loadNative().backend?.processHarden();
  if (!hardened?.coreDumpsDisabled) log('WARNING: core dumps could not be disabled (native module unavailable)');
  if (config.devMode) log('WARNING: development mode: insecure settings are allowed; never use it in production');
  const crypto = defaultCrypto();
  // The tamper-evident log (docs/audit.md) unless the caller brings its own sink.
  const coreAudit: CoreAudit | null = o.audit ? null : openCoreAudit(config, log);
  const audit = o.audit ?? (coreAudit as CoreAudit).sink;
  const raw = await openStore(config.store);
  const store = new IntegrityStore(raw, (e) => {
    log(`integrity check failed: ${e.table} ${e.id}`);
    audit.record({
      action: 'store.integrity',
      outcome: 'failure',
      resource: `${e.table} ${e.id}`,
      reason: 'record_tampered',
    });
  });
  let provider: SealProvider | null = null;
  let admin: AdminServer | undefined;
  let edge: EdgeServer | null = null;
  let ticker: NodeJS.Timeout | undefined;
  const abort = new AbortController();
  try {
    const sealConfig = config.seal;
    if (sealConfig.type !== 'shamir') {
      const deferred = new DeferredSealProvider(sealConfig.type, () =>
        openSealProvider(sealConfig, { devMode: config.devMode }),
      );
      if (deferred.startError)
        log(
          `WARNING: seal provider ${sealConfig.type} cannot start (${deferred.startError}); staying sealed and retrying`,
        );
      provider = deferred;
    }
    const root = new RootOfTrust({
      crypto,
      store,
      region: config.region,
      sealProvider: provider,
      ivkPolicy: config.ivk,
      audit,
      ...(o.now ? { now: o.now } : {}),
    });
    const state = await root.load();
    const bus = new KeyEventBus();
    const l1 = new L1Registry(config.l1Providers ?? {}, { devMode: config.devMode });
    const keys = new KeyHierarchy({
      crypto,
      store,
      root,
      l1,
      bus,
      audit,
      ...(o.now ? { now: o.now } : {}),
      ...(config.keys ? { config: config.keys } : {}),
    });
    // Sealing wipes the MasterKey and IVKs; the L2/L3 caches go with them, at once (ADR-304 tier 1).
    root.onSeal(() => keys.wipe());
    const keysOf = () => keys;
    const registry = coreOperations({
      root,
      keys: keysOf,
      dataDir: config.dataDir,
      ...(config.authzPolicy ? { authzPolicy: config.authzPolicy } : {}),
    });
    const approvals = new ApprovalService({
      store,
      registry,
      audit,
      policy: config.quorum,
      ...(coreAudit ? { alerts: coreAudit.alerter } : {}),
      ...(o.now ? { now: o.now } : {}),
      log,
    });
    const highRisk = {
      approvals,
      registry,
      audit,
      // A plain-loopback development Core has one caller (local-operator): no second person can approve there.
      bypassQuorum: config.devMode && !config.listen.tls,
    };
    admin = await startAdminServer(root, config.listen, log, {
      devMode: config.devMode,
      audit,
      reloadOnSighup: true,
      ...(config.authzPolicy ? { authzPolicy: config.authzPolicy } : {}),
      ivkRotate: highRiskRoute(highRisk, {
        method: 'POST',
        path: '/v1/ivk/rotate',
        action: 'sys.write',
        operation: 'ivk.rotate_emergency',
        params: () => ({}),
      }),
      routes: [
        highRiskRoute(highRisk, {
          method: 'POST',
          path: '/v1/sys/shares/rekey',
          action: 'sys.write',
          operation: 'shares.rekey',
          params: (ctx) => ({
            threshold: ctx.body.threshold,
            shares: ctx.body.shares,
            holderPublicKeys: ctx.body.holderPublicKeys,
          }),
        }),
        ...tenantRoutes(keysOf, (spec) => highRiskRoute(highRisk, spec)),
        ...serviceKeyRoutes(keysOf),
        ...approvalRoutes(approvals, {
          // An operator scoped to some tenants can act only on requests about those tenants.
          mayAct: (identity, scope) => admin?.authz.authorize(identity, scope).allowed === true,
        }),
        ...edgeRoutes(store, () => edge),
      ],
    });
    log(`admin API on ${admin.url}; state ${state}`);
    if (config.edge) {
      edge = await startConfiguredEdge(config.edge, config.authzPolicy, {
        crypto,
        source: keys,
        bus,
        store,
        audit,
        log,
      });
      log(`edge API on ${edge.url}`);
    }
    const autoUnsealed =
      state === 'sealed' && provider ? keepUnsealing(root, config, abort.signal, log) : Promise.resolve(false);
    ticker = setInterval(() => {
      keys
        .tick()
        .then((done) => done.length > 0 && log(`keys: ${done.join(', ')}`))
        .catch((err: unknown) => log(`keys tick failed: ${err instanceof Error ? err.message : String(err)}`));
      if (root.state !== 'active') return;
      approvals
        .sweep()
        .then((gone) => gone.length > 0 && log(`approvals expired: ${gone.join(', ')}`))
        .catch((err: unknown) => log(`approval sweep failed: ${err instanceof Error ? err.message : String(err)}`));
      root
        .ivk()
        .tick()
        .then((done) => done.length > 0 && log(`ivk: ${done.join(', ')}`))
        .catch((err: unknown) => log(`ivk tick failed: ${err instanceof Error ? err.message : String(err)}`));
    }, config.tickMs);
    ticker.unref();
    const service: CoreService = {
      root,
      admin,
      audit,
      autoUnsealed,
      keys,
      bus,
      edge,
      approvals,
      async close() {
        abort.abort();
        clearInterval(ticker);
        await edge?.close();
        root.seal('shutdown');
        await admin?.close();
        await provider?.close();
        await l1.close();
        await raw.close();
        await coreAudit?.close();
      },
    };
    return service;
  } catch (err) {
    abort.abort();
    clearInterval(ticker);
    await edge?.close().catch(() => {});
    await admin?.close();
    await provider?.close().catch(() => {});
    await raw.close().catch(() => {});
    await coreAudit?.close().catch(() => {});
    throw err;
  }
}

/** Tries the provider at start-up with the configured backoff, then keeps trying at maxMs until unsealed or closed. */
async function keepUnsealing(
  root: RootOfTrust,
  config: CoreConfig,
  signal: AbortSignal,
  log: (m: string) => void,
): Promise<boolean> {
  const retry = {
    ...config.autoUnseal,
    signal,
    onRetry: (err: Error, attempt: number, ms: number) =>
      log(`auto-unseal attempt ${attempt} failed (${err.message}); retrying in ${ms} ms`),
  };
  const first = await root.autoUnseal(retry);
  if (first) {
    log('auto-unsealed');
    return true;
  }
  log(
    `auto-unseal failed (${root.lastAutoUnsealError}): waiting for unseal shares; retrying the provider in the background`,
  );
  void (async () => {
    while (!signal.aborted && root.state !== 'active') {
      await new Promise((r) => setTimeout(r, config.autoUnseal.maxMs).unref());
      if (signal.aborted || (root.state as string) === 'active') return;
      // Background attempts are audited only when they succeed: an outage must not write an entry every few seconds.
      if (await root.autoUnseal({ ...retry, attempts: 1 }, { auditFailure: false }))
        log('auto-unsealed (background retry)');
    }
  })();
  return false;
}
