/**
 * IntegrityStore over a real backend, schema v3 tables: every write is signed
 * with the record MAC, every read (get and list) verifies it, and a row edited
 * behind the store's back (raw SQL, as an attacker with database access
 * would) is refused with `record_tampered` and reported to onTamper. Key
 * events are signed over their store-assigned seq, so a swapped or replayed
 * seq fails too. Run by sqlite.test.ts and postgres.test.ts.
 */
import assert from 'node:assert/strict';
import { after, afterEach, beforeEach, describe, it } from 'node:test';
import { IntegrityStore, type IntegrityTx, type TamperEvent } from '../../../core/src/store/integrity-store.ts';
import {
  approvalFields,
  edgeFields,
  keyEventFields,
  l3Fields,
  l3ServiceFields,
  RecordMac,
  tenantFields,
} from '../../../core/src/store/record-mac.ts';
import type { KeyEventRecord } from '../../../core/src/store/records.ts';
import { defaultCrypto } from '../../../native/index.ts';
import { approvalRecord, edgeRecord, keyEvent, l3Record, l3ServiceRecord, tenantRecord } from './fixtures.ts';
import { rejectsWith, type StoreHarness } from './harness.ts';

/** Drops the `mac` a fixture carries: IntegrityTx writes take unsigned records. */
function unsigned<T extends { mac: Buffer }>(r: T): Omit<T, 'mac'> {
  const { mac: _mac, ...rest } = r;
  return rest;
}

const suspended = unsigned(
  tenantRecord('t1', { state: 'SUSPENDED', suspendedAt: 1_770_000_000_000, graceDays: 30, reason: 'operator' }),
);
const service = unsigned(l3ServiceRecord('t1', 'billing', { minDecryptVersion: 3 }));
const l3v1 = unsigned(l3Record('t1', 'billing', 1, { rotateAfter: 100 }));
const edge = unsigned(edgeRecord('edge-1', { ackedSeq: 2, ackedAt: 5 }));
const approval = unsigned(approvalRecord('req-1', { approvals: [{ actor: 'bob', at: 7 }] }));

interface TamperCase {
  table: TamperEvent['table'];
  id: string;
  /** Raw SQL that changes the stored row. */
  edit: string;
  /** Reads that must each refuse the row. */
  reads: ((st: IntegrityStore) => Promise<unknown>)[];
}

const TAMPER_CASES: TamperCase[] = [
  {
    table: 'tenants',
    id: 't1',
    edit: `UPDATE tenants SET state = 'ACTIVE', suspended_at = NULL, grace_days = NULL WHERE id = 't1'`,
    reads: [(st) => st.getTenant('t1'), (st) => st.listTenants('', 10)],
  },
  {
    table: 'tenants',
    id: 't1',
    edit: `UPDATE tenants SET l1_key_id = 'arn:aws:kms:eu-central-1:999999999999:key/evil' WHERE id = 't1'`,
    reads: [(st) => st.getTenant('t1')],
  },
  {
    table: 'l3_services',
    id: 't1/billing',
    edit: `UPDATE l3_services SET min_decrypt_version = 1`,
    reads: [(st) => st.getL3Service('t1', 'billing'), (st) => st.listL3Services('t1')],
  },
  {
    table: 'l3_keys',
    id: 't1/billing v1',
    edit: `UPDATE l3_keys SET state = 'ACTIVE', revoked_at = NULL, rotate_after = 50 WHERE version = 1`,
    reads: [
      (st) => st.getL3('t1', 'billing', 1),
      (st) => st.listL3('t1', 'billing'),
      (st) => st.listL3ByTenant('t1'),
      (st) => st.listL3DueForRotation(100, 10),
    ],
  },
  {
    table: 'key_events',
    id: 'seq 1',
    edit: `UPDATE key_events SET type = 'tenant.resumed' WHERE seq = 1`,
    reads: [(st) => st.listEventsAfter(0, 10)],
  },
  {
    table: 'edges',
    id: 'edge-1',
    edit: `UPDATE edges SET acked_seq = 999`,
    reads: [(st) => st.getEdge('edge-1'), (st) => st.listEdges()],
  },
  {
    table: 'approvals',
    id: 'req-1',
    edit: `UPDATE approvals SET approvals = '[{"actor":"bob","at":7},{"actor":"mallory","at":8}]'`,
    reads: [
      (st) => st.getApproval('req-1'),
      (st) => st.listApprovals(null, 10),
      (st) => st.listApprovals('PENDING', 1),
    ],
  },
];

