/**
 * An event line the edge cannot read (here: a type from a newer Core) must
 * not stop the stream for good: the edge drops that tenant's cached keys
 * (they are leased again), acknowledges the event, and applies the events
 * after it — a revocation behind it still reaches the edge at once.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { KeyEventType } from '../../../core/src/store/records.ts';
import { CoreEdgeClient } from '../../../gateway/src/keys/core-edge-client.ts';
import { type EdgeEnv, makeEdgeEnv } from '../../core/edge/edge-fixtures.ts';

const until = async (cond: () => boolean, ms: number, what: string) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
};

describe('edge event stream: unreadable events', () => {
  let env: EdgeEnv;
  let c: CoreEdgeClient;
  const logs: string[] = [];
  before(async () => {
    env = await makeEdgeEnv({ heartbeatMs: 100 });
    c = new CoreEdgeClient({
      url: env.server.url,
      tls: env.clientTls(env.pki.edgeA),
      crypto: env.crypto,
      backoff: { baseMs: 20, maxMs: 200 },
      log: (m) => logs.push(m),
    });
    c.start();
    await until(() => c.subscribed, 3000, 'the subscription');
  });
  after(async () => {
    await c.close();
    await env.cleanup();
  });

  it('drops the named tenant’s keys, acknowledges, and goes on to apply the revocation behind it', async () => {
    const a = await c.encryptionKey('tenant-a', 'orders');
    // A line of a type this edge does not know, as a newer Core would send it (the store here refuses
    // unknown types, so it goes to the stream through the bus only; a real event then takes its seq).
    const head = await env.publish('l3.rotated', 'tenant-a', 'other', 2);
    await until(() => c.eventSeq.applied >= head.seq, 2000, 'the first event');
    assert.equal(a.key.info().destroyed, false);
    const odd = { ...head, seq: head.seq + 1, type: 'tenant.renamed' as KeyEventType, tenant: 'tenant-a' };
    env.bus.notify([odd]);
    await until(() => c.eventSeq.applied >= odd.seq, 2000, 'the unreadable event to count as applied');
    assert.equal(a.key.info().destroyed, true, "tenant-a's cached key dropped");
    assert.ok(logs.some((l) => l.includes('unreadable') && l.includes('tenant-a')));
    const again = await c.encryptionKey('tenant-a', 'orders');
    assert.equal(again.version, a.version, 'leased again from the Core');
    await env.store.transaction((tx) =>
      tx.appendEvent({
        type: 'tenant.resumed',
        tenant: 'tenant-b',
        service: null,
        version: null,
        createdAt: Date.now(),
      }),
    );
    const revoked = await env.publish('tenant.revoked', 'tenant-a');
    assert.equal(revoked.seq, odd.seq + 1);
    await until(() => c.eventSeq.applied >= revoked.seq, 2000, 'the revocation behind it');
    assert.equal(again.key.info().destroyed, true);
    await assert.rejects(c.encryptionKey('tenant-a', 'orders'), { code: 'tenant_revoked' });
  });
});
