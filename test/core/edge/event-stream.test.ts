/**
 * GET /v1/edge/events and POST /v1/edge/ack over real mTLS: hello, backlog
 * replay from a seq, live events, tenant filtering, heartbeats, acks stored
 * and reported by the operator view (edgeAckStatus).
 */
import assert from 'node:assert/strict';
import type { ClientHttp2Session } from 'node:http2';
import { after, before, describe, it } from 'node:test';
import { parseWireLine, type WireStreamLine } from '../../../common/src/format/edge-wire.ts';
import { type EdgeEnv, h2Connect, h2Json, makeEdgeEnv } from './edge-fixtures.ts';

/** Opens an event stream and collects its lines. */
function subscribe(s: ClientHttp2Session, afterSeq: number) {
  const lines: WireStreamLine[] = [];
  const req = s.request({ ':method': 'GET', ':path': `/v1/edge/events?after=${afterSeq}` });
  let buf = '';
  let status = 0;
  req.setEncoding('utf8');
  req.on('response', (h) => {
    status = Number(h[':status']);
  });
  req.on('data', (c: string) => {
    buf += c;
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      lines.push(parseWireLine(buf.slice(0, nl)));
      buf = buf.slice(nl + 1);
    }
  });
  req.on('error', () => {});
  return {
    lines,
    close: () => req.close(),
    status: () => status,
    events: () => lines.filter((l) => l.kind === 'event'),
  };
}

const until = async (cond: () => boolean, ms: number, what: string) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
};

describe('edge event stream', () => {
  let env: EdgeEnv;
  let a: ClientHttp2Session;
  let b: ClientHttp2Session;
  before(async () => {
    env = await makeEdgeEnv({ heartbeatMs: 50 });
    a = await h2Connect(env.server.url, env.pki.ca.certPem, env.pki.edgeA);
    b = await h2Connect(env.server.url, env.pki.ca.certPem, env.pki.edgeB);
  });
  after(async () => {
    a.close();
    b.close();
    await env.cleanup();
  });

  it('replays the backlog after a seq, then streams live events of allowed tenants only, with heartbeats', async () => {
    const e1 = await env.publish('l3.rotated', 'tenant-a', 'orders', 3);
    await env.publish('tenant.suspended', 'tenant-b');
    const e3 = await env.publish('l3.revoked', 'tenant-a', 'orders', 1);
    const sa = subscribe(a, 0);
    const sb = subscribe(b, 0);
    await until(() => sa.events().length === 2 && sb.events().length === 1, 2000, 'backlog');
    assert.equal(sa.status(), 200);
    const hello = sa.lines[0];
    assert.equal(hello?.kind, 'hello');
    assert.equal(hello?.kind === 'hello' && hello.edgeId, 'edge-a');
    assert.deepEqual(
      sa.events().map((e) => e.kind === 'event' && [e.seq, e.type, e.tenant]),
      [
        [e1.seq, 'l3.rotated', 'tenant-a'],
        [e3.seq, 'l3.revoked', 'tenant-a'],
      ],
    );
    assert.deepEqual(
      sb.events().map((e) => e.kind === 'event' && e.tenant),
      ['tenant-b'],
    );
    const live = await env.publish('tenant.revoked', 'tenant-a');
    await until(() => sa.events().some((e) => e.kind === 'event' && e.seq === live.seq), 1000, 'live event');
    await until(() => sa.lines.filter((l) => l.kind === 'heartbeat').length >= 2, 1000, 'heartbeats');
    assert.ok(!sb.events().some((e) => e.kind === 'event' && e.tenant === 'tenant-a'), 'edge-b never sees tenant-a');
    sa.close();
    sb.close();
    // Reconnect after e1: only what came later is replayed.
    const again = subscribe(a, e1.seq);
    await until(() => again.events().length === 2, 1000, 'replay after seq');
    assert.deepEqual(
      again.events().map((e) => e.kind === 'event' && e.seq),
      [e3.seq, live.seq],
    );
    again.close();
    const bad = await h2Json(a, 'GET', '/v1/edge/events?after=x');
    assert.equal(bad.status, 400);
  });

  it('stores acks (monotonic) and reports which edges have and have not acked an event', async () => {
    const e = await env.publish('tenant.revoked', 'tenant-b');
    // edge-b connects (and so is known) but has not acked yet.
    const before = await env.server.ackStatus(e.seq);
    assert.deepEqual(
      before.pending.map((p) => p.edgeId),
      ['edge-b'],
    );
    assert.deepEqual(before.notConcerned, ['edge-a']);
    const r = await h2Json(b, 'POST', '/v1/edge/ack', { seq: e.seq });
    assert.equal(r.status, 200);
    assert.equal(r.body.ackedSeq, e.seq);
    const older = await h2Json(b, 'POST', '/v1/edge/ack', { seq: 1 });
    assert.equal(older.body.ackedSeq, e.seq, 'an older ack never lowers the mark');
    assert.equal((await env.store.getEdge('edge-b'))?.ackedSeq, e.seq);
    const status = await env.server.ackStatus(e.seq);
    assert.deepEqual(
      status.acked.map((x) => x.edgeId),
      ['edge-b'],
    );
    assert.equal(status.event.type, 'tenant.revoked');
    assert.deepEqual(status.pending, []);
    assert.equal((await h2Json(b, 'POST', '/v1/edge/ack', { seq: e.seq + 1 })).status, 400, 'no ack past the head');
    assert.equal((await h2Json(b, 'POST', '/v1/edge/ack', {})).status, 400);
    await assert.rejects(env.server.ackStatus(e.seq + 100), { code: 'store_not_found' });
  });

  it('answers 503 sealed, with no stream, while the Core is sealed', async () => {
    env.store.setMac(null);
    const r = await h2Json(a, 'GET', '/v1/edge/events?after=0');
    assert.equal(r.status, 503);
    assert.equal(r.body.error.code, 'sealed');
    assert.equal((await h2Json(a, 'POST', '/v1/edge/ack', { seq: 1 })).status, 503);
  });
});
