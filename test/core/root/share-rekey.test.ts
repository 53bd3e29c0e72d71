/**
 * Share re-keying (RootOfTrust.rekeyShares, share-rekey.ts) on a real SQLite
 * store: a 2-of-3 split becomes 3-of-5 sealed shares; old shares are refused
 * from the commit on (this Core, a restarted one, a sealed replica), the new
 * ones unseal; plain shares, sealed and pending Cores are refused; a failing
 * store or audit sink leaves the old split valid; the manifest lists the
 * issued payloads; the audit log holds no share; the `shares.rekey` executor
 * validates its parameters and runs through a four-eyes quorum.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { AuditEvent } from '../../../common/src/audit/audit-event.ts';
import { KcmError } from '../../../common/src/errors.ts';
import { MemoryAuditSink } from '../../../core/src/audit/audit-sink.ts';
import { ivkPolicy } from '../../../core/src/ivk/ivk-policy.ts';
import { ApprovalService } from '../../../core/src/quorum/approval-service.ts';
import { canonicalParams } from '../../../core/src/quorum/canonical-params.ts';
import { ExecutorRegistry } from '../../../core/src/quorum/executor-registry.ts';
import { RootOfTrust } from '../../../core/src/root/root-of-trust.ts';
import {
  MAX_REKEY_SHARES,
  type RekeyResult,
  sharesRekeyExecutor,
  validateRekeyParams,
} from '../../../core/src/root/share-rekey.ts';
import { DevSealProvider } from '../../../core/src/seal/dev/dev-provider.ts';
import type { SealProvider } from '../../../core/src/seal/seal-provider.ts';
import { DISTRIBUTION_SEALED, payloadSha256 } from '../../../core/src/seal/shamir/manifest.ts';
import {
  generateHolderKeypair,
  type HolderKeypair,
  openSealedShare,
} from '../../../core/src/seal/shamir/open-share.ts';
import { IntegrityStore } from '../../../core/src/store/integrity-store.ts';
import { openStore } from '../../../core/src/store/open-store.ts';
import type { Store, StoreTx } from '../../../core/src/store/store.ts';
import { defaultCrypto } from '../../../native/index.ts';

const DAY = 86_400_000;
const crypto = defaultCrypto();
const policy = ivkPolicy({ rotationPeriodMs: 30 * DAY, graceMs: 3_600_000, maxWraps: 1000, hardExpiryMs: 400 * DAY });

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof KcmError, `not a KcmError: ${String(e)}`);
    return e.code;
  }
  return 'no error';
}

function codeOfSync(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof KcmError, `not a KcmError: ${String(e)}`);
    return e.code;
  }
  return 'no error';
}

/** A raw store whose next cluster update writes the row and then throws (inside the transaction). */
function failingStore(raw: Store): { store: Store; arm: () => void } {
  let armed = false;
  const wrapTx = (tx: StoreTx): StoreTx =>
    new Proxy(tx, {
      get(t, p) {
        if (p === 'updateCluster' && armed) {
          return async (r: Parameters<StoreTx['updateCluster']>[0]) => {
            armed = false;
            await t.updateCluster(r);
            throw new Error('disk full (injected)');
          };
        }
        const v = Reflect.get(t, p);
        return typeof v === 'function' ? v.bind(t) : v;
      },
    });
  const store = new Proxy(raw, {
    get(t, p) {
      if (p === 'transaction') {
        return <T>(fn: (tx: StoreTx) => Promise<T>) => t.transaction((tx) => fn(wrapTx(tx)));
      }
      const v = Reflect.get(t, p);
      return typeof v === 'function' ? v.bind(t) : v;
    },
  });
  return { store, arm: () => (armed = true) };
}

/** An audit sink that can be told to refuse one action. */
class ScriptedAudit extends MemoryAuditSink {
  refuse: string | null = null;
  override record(e: AuditEvent): void {
    if (e.action === this.refuse && e.outcome === 'success') {
      throw new KcmError('audit_unavailable', 'injected');
    }
    super.record(e);
  }
}

