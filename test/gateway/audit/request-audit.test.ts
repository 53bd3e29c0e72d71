/**
 * The gateway's audit stage (gateway/src/audit/request-audit.ts) over a real
 * tamper-evident AuditLog in a temp directory: one record per request of a
 * route that uses keys, refusals included, written before the answer leaves;
 * nothing of a value in any record; the log verifies; an audit log that
 * cannot be written turns the answer into 503 with nothing of the result.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { AuditLog } from '../../../common/src/audit/audit-log.ts';
import { verifyAuditLog } from '../../../common/src/audit/audit-verifier.ts';
import { KcmError } from '../../../common/src/errors.ts';
import { auditEventOf } from '../../../gateway/src/audit/request-audit.ts';
import { gatewayConfig } from '../../../gateway/src/gateway-config.ts';
import { LocalGatewayKeys } from '../../../gateway/src/gateway-keys.ts';
import { proxyMatcher } from '../../../gateway/src/proxy/proxy-routes.ts';
import { startConfiguredGateway } from '../../../gateway/src/start-configured-gateway.ts';
import { UpstreamPools, upstreamOptions } from '../../../gateway/src/upstream/upstream-pools.ts';
import { type Fixture, postJson, startFixture } from '../api/gateway-fixture.ts';
import { call, type ProxyFixture, policySetOf, startProxyFixture } from '../proxy/proxy-fixture.ts';

const MARKER = 'AUDIT-MARKER-4111-1111-1111-1111';

interface EventLine {
  type: string;
  action?: string;
  outcome?: string;
  actor?: string;
  resource?: string;
  tenant?: string;
  correlationId?: string;
  reason?: string;
}

function events(path: string): EventLine[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as EventLine)
    .filter((l) => l.type === 'event');
}

describe('gateway audit stage: a real audit log', () => {
  let dir: string;
  let log: AuditLog;
  let f: Fixture;
  const file = () => join(dir, 'gateway-audit.log');

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'okcm-gw-audit-'));
    log = new AuditLog({ path: file() });
    f = await startFixture({ auditLog: log });
  });
  after(async () => {
    await f.close();
    log.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('records each key access before answering, refusals with their reasons, and nothing of a value', async () => {
    const hz = await request(`${f.base.uws}/healthz`, { dispatcher: f.agent });
    await hz.body.text();
    const enc = await postJson(
      f,
      `${f.base.uws}/v1/encrypt/orders`,
      { plaintext: MARKER, encoding: 'utf8' },
      {
        'x-okcm-tenant': 't1',
        'x-correlation-id': 'audit-corr-1',
      },
    );
    assert.equal(enc.status, 200);
    // The answer was released after its record was durable: it is in the file now.
    const afterEncrypt = events(file());
    assert.equal(afterEncrypt.length, 1, 'healthz leaves no record; the encrypt one is written');
    const ct = enc.json.data.ciphertext as string;
    // No key in the path: the record names the version the ciphertext was opened with.
    const dec = await postJson(f, `${f.base.uws}/v1/decrypt`, { ciphertext: ct, encoding: 'utf8' });
    assert.equal(dec.status, 200);
    assert.equal(dec.json.data.plaintext, MARKER);
    const wrong = await postJson(f, `${f.base.plain}/v1/decrypt/orders`, {
      ciphertext: ct,
      context: Buffer.from('another record').toString('base64'),
    });
    assert.equal(wrong.json.error.code, 'decryption_failed', JSON.stringify(wrong.json));
    const refused = await postJson(f, `${f.base.uws}/v1/encrypt/orders`, { plaintext: 'AAAA' }, {});
    // No tenant named (a trusted peer must name one): refused before any key is touched, and recorded.
    assert.equal(refused.status, 400);
    const odd = await postJson(
      f,
      `${f.base.uws}/v1/encrypt/orders`,
      { plaintext: 'AAAA' },
      {
        'x-okcm-tenant': 't1',
        'x-correlation-id': 'a~b',
      },
    );
    assert.equal(odd.status, 200, 'a correlation id the record cannot hold does not refuse the request');

    const ev = events(file());
    assert.equal(ev.length, 5);
    const [e1, e2, e3, e4, e5] = ev as [EventLine, EventLine, EventLine, EventLine, EventLine];
    assert.deepEqual(
      { action: e1.action, outcome: e1.outcome, resource: e1.resource, tenant: e1.tenant, cid: e1.correlationId },
      { action: 'gateway.encrypt', outcome: 'success', resource: 'keys orders v1', tenant: 't1', cid: 'audit-corr-1' },
    );
    assert.equal(e1.actor, 'peer 127.0.0.1');
    assert.equal(e1.reason, undefined);
    assert.deepEqual([e2.action, e2.outcome, e2.resource], ['gateway.decrypt', 'success', 'keys orders v1']);
    assert.deepEqual([e3.action, e3.outcome, e3.tenant], ['gateway.decrypt', 'failure', 't1']);
    // The client saw only the opaque code; the record says why.
    assert.match(e3.reason ?? '', /^decryption_failed; /);
    assert.ok((e3.reason ?? '').length > 'decryption_failed; '.length);
    assert.doesNotMatch(JSON.stringify(wrong.json), new RegExp((e3.reason ?? '').split('; ')[1] ?? '^$'));
    assert.deepEqual([e4.action, e4.outcome], ['gateway.encrypt', 'failure']);
    assert.equal(e4.reason, refused.json.error.code);
    assert.equal(e5.correlationId, undefined);
    assert.match(e5.reason ?? '', /correlation id not recordable/);

    const text = readFileSync(file(), 'utf8');
    for (const secret of [MARKER, Buffer.from(MARKER).toString('base64'), ct]) {
      assert.ok(!text.includes(secret), 'no value and no ciphertext in the audit log');
    }
  });

  it('the log verifies (chain, signed checkpoints) once closed', async () => {
    const probe = await postJson(f, `${f.base.uws}/v1/datakey/wrapped/orders`, {});
    assert.equal(probe.status, 200);
    log.close();
    const r = verifyAuditLog(file(), { publicKey: log.publicKey });
    assert.equal(r.ok, true, JSON.stringify(r.firstBad));
    assert.equal(r.events, 6);
    assert.equal(events(file()).at(-1)?.action, 'gateway.datakey');
  });
});

describe('gateway audit stage: fail closed', () => {
  let f: Fixture;
  let ciphertext: string;
  let failing = false;
  const appended: string[] = [];

  before(async () => {
    f = await startFixture({
      auditLog: {
        append: (e) => {
          if (failing) return Promise.reject(new KcmError('audit_unavailable', 'disk full'));
          appended.push(e.action);
          return Promise.resolve();
        },
      },
    });
    const enc = await postJson(f, `${f.base.uws}/v1/encrypt/orders`, { plaintext: MARKER, encoding: 'utf8' });
    ciphertext = enc.json.data.ciphertext;
  });
  after(() => f.close());

  it('an append that fails answers 503 audit_unavailable: no plaintext, ciphertext or data key leaves', async () => {
    failing = true;
    try {
      for (const base of [f.base.uws, f.base.plain]) {
        const dec = await postJson(f, `${base}/v1/decrypt/orders`, { ciphertext, encoding: 'utf8' });
        assert.equal(dec.status, 503);
        assert.equal(dec.json.error.code, 'audit_unavailable');
        const enc = await postJson(f, `${base}/v1/encrypt/orders`, { plaintext: MARKER, encoding: 'utf8' });
        assert.equal(enc.status, 503);
        const dk = await postJson(f, `${base}/v1/datakey/plaintext/orders`, {});
        assert.equal(dk.status, 503);
        for (const r of [dec, enc, dk]) {
          const text = JSON.stringify(r.json);
          assert.ok(!text.includes(MARKER) && !text.includes('okcm:') && !text.includes('plaintext'), text);
        }
      }
      // Not audited routes do not depend on the audit log.
      const hz = await request(`${f.base.uws}/healthz`, { dispatcher: f.agent });
      assert.equal(hz.statusCode, 200);
      await hz.body.text();
    } finally {
      failing = false;
    }
    const ok = await postJson(f, `${f.base.uws}/v1/decrypt/orders`, { ciphertext, encoding: 'utf8' });
    assert.equal(ok.status, 200, 'the next append that works serves again');
    assert.deepEqual(appended, ['gateway.encrypt', 'gateway.decrypt']);
  });
});

describe('auditEventOf', () => {
  const ctx = (o: Record<string, unknown>) =>
    ({ correlationId: 'c-1', routeName: 'decrypt', peer: { address: '10.0.0.9' }, aborted: false, ...o }) as never;

  it('names a certificate caller by CN, a trusted peer as peer, no caller by its address', () => {
    assert.equal(auditEventOf(ctx({ caller: { kind: 'certificate', id: 'app-a' } }), 'gateway.decrypt').actor, 'app-a');
    assert.equal(
      auditEventOf(ctx({ caller: { kind: 'trusted-peer', id: '127.0.0.1' } }), 'gateway.decrypt').actor,
      'peer 127.0.0.1',
    );
    assert.equal(auditEventOf(ctx({}), 'gateway.decrypt').actor, 'unidentified 10.0.0.9');
    // A trusted peer naming the reader of a decrypting proxy route: who received the plaintext is in the record.
    const peer = { kind: 'trusted-peer', id: '127.0.0.1' };
    assert.equal(
      auditEventOf(ctx({ caller: peer, auditReader: { identity: 'billing', roles: [] } }), 'gateway.proxy').actor,
      'peer 127.0.0.1 for billing',
    );
    assert.equal(
      auditEventOf(ctx({ caller: peer, auditReader: { roles: ['support', 'audit'] } }), 'gateway.proxy').actor,
      'peer 127.0.0.1 for no identity (roles support, audit)',
    );
    assert.equal(
      auditEventOf(ctx({ caller: peer, auditReader: { roles: [] } }), 'gateway.proxy').actor,
      'peer 127.0.0.1',
    );
  });

  it('resource: the versions used, else the key a direct request named, else the route; a tenant only when it is a tenant id', () => {
    assert.equal(auditEventOf(ctx({ keyId: 'orders' }), 'a.b').resource, 'key orders');
    assert.equal(
      auditEventOf(ctx({ keyId: 'orders', auditKeys: ['orders v1', 'orders v2'] }), 'gateway.rewrap').resource,
      'keys orders v1, orders v2',
    );
    assert.equal(
      auditEventOf(ctx({ routeName: 'proxy p POST /orders', auditKeys: ['orders v3'] }), 'gateway.proxy').resource,
      'proxy p POST /orders: keys orders v3',
    );
    assert.equal(auditEventOf(ctx({ routeName: 'proxy p POST /orders' }), 'a.b').resource, 'proxy p POST /orders');
    assert.equal(auditEventOf(ctx({ tenant: 't1' }), 'a.b').tenant, 't1');
    assert.equal(auditEventOf(ctx({ tenant: 'NOT A TENANT' }), 'a.b').tenant, undefined);
  });

  it('a correlation id the redaction guard would replace is left out, not redacted with an alert per request', () => {
    const e = auditEventOf(ctx({ correlationId: 'a'.repeat(64) }), 'a.b');
    assert.equal(e.correlationId, undefined);
    assert.equal(e.reason, 'correlation id not recordable');
  });

  it('a request whose client went away is a failure, even when the stages succeeded', () => {
    assert.equal(auditEventOf(ctx({ aborted: true }), 'gateway.decrypt').outcome, 'failure');
  });

  it('reason: the error code, then the kept reasons, then an abort', () => {
    const e = auditEventOf(
      ctx({ error: new KcmError('field_decryption_failed'), auditReasons: ['$.a: wrong_tenant'], aborted: true }),
      'gateway.proxy',
    );
    assert.equal(e.outcome, 'failure');
    assert.equal(e.reason, 'field_decryption_failed; $.a: wrong_tenant; client went away');
    assert.equal(auditEventOf(ctx({}), 'gateway.proxy').reason, undefined);
  });
});

describe('which proxy routes are audited', () => {
  it('a route with field rules (either direction) is `gateway.proxy`; a pass-through route is not audited', async () => {
    const pools = new UpstreamPools(upstreamOptions({}));
    try {
      const policies = policySetOf({
        id: 'audit',
        key: 'orders',
        upstreams: { app: 'http://127.0.0.1:1' },
        defaults: {
          tenant: { from: 'header', header: 'x-tenant-id', trustedPeers: ['127.0.0.1'] },
          readers: { identities: ['billing'], others: 'mask' },
        },
        routes: [
          { method: 'POST', path: '/in', upstream: 'app', request: [{ select: '$.a' }] },
          { method: 'GET', path: '/out', upstream: 'app', response: [{ select: '$.a' }] },
          { method: 'GET', path: '/raw', upstream: 'app' },
        ],
      });
      const keys = new LocalGatewayKeys();
      const m = proxyMatcher({ policies, keys, pools });
      keys.close();
      assert.deepEqual(
        m.routes.map((r) => [r.pattern, r.audit]),
        [
          ['/in', 'gateway.proxy'],
          ['/out', 'gateway.proxy'],
          ['/raw', undefined],
        ],
      );
    } finally {
      await pools.close(true);
    }
  });
});

describe('gateway audit on proxy routes: a field encryption is recorded before the forward', () => {
  let dir: string;
  let log: AuditLog;
  let f: ProxyFixture;
  let failing = false;
  /** How many requests the upstream had received when each record became durable. */
  const receivedAtDurable: number[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'okcm-gw-audit-fwd-'));
    log = new AuditLog({ path: join(dir, 'gateway.log'), checkpointIntervalMs: 0 });
    f = await startProxyFixture({
      auditLog: {
        append: (e) =>
          failing
            ? Promise.reject(new KcmError('audit_unavailable', 'disk full'))
            : log.append(e).then(() => {
                receivedAtDurable.push(f.up.received.length);
              }),
      },
    });
  });
  after(async () => {
    await f.close();
    log.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('durable before the upstream sees the ciphertext; a decrypted answer is recorded before it leaves; a log that fails refuses before the forward', async () => {
    const post = (id: string) =>
      call(f, `${f.base.uws}/orders`, {
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ id, card: { number: MARKER } }),
      });
    const stored = await post('o1');
    assert.equal(stored.status, 201);
    assert.deepEqual(receivedAtDurable, [0], 'the record was durable before the upstream received the request');
    const read = await call(f, `${f.base.uws}/orders/1`, { headers: { 'x-okcm-caller': 'billing' } });
    assert.equal(read.status, 200);
    assert.ok(read.body.toString().includes(MARKER));
    assert.deepEqual(
      receivedAtDurable,
      [0, 2],
      'the decrypt record is written once the upstream answered, before the client',
    );
    const ev = events(join(dir, 'gateway.log'));
    assert.deepEqual(
      ev.map((e) => [e.action, e.outcome, e.resource]),
      [
        ['gateway.proxy', 'success', 'proxy proxytest POST /orders: keys orders v1'],
        ['gateway.proxy', 'success', 'proxy proxytest GET /orders/:id: keys orders v1'],
      ],
      'one record per request that went well',
    );

    failing = true;
    try {
      const refused = await post('o2');
      assert.equal(refused.status, 503);
      assert.equal(refused.json().error.code, 'audit_unavailable');
      assert.doesNotMatch(refused.json().error.message, /reached the upstream/, 'refused before the forward');
      assert.ok(!refused.body.toString().includes('okcm:') && !refused.body.toString().includes(MARKER));
      assert.equal(f.up.received.length, 2, 'nothing reached the upstream: a retry cannot store the order twice');
    } finally {
      failing = false;
    }
    assert.equal((await post('o3')).status, 201);
    assert.equal(f.up.received.length, 3);
    failing = true;
    try {
      const withheld = await call(f, `${f.base.uws}/orders/1`, { headers: { 'x-okcm-caller': 'billing' } });
      assert.equal(withheld.status, 503);
      assert.match(withheld.json().error.message, /the request reached the upstream; its answer is withheld/);
      assert.ok(!withheld.body.toString().includes(MARKER), 'the decrypted answer is withheld');
    } finally {
      failing = false;
    }
  });
});

