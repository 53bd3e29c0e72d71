/**
 * OTLP/HTTP JSON export against a real local collector (node:http on port 0):
 * lines arrive in order with the exact log bytes as bodies; a slow or failing
 * collector never blocks appends; the queue is bounded (drop-oldest, counted).
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { AuditLog } from '../../../common/src/audit/audit-log.ts';
import { OtlpShipper } from '../../../common/src/audit/otlp-shipper.ts';
import { readLinesOf, tempDir } from './log-fixture.ts';

interface Collector {
  url: string;
  bodies: string[];
  server: Server;
  mode: { status: number; delayMs: number };
}

async function collector(): Promise<Collector> {
  const bodies: string[] = [];
  const mode = { status: 200, delayMs: 0 };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      setTimeout(() => {
        if (req.url !== '/v1/logs' || req.headers['content-type'] !== 'application/json') res.statusCode = 404;
        else {
          res.statusCode = mode.status;
          if (mode.status === 200) bodies.push(Buffer.concat(chunks).toString('utf8'));
        }
        res.end('{}');
      }, mode.delayMs);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, bodies, server, mode };
}

function shippedLines(c: Collector): string[] {
  return c.bodies.flatMap((b) => {
    const req = JSON.parse(b) as {
      resourceLogs: { scopeLogs: { logRecords: { body: { stringValue: string } }[] }[] }[];
    };
    return req.resourceLogs.flatMap((rl) => rl.scopeLogs.flatMap((s) => s.logRecords.map((l) => l.body.stringValue)));
  });
}

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function setup(o: { maxQueue?: number; retryBaseMs?: number } = {}) {
  const c = await collector();
  cleanups.push(() => new Promise<void>((r) => c.server.close(() => r())));
  const shipper = new OtlpShipper({ url: c.url, batchSize: 100, timeoutMs: 5000, log: () => {}, ...o });
  cleanups.push(() => shipper.close());
  const d = tempDir();
  cleanups.push(d.cleanup);
  const path = join(d.dir, 'audit.jsonl');
  const log = new AuditLog({ path, checkpointIntervalMs: 0, fsync: false, onDurable: shipper.enqueue });
  return { c, shipper, log, path };
}

describe('OtlpShipper', () => {
  it('delivers every durable line, in order, with the exact bytes and searchable attributes', async () => {
    const { c, shipper, log, path } = await setup();
    for (let i = 0; i < 20; i++)
      log.record({
        action: 'key.decrypt',
        outcome: i === 3 ? 'failure' : 'success',
        tenant: 'acme',
        correlationId: '4bf92f3577b34da6a3ce929d0e0e4736',
      });
    log.close();
    assert.equal(await shipper.flush(), true);
    assert.deepEqual(shippedLines(c), readLinesOf(path));
    const reqs = c.bodies.map((b) => JSON.parse(b));
    const records = reqs.flatMap((q) => q.resourceLogs[0].scopeLogs[0].logRecords);
    const rec = records.find((l: { attributes: { key: string }[] }) =>
      l.attributes.some((a) => a.key === 'audit.action'),
    );
    assert.equal(rec.traceId, '4bf92f3577b34da6a3ce929d0e0e4736');
    assert.deepEqual(reqs[0].resourceLogs[0].resource.attributes, [
      { key: 'service.name', value: { stringValue: 'openkcm' } },
    ]);
    assert.match(rec.timeUnixNano, /^\d{19}$/);
  });

  it('a slow collector never blocks appends; the bounded queue drops the oldest and counts them', async () => {
    const { c, shipper, log } = await setup({ maxQueue: 50 });
    c.mode.delayMs = 1500;
    const t0 = performance.now();
    const appends: Promise<void>[] = [];
    for (let i = 0; i < 2000; i++) appends.push(log.append({ action: 'key.encrypt', outcome: 'success' }));
    await Promise.all(appends);
    const ms = performance.now() - t0;
    assert.ok(ms < 1000, `2000 appends took ${ms} ms behind a 1.5 s collector`);
    assert.ok(shipper.queued <= 50);
    assert.ok(shipper.stats.dropped >= 1900, `dropped ${shipper.stats.dropped}`);
    log.close();
  });

  it('a failing collector is retried with backoff, and the lines arrive once it recovers', async () => {
    const { c, shipper, log, path } = await setup({ retryBaseMs: 20 });
    c.mode.status = 503;
    log.record({ action: 'key.decrypt', outcome: 'success' });
    await new Promise((r) => setTimeout(r, 100));
    assert.ok(shipper.stats.failures >= 1);
    log.record({ action: 'key.decrypt', outcome: 'success' });
    c.mode.status = 200;
    log.close();
    assert.equal(await shipper.flush(3000), true);
    assert.deepEqual(shippedLines(c), readLinesOf(path));
  });
});