interface Core {
  root: RootOfTrust;
  raw: Store;
  store: IntegrityStore;
}

describe('share re-keying', () => {
  let dir: string;
  let audit: ScriptedAudit;
  let cores: Core[];
  let oldShares: string[];
  let arm: () => void;
  let root: RootOfTrust;

  async function openCore(o: { sealProvider?: SealProvider; failing?: boolean; db?: string } = {}): Promise<Core> {
    const opened = await openStore({ kind: 'sqlite', path: join(dir, o.db ?? 'core.db') });
    let raw = opened;
    if (o.failing) {
      const f = failingStore(opened);
      raw = f.store;
      arm = f.arm;
    }
    const store = new IntegrityStore(raw);
    const r = new RootOfTrust({
      crypto,
      store,
      region: 'eu-1',
      sealProvider: o.sealProvider ?? null,
      ivkPolicy: policy,
      audit,
      now: () => Date.UTC(2026, 0, 1),
    });
    await r.load();
    const core = { root: r, raw: opened, store };
    cores.push(core);
    return core;
  }

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kcm-rekey-'));
    audit = new ScriptedAudit();
    cores = [];
    root = (await openCore({ failing: true })).root;
    oldShares = (await root.init({ threshold: 2, shareCount: 3 })).shares.map((s) => s.payload);
    await root.confirmInit();
  });

  afterEach(async () => {
    for (const c of cores) {
      c.root.seal('test');
      await c.raw.close();
    }
    rmSync(dir, { recursive: true, force: true });
  });

  function keys(n: number): HolderKeypair[] {
    return Array.from({ length: n }, () => generateHolderKeypair());
  }

  function opened(result: RekeyResult, holders: HolderKeypair[]): string[] {
    return result.sealedShares.map((s) =>
      openSealedShare(s.payload, (holders[s.index - 1] as HolderKeypair).secretKey),
    );
  }

  async function unsealWith(r: RootOfTrust, shares: string[]): Promise<void> {
    for (const s of shares) await r.submitShare(s);
    assert.equal(r.state, 'active');
  }

  it('re-keys 2-of-3 into 3-of-5 sealed shares: old shares refused, new ones unseal, after a restart too', async () => {
    const before = await cores[0]?.store.readClusterUnverified();
    const holders = keys(5);
    const result = await root.rekeyShares({
      threshold: 3,
      shareCount: 5,
      holderPublicKeys: holders.map((h) => h.publicKey),
    });
    assert.equal(result.clusterId, before?.clusterId);
    assert.equal(result.threshold, 3);
    assert.equal(result.shareCount, 5);
    assert.match(result.splitId, /^[0-9a-f]{32}$/);
    assert.notEqual(result.splitId, before?.splitId.toString('hex'));
    assert.deepEqual(
      result.sealedShares.map((s) => s.index),
      [1, 2, 3, 4, 5],
    );
    const after = await cores[0]?.store.readClusterUnverified();
    assert.equal(after?.splitId.toString('hex'), result.splitId);
    assert.equal(after?.threshold, 3);
    assert.equal(after?.shareCount, 5);
    assert.ok(after && before && after.kcv.equals(before.kcv), 'same MasterKey check value');
    assert.ok(after && before && !after.ceremonyPublicKey.equals(before.ceremonyPublicKey), 'new ceremony key');
    assert.deepEqual(JSON.parse(after?.manifest ?? ''), result.manifest);
    assert.equal(root.status().threshold, 3);
    assert.equal(root.state, 'active', 'the Core stays active');

    const fresh = opened(result, holders);
    root.seal('test');
    assert.equal(await codeOf(root.submitShare(oldShares[0] as string)), 'foreign_share');
    assert.equal(root.status().progress?.received, 0);
    assert.equal(root.status().progress?.threshold, 3);
    await unsealWith(root, [fresh[4], fresh[0], fresh[2]] as string[]);
    assert.equal(root.ivk().activeVersion, 1);

    // A Core started afterwards on the same database: the same.
    const restarted = (await openCore()).root;
    assert.equal(await codeOf(restarted.submitShare(oldShares[1] as string)), 'foreign_share');
    await unsealWith(restarted, fresh.slice(1, 4));
  });

  it('lists the issued sealed payloads in the manifest', async () => {
    const holders = keys(4);
    const result = await root.rekeyShares({
      threshold: 2,
      shareCount: 4,
      holderPublicKeys: holders.map((h) => h.publicKey),
    });
    const m = result.manifest;
    assert.equal(m.splitId, result.splitId);
    assert.equal(m.threshold, 2);
    assert.equal(m.shareCount, 4);
    assert.equal(m.distribution, DISTRIBUTION_SEALED);
    assert.equal(m.shares.length, 4);
    for (const s of result.sealedShares) {
      const entry = m.shares.find((e) => e.index === s.index);
      assert.equal(entry?.payloadSha256, payloadSha256(s.payload));
      assert.equal(entry?.holderPublicKey, holders[s.index - 1]?.publicKey.toString('base64'));
      assert.equal(JSON.parse(s.payload).format, 'okcm-sealed-share/1');
    }
  });

  it('refuses plain shares: without holder keys nothing changes', async () => {
    const before = (await cores[0]?.store.readClusterUnverified())?.splitId;
    for (const holderPublicKeys of [[], undefined, null]) {
      const req = { threshold: 2, shareCount: 3, holderPublicKeys } as never;
      assert.equal(await codeOf(root.rekeyShares(req)), 'invalid_shamir_parameters');
    }
    const few = keys(2).map((h) => h.publicKey);
    assert.equal(
      await codeOf(root.rekeyShares({ threshold: 2, shareCount: 3, holderPublicKeys: few })),
      'invalid_shamir_parameters',
    );
    assert.ok((await cores[0]?.store.readClusterUnverified())?.splitId.equals(before as Buffer));
    root.seal('test');
    await unsealWith(root, oldShares.slice(0, 2));
  });

  it('refuses a sealed Core, an uninitialised one and a pending init', async () => {
    const holders = keys(3).map((h) => h.publicKey);
    const req = { threshold: 2, shareCount: 3, holderPublicKeys: holders };
    root.seal('test');
    assert.equal(await codeOf(root.rekeyShares(req)), 'sealed');
    await root.submitShare(oldShares[0] as string);
    assert.equal(root.state, 'unsealing');
    assert.equal(await codeOf(root.rekeyShares(req)), 'sealed');

    const otherDir = mkdtempSync(join(tmpdir(), 'kcm-rekey-pending-'));
    const raw = await openStore({ kind: 'sqlite', path: join(otherDir, 'core.db') });
    try {
      const pending = new RootOfTrust({
        crypto,
        store: new IntegrityStore(raw),
        region: 'eu-1',
        sealProvider: null,
        ivkPolicy: policy,
        audit,
      });
      await pending.load();
      assert.equal(await codeOf(pending.rekeyShares(req)), 'not_initialized');
      await pending.init({ threshold: 2, shareCount: 3 });
      assert.equal(pending.status().initState, 'pending');
      assert.equal(await codeOf(pending.rekeyShares(req)), 'init_not_confirmed');
      pending.seal('test');
    } finally {
      await raw.close();
      rmSync(otherDir, { recursive: true, force: true });
    }
  });

  it('is atomic: a store failure inside the transaction leaves the old split in force', async () => {
    const before = await cores[0]?.store.readClusterUnverified();
    arm();
    await assert.rejects(
      root.rekeyShares({ threshold: 3, shareCount: 5, holderPublicKeys: keys(5).map((h) => h.publicKey) }),
      /disk full/,
    );
    const stored = await cores[0]?.store.readClusterUnverified();
    assert.ok(stored && before);
    assert.ok(stored.splitId.equals(before.splitId));
    assert.equal(stored.threshold, 2);
    assert.equal(stored.manifest, before.manifest);
    assert.ok(stored.mac.equals(before.mac));
    assert.equal(root.status().threshold, 2);
    const last = audit.events.filter((e) => e.action === 'core.shares_rekey');
    assert.deepEqual(
      last.map((e) => e.outcome),
      ['failure'],
    );
    root.seal('test');
    await unsealWith(root, oldShares.slice(1, 3));
  });

  it('rolls back when its audit record cannot be written', async () => {
    audit.refuse = 'core.shares_rekey';
    const before = (await cores[0]?.store.readClusterUnverified())?.splitId as Buffer;
    assert.equal(
      await codeOf(
        root.rekeyShares({ threshold: 2, shareCount: 3, holderPublicKeys: keys(3).map((h) => h.publicKey) }),
      ),
      'audit_unavailable',
    );
    assert.ok((await cores[0]?.store.readClusterUnverified())?.splitId.equals(before));
    root.seal('test');
    await unsealWith(root, oldShares.slice(0, 2));
  });

  it('runs one re-key at a time', async () => {
    const req = () => ({ threshold: 2, shareCount: 3, holderPublicKeys: keys(3).map((h) => h.publicKey) });
    const [a, b] = await Promise.allSettled([root.rekeyShares(req()), root.rekeyShares(req())]);
    assert.equal(a?.status, 'fulfilled');
    assert.equal(b?.status, 'rejected');
    assert.equal(b?.status === 'rejected' && (b.reason as KcmError).code, 'store_conflict');
    const stored = await cores[0]?.store.readClusterUnverified();
    assert.equal(stored?.splitId.toString('hex'), a?.status === 'fulfilled' ? a.value.splitId : '');
  });

  it('reaches a sealed replica on the same database: old shares refused, also mid-attempt', async () => {
    const replica = (await openCore()).root;
    const other = (await openCore()).root;
    await other.submitShare(oldShares[0] as string); // an attempt under way with the old split
    const holders = keys(3);
    const result = await root.rekeyShares({
      threshold: 2,
      shareCount: 3,
      holderPublicKeys: holders.map((h) => h.publicKey),
    });
    const fresh = opened(result, holders);

    assert.equal(await codeOf(replica.submitShare(oldShares[0] as string)), 'foreign_share');
    await unsealWith(replica, fresh.slice(0, 2));

    assert.equal(await codeOf(other.submitShare(oldShares[1] as string)), 'foreign_share');
    assert.equal(other.state, 'sealed');
    await unsealWith(other, fresh.slice(1, 3));
  });

  it('writes no share into the audit log', async () => {
    const holders = keys(3);
    const result = await root.rekeyShares({
      threshold: 2,
      shareCount: 3,
      holderPublicKeys: holders.map((h) => h.publicKey),
      actor: 'quorum:alice+bob',
      correlationId: 'corr-1',
    });
    const fresh = opened(result, holders);
    root.seal('test');
    await unsealWith(root, fresh.slice(0, 2));
    const rec = audit.events.filter((e) => e.action === 'core.shares_rekey');
    assert.equal(rec.length, 1);
    assert.equal(rec[0]?.outcome, 'success');
    assert.equal(rec[0]?.actor, 'quorum:alice+bob');
    assert.equal(rec[0]?.correlationId, 'corr-1');
    const log = JSON.stringify(audit.events);
    for (const s of [...fresh, ...oldShares])
      assert.ok(!log.includes(s.slice(20, 80)), 'a signed share in the audit log');
    for (const s of result.sealedShares) {
      const sealed = JSON.parse(s.payload).sealed as string;
      assert.ok(!log.includes(sealed.slice(0, 40)), 'a sealed share in the audit log');
    }
    assert.doesNotMatch(log, /okcm-signed-share|okcm-sealed-share/);
  });

  it('re-keys the recovery shares of an auto-unseal cluster; auto-unseal keeps working', async () => {
    const provider = new DevSealProvider({ keyFile: join(dir, 'dev-seal.key') }, { devMode: true, crypto });
    try {
      const auto = (await openCore({ sealProvider: provider, db: 'auto.db' })).root;
      const recovery = (await auto.init({ threshold: 2, shareCount: 3 })).shares.map((s) => s.payload);
      await auto.confirmInit();
      const holders = keys(3);
      const result = await auto.rekeyShares({
        threshold: 2,
        shareCount: 3,
        holderPublicKeys: holders.map((h) => h.publicKey),
      });
      auto.seal('test');
      assert.equal(await auto.autoUnseal({ attempts: 1, baseMs: 1, maxMs: 1 }), true);
      auto.seal('test');
      assert.equal(await codeOf(auto.submitShare(recovery[0] as string)), 'foreign_share');
      await unsealWith(auto, opened(result, holders).slice(0, 2));
    } finally {
      await provider.close();
    }
  });
});