describe('gateway audit at shutdown', () => {
  it('a request cut short by the close still writes its record before the log closes with its checkpoint; an OTLP collector gets every line as written', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'okcm-audit-close-'));
    // An OpenTelemetry collector stand-in speaking OTLP/HTTP JSON logs: the bodies it was sent.
    const exported: string[] = [];
    const collector = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => {
        body += c;
      });
      req.on('end', () => {
        const doc = JSON.parse(body) as {
          resourceLogs: { scopeLogs: { logRecords: { body: { stringValue: string } }[] }[] }[];
        };
        for (const rl of doc.resourceLogs)
          for (const sl of rl.scopeLogs) for (const r of sl.logRecords) exported.push(r.body.stringValue);
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((r) => collector.listen(0, '127.0.0.1', r));
    const collectorUrl = `http://127.0.0.1:${(collector.address() as net.AddressInfo).port}`;
    // An upstream that reads the request and never answers.
    const held = new Set<net.Socket>();
    const upstream = net.createServer((s) => {
      held.add(s);
      s.on('data', () => {});
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    const devBefore = process.env.KCM_DEV;
    process.env.KCM_DEV = '1';
    try {
      mkdirSync(join(dir, 'policies'));
      writeFileSync(
        join(dir, 'policies', 'a.routes.json'),
        JSON.stringify({
          id: 'close',
          key: 'orders',
          upstreams: { app: `http://127.0.0.1:${(upstream.address() as net.AddressInfo).port}` },
          defaults: {
            tenant: { from: 'header', header: 'x-tenant-id', trustedPeers: ['127.0.0.1'] },
            readers: { identities: ['billing'], others: 'mask' },
          },
          routes: [{ method: 'POST', path: '/orders', upstream: 'app', request: [{ select: '$.card' }] }],
        }),
      );
      const config = gatewayConfig(
        {
          dev: true,
          fronts: { uws: { port: 0 } },
          policies: 'policies',
          limits: { drainMs: 0 },
          audit: { file: 'audit.log', fsync: false, otlpUrl: collectorUrl },
        },
        dir,
        { KCM_DEV: '1' },
      );
      const g = await startConfiguredGateway(config, { log: () => {} });
      const pending = request(`http://127.0.0.1:${g.server.ports.uws}/orders`, {
        method: 'POST',
        headers: { 'x-tenant-id': 't1', 'content-type': 'application/json' },
        body: JSON.stringify({ card: MARKER }),
      }).then(
        (r) => r.body.text().then(() => r.statusCode),
        () => 'cut',
      );
      const end = Date.now() + 5000;
      while (held.size === 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
      assert.equal(held.size, 1, 'the request reached the upstream');
      // The log's figures in /metrics: genesis, open checkpoint and the forward record durable, nothing failed.
      const m = await request(`http://127.0.0.1:${g.server.ports.uws}/metrics`);
      const text = await m.body.text();
      assert.match(text, /^okcm_gateway_audit_lines_total 3$/m);
      assert.match(text, /^okcm_gateway_audit_failures_total 0$/m);
      assert.match(text, /^okcm_gateway_audit_head_failures_total 0$/m);
      assert.match(text, /^okcm_gateway_audit_pending_records 0$/m);
      await g.close();
      await pending;
      const file = join(dir, 'audit.log');
      // The field encryption's record was written before the forward; the request's end is a second one.
      const ev = events(file);
      assert.deepEqual(
        ev.map((e) => [e.action, e.outcome]),
        [
          ['gateway.proxy', 'success'],
          ['gateway.proxy', 'failure'],
        ],
      );
      assert.match(ev[0]?.resource ?? '', /: keys orders v\d+$/);
      const r = verifyAuditLog(file, { publicKey: readFileSync(`${file}.pub`, 'utf8').trim() });
      assert.equal(r.ok, true, JSON.stringify(r.firstBad));
      assert.ok(!readFileSync(file, 'utf8').includes(MARKER));
      assert.deepEqual(
        exported,
        readFileSync(file, 'utf8').split('\n').filter(Boolean),
        'the collector has the log, line for line',
      );
    } finally {
      if (devBefore === undefined) delete process.env.KCM_DEV;
      else process.env.KCM_DEV = devBefore;
      for (const s of held) s.destroy();
      await new Promise((r) => upstream.close(r));
      await new Promise((r) => collector.close(r));
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