export function runIntegrityContract(name: string, makeStore: () => Promise<StoreHarness>): void {
  describe(`IntegrityStore, schema v3 tables: ${name}`, () => {
    const masterKey = defaultCrypto().generateKey();
    after(() => masterKey.destroy());
    let h: StoreHarness;
    let st: IntegrityStore;
    let mac: RecordMac;
    let tampered: TamperEvent[];

    beforeEach(async () => {
      h = await makeStore();
      tampered = [];
      st = new IntegrityStore(h.store, (e) => tampered.push(e));
      mac = new RecordMac(masterKey);
      st.setMac(mac);
    });
    afterEach(async () => {
      st.setMac(null);
      await h.cleanup();
    });

    /** Writes one record of every v3 table (and two events), signed. */
    async function seed(): Promise<KeyEventRecord[]> {
      return st.transaction(async (tx: IntegrityTx) => {
        await tx.insertTenant(suspended);
        await tx.insertL3Service(service);
        await tx.insertL3(l3v1);
        await tx.upsertEdge(edge);
        await tx.insertApproval(approval);
        const e1 = await tx.appendEvent(keyEvent('t1', { type: 'tenant.suspended', service: null, version: null }));
        const e2 = await tx.appendEvent(keyEvent('t1'));
        return [e1, e2];
      });
    }

    it('signs every write with the record MAC and returns verified records from every read', async () => {
      const events = await seed();
      const signed = <T>(r: T, table: string, fields: (r: T) => (string | number | Buffer | null)[]) => ({
        ...r,
        mac: mac.mac(table, fields(r)),
      });
      const tenant = signed(suspended, 'tenants', tenantFields);
      assert.deepEqual(await st.getTenant('t1'), tenant);
      assert.deepEqual(await st.listTenants('', 5), [tenant]);
      assert.deepEqual(await st.getL3Service('t1', 'billing'), signed(service, 'l3_services', l3ServiceFields));
      const l3 = signed(l3v1, 'l3_keys', l3Fields);
      assert.deepEqual(await st.getL3('t1', 'billing', 1), l3);
      assert.deepEqual(await st.listL3DueForRotation(100, 5), [l3]);
      assert.deepEqual(await st.getEdge('edge-1'), signed(edge, 'edges', edgeFields));
      assert.deepEqual(await st.getApproval('req-1'), signed(approval, 'approvals', approvalFields));
      assert.deepEqual(
        events.map((e) => e.seq),
        [1, 2],
      );
      for (const e of events) assert.deepEqual(e.mac, mac.mac('key_events', keyEventFields(e)), 'MAC over the seq');
      assert.deepEqual(await st.listEventsAfter(0, 10), events);
      assert.equal(await st.latestEventSeq(), 2);
      // Updates are re-signed: the new row verifies.
      await st.transaction(async (tx) => {
        await tx.updateTenant({ ...suspended, state: 'ACTIVE', suspendedAt: null, graceDays: null, reason: null });
        await tx.updateL3({ ...l3v1, encryptions: 10 });
        await tx.updateL3Service({ ...service, minDecryptVersion: 4 });
        await tx.updateApproval({ ...approval, state: 'CANCELLED', decidedBy: 'alice', decidedAt: 9 });
        await tx.upsertEdge({ ...edge, ackedSeq: 2 });
        assert.equal((await tx.getTenant('t1'))?.state, 'ACTIVE', 'verified read inside the transaction');
      });
      assert.equal((await st.getL3('t1', 'billing', 1))?.encryptions, 10);
      assert.equal((await st.getL3Service('t1', 'billing'))?.minDecryptVersion, 4);
      assert.equal((await st.getApproval('req-1'))?.state, 'CANCELLED');
      assert.deepEqual(tampered, []);
    });

    for (const c of TAMPER_CASES) {
      it(`refuses a tampered ${c.table} row (${c.edit.slice(0, 48)}…) on every read`, async () => {
        await seed();
        for (const read of c.reads) await read(st); // verifies before the edit
        await h.sql(c.edit);
        for (const read of c.reads) await rejectsWith(read(st), 'record_tampered');
        assert.deepEqual(
          tampered,
          c.reads.map(() => ({ table: c.table, id: c.id })),
        );
      });
    }

    it('refuses key events whose seqs were swapped, and an event replayed at a new seq', async () => {
      await seed();
      await h.sql('UPDATE key_events SET seq = 100 WHERE seq = 1');
      await h.sql('UPDATE key_events SET seq = 1 WHERE seq = 2');
      await h.sql('UPDATE key_events SET seq = 2 WHERE seq = 100');
      await rejectsWith(st.listEventsAfter(0, 10), 'record_tampered');
      assert.deepEqual(tampered, [{ table: 'key_events', id: 'seq 1' }]);
      await rejectsWith(st.listEventsAfter(1, 10), 'record_tampered');

      const h2 = await makeStore();
      try {
        const st2 = new IntegrityStore(h2.store, (e) => tampered.push(e));
        st2.setMac(new RecordMac(masterKey));
        await st2.transaction(async (tx) => {
          await tx.appendEvent(keyEvent('t1', { type: 'tenant.revoked', service: null, version: null }));
        });
        await h2.sql(
          'INSERT INTO key_events (seq, type, tenant, service, version, created_at, mac) ' +
            'SELECT 2, type, tenant, service, version, created_at, mac FROM key_events WHERE seq = 1',
        );
        assert.equal((await h2.store.listEventsAfter(0, 10)).length, 2, 'the raw store returns the replayed row');
        await rejectsWith(st2.listEventsAfter(1, 10), 'record_tampered');
        assert.deepEqual(tampered.at(-1), { table: 'key_events', id: 'seq 2' });
        st2.setMac(null);
      } finally {
        await h2.cleanup();
      }
    });

    it('refuses an L3 row copied to another version or tenant', async () => {
      await seed();
      await h.sql(
        'INSERT INTO l3_keys (tenant, service, version, state, l2_version, wrapped, created_at, activated_at, ' +
          'rotate_after, expired_at, revoked_at, encryptions, mac) ' +
          "SELECT 't2', service, 2, state, l2_version, wrapped, created_at, activated_at, rotate_after, expired_at, " +
          'revoked_at, encryptions, mac FROM l3_keys WHERE version = 1',
      );
      assert.ok(await st.getL3('t1', 'billing', 1), 'the original still verifies');
      await rejectsWith(st.getL3('t2', 'billing', 2), 'record_tampered');
      assert.deepEqual(tampered, [{ table: 'l3_keys', id: 't2/billing v2' }]);
    });

    it('while sealed, every v3 read and every transaction throws sealed', async () => {
      await seed();
      st.setMac(null);
      const reads: (() => Promise<unknown>)[] = [
        () => st.getTenant('t1'),
        () => st.listTenants('', 1),
        () => st.getL3Service('t1', 'billing'),
        () => st.listL3Services('t1'),
        () => st.getL3('t1', 'billing', 1),
        () => st.listL3('t1', 'billing'),
        () => st.listL3ByTenant('t1'),
        () => st.listL3DueForRotation(100, 1),
        () => st.listEventsAfter(0, 1),
        () => st.latestEventSeq(),
        () => st.getEdge('edge-1'),
        () => st.listEdges(),
        () => st.getApproval('req-1'),
        () => st.listApprovals(null, 1),
        () => st.listL2('t1'),
        () => st.transaction(async () => {}),
      ];
      for (const read of reads) await rejectsWith(Promise.resolve().then(read), 'sealed');
      mac = new RecordMac(masterKey);
      st.setMac(mac);
    });
  });
}