describe('shares.rekey executor', () => {
  const b64 = (n: number) => Array.from({ length: n }, () => generateHolderKeypair().publicKey.toString('base64'));

  it('validates threshold, shares and holder keys', () => {
    const k = b64(MAX_REKEY_SHARES + 1);
    const ok = validateRekeyParams({ threshold: 2, shares: 3, holderPublicKeys: [` ${k[0]}\n`, k[1], k[2]] });
    assert.deepEqual(ok, { threshold: 2, shares: 3, holderPublicKeys: k.slice(0, 3) });
    const cases: [unknown, string][] = [
      [null, 'bad_request'],
      [[], 'bad_request'],
      [{ threshold: 2, shares: 3, holderPublicKeys: k.slice(0, 3), plain: true }, 'bad_request'],
      [{ threshold: '2', shares: 3, holderPublicKeys: k.slice(0, 3) }, 'bad_request'],
      [{ threshold: 2, shares: 3.5, holderPublicKeys: k.slice(0, 3) }, 'bad_request'],
      [{ threshold: 2, shares: 3 }, 'bad_request'],
      [{ threshold: 2, shares: 3, holderPublicKeys: [1, 2, 3] }, 'bad_request'],
      [{ threshold: 1, shares: 3, holderPublicKeys: k.slice(0, 3) }, 'invalid_shamir_parameters'],
      [{ threshold: 4, shares: 3, holderPublicKeys: k.slice(0, 3) }, 'invalid_shamir_parameters'],
      [{ threshold: 2, shares: MAX_REKEY_SHARES + 1, holderPublicKeys: k }, 'invalid_shamir_parameters'],
      [{ threshold: 2, shares: 3, holderPublicKeys: k.slice(0, 2) }, 'invalid_shamir_parameters'],
      [{ threshold: 2, shares: 3, holderPublicKeys: [k[0], k[1], k[0]] }, 'invalid_shamir_parameters'],
      [{ threshold: 2, shares: 3, holderPublicKeys: [k[0], k[1], 'not base64'] }, 'invalid_shamir_parameters'],
      [
        { threshold: 2, shares: 3, holderPublicKeys: [k[0], k[1], Buffer.alloc(32).toString('base64')] },
        'invalid_shamir_parameters',
      ],
    ];
    for (const [params, code] of cases)
      assert.equal(
        codeOfSync(() => validateRekeyParams(params)),
        code,
      );
  });

  it('never echoes a holder key in its errors', () => {
    const secretish = generateHolderKeypair().secretKey.toString('base64');
    try {
      validateRekeyParams({ threshold: 2, shares: 2, holderPublicKeys: [`${secretish}x`, secretish] });
      assert.fail('accepted');
    } catch (e) {
      assert.ok(e instanceof KcmError);
      assert.ok(!e.message.includes(secretish.slice(0, 16)));
    }
  });

  it('re-keys through a four-eyes quorum; the stored result holds sealed shares only and fits', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kcm-rekey-quorum-'));
    const raw = await openStore({ kind: 'sqlite', path: join(dir, 'core.db') });
    const audit = new MemoryAuditSink();
    const store = new IntegrityStore(raw);
    const root = new RootOfTrust({ crypto, store, region: 'eu-1', sealProvider: null, ivkPolicy: policy, audit });
    try {
      await root.load();
      const old = (await root.init({ threshold: 2, shareCount: 3 })).shares.map((s) => s.payload);
      await root.confirmInit();
      const registry = new ExecutorRegistry().register('shares.rekey', sharesRekeyExecutor(root));
      const approvals = new ApprovalService({ store, registry, audit, log: () => {} });
      const holders = Array.from({ length: MAX_REKEY_SHARES }, () => generateHolderKeypair());
      const params = {
        threshold: 3,
        shares: MAX_REKEY_SHARES,
        holderPublicKeys: holders.map((h) => h.publicKey.toString('base64')),
      };
      const proposed = await approvals.propose('shares.rekey', params, 'alice');
      assert.equal(proposed.state, 'PENDING');
      assert.equal(root.status().threshold, 2, 'nothing happens before the quorum');
      const done = await approvals.approve(proposed.id, 'bob');
      assert.equal(done.state, 'EXECUTED');
      assert.equal(done.outcome, 'succeeded');
      const result = done.result as unknown as RekeyResult;
      assert.equal(result.sealedShares.length, MAX_REKEY_SHARES);
      assert.ok(canonicalParams(result).length <= 8 * 1024);
      const stored = JSON.stringify((await store.getApproval(proposed.id))?.result);
      assert.doesNotMatch(stored, /okcm-signed-share/);
      const rec = audit.events.find((e) => e.action === 'core.shares_rekey');
      assert.equal(rec?.actor, 'quorum:alice+bob');

      root.seal('test');
      assert.equal(await codeOf(root.submitShare(old[0] as string)), 'foreign_share');
      const fresh = result.sealedShares.map((s) =>
        openSealedShare(s.payload, (holders[s.index - 1] as HolderKeypair).secretKey),
      );
      for (const s of fresh.slice(0, 3)) await root.submitShare(s);
      assert.equal(root.state, 'active');
    } finally {
      root.seal('test');
      await raw.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses, with nothing stored, a result too large for the approval record', async () => {
    let committed = false;
    const fake = {
      rekeyShares: async (req: { beforeCommit?: (r: RekeyResult) => void }) => {
        const big: RekeyResult = {
          clusterId: 'kcm-1',
          splitId: '00'.repeat(16),
          threshold: 2,
          shareCount: 2,
          sealedShares: [{ index: 1, payload: 'x'.repeat(9000) }],
          manifest: {} as RekeyResult['manifest'],
        };
        req.beforeCommit?.(big);
        committed = true;
        return big;
      },
    };
    const exec = sharesRekeyExecutor(fake as never);
    const p = validateRekeyParams({ threshold: 2, shares: 2, holderPublicKeys: b64(2) });
    assert.equal(
      await codeOf(
        exec.execute(p, { approvalId: 'a', operation: 'shares.rekey', proposer: 'x', approvers: ['x', 'y'] }),
      ),
      'bad_request',
    );
    assert.equal(committed, false);
  });

  it('hands the issued sealed shares to keep() before the commit; a keep() that throws aborts the re-key', async () => {
    const calls: string[] = [];
    const fake = {
      rekeyShares: async (req: { beforeCommit?: (r: RekeyResult) => void }) => {
        const r: RekeyResult = {
          clusterId: 'kcm-1',
          splitId: '00'.repeat(16),
          threshold: 2,
          shareCount: 2,
          sealedShares: [{ index: 1, payload: '{}' }],
          manifest: {} as RekeyResult['manifest'],
        };
        req.beforeCommit?.(r);
        calls.push('commit');
        return r;
      },
    };
    const ctx = { approvalId: 'ap-1', operation: 'shares.rekey', proposer: 'x', approvers: ['y'] };
    const p = validateRekeyParams({ threshold: 2, shares: 2, holderPublicKeys: b64(2) });
    const kept = sharesRekeyExecutor(fake as never, { keep: (id, r) => calls.push(`keep ${id} ${r.splitId}`) });
    await kept.execute(p, ctx);
    assert.deepEqual(calls, [`keep ap-1 ${'00'.repeat(16)}`, 'commit']);
    calls.length = 0;
    const failing = sharesRekeyExecutor(fake as never, {
      keep: () => {
        throw new Error('disk full');
      },
    });
    await assert.rejects(failing.execute(p, ctx), /disk full/);
    assert.deepEqual(calls, []);
  });
});
