/** The alerter against a real local webhook (node:http on port 0): delivery, rate limit, summaries, timeouts. */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';
import { Alerter, type AlertPayload } from '../../../common/src/alerts/alerter.ts';
import { KcmError } from '../../../common/src/errors.ts';

interface Hook {
  url: string;
  got: { body: AlertPayload; auth: string | undefined }[];
  server: Server;
  mode: { hang: boolean; status: number };
}

async function webhook(): Promise<Hook> {
  const got: Hook['got'] = [];
  const mode = { hang: false, status: 204 };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (mode.hang) return;
      got.push({ body: JSON.parse(Buffer.concat(chunks).toString('utf8')), auth: req.headers.authorization });
      res.statusCode = mode.status;
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, got, server, mode };
}

const closers: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of closers.reverse()) await c();
});

async function setup(o: { perMinute?: number; timeoutMs?: number } = {}) {
  const hook = await webhook();
  closers.push(
    () =>
      new Promise<void>((r) => {
        hook.server.closeAllConnections();
        hook.server.close(() => r());
      }),
  );
  let now = Date.parse('2026-05-01T10:00:00.000Z');
  const lines: string[] = [];
  const alerter = new Alerter({
    webhookUrl: hook.url,
    webhookHeaders: { authorization: 'Bearer test-token' },
    log: (l) => lines.push(l),
    now: () => now,
    summaryIntervalMs: 0,
    ...o,
  });
  closers.push(() => alerter.close());
  return { hook, alerter, lines, advance: (ms: number) => (now += ms) };
}

describe('Alerter', () => {
  it('logs and posts each alert as JSON', async () => {
    const { hook, alerter, lines } = await setup();
    alerter.alert({
      kind: 'auth.unauthorized',
      severity: 'warning',
      summary: 'client CN=x denied',
      tenant: 'acme',
      actor: 'CN=x',
    });
    alerter.alert({ kind: 'core.seal', severity: 'info', summary: 'sealed\nby operator' });
    await alerter.flush();
    assert.deepEqual(
      hook.got.map((g) => g.body),
      [
        {
          time: '2026-05-01T10:00:00.000Z',
          kind: 'auth.unauthorized',
          severity: 'warning',
          summary: 'client CN=x denied',
          tenant: 'acme',
          actor: 'CN=x',
        },
        { time: '2026-05-01T10:00:00.000Z', kind: 'core.seal', severity: 'info', summary: 'sealed by operator' },
      ],
    );
    assert.equal(hook.got[0]?.auth, 'Bearer test-token');
    assert.equal(lines.length, 2);
    assert.match(lines[0] as string, /^\[alert\] \{"time":.*"kind":"auth.unauthorized"/);
    assert.ok(!lines.join().includes('test-token'));
    assert.equal(alerter.stats.webhookSent, 2);
  });

  it('rate-limits per kind; the next alert through carries the suppressed count', async () => {
    const { hook, alerter, advance } = await setup({ perMinute: 3 });
    for (let i = 0; i < 10; i++)
      alerter.alert({ kind: 'auth.unauthorized', severity: 'warning', summary: `denied ${i}` });
    alerter.alert({ kind: 'key.revoked', severity: 'critical', summary: 'other kinds have their own bucket' });
    await alerter.flush();
    assert.equal(hook.got.length, 4);
    assert.equal(alerter.stats.suppressed, 7);
    advance(20_000); // one token back (3 a minute)
    alerter.alert({ kind: 'auth.unauthorized', severity: 'warning', summary: 'denied again' });
    alerter.alert({ kind: 'auth.unauthorized', severity: 'critical', summary: 'suppressed' });
    await alerter.flush();
    assert.equal(hook.got.length, 5);
    assert.equal(hook.got[4]?.body.suppressed, 7);
    await alerter.close();
    const summary = hook.got[5]?.body;
    assert.equal(summary?.suppressed, 1);
    assert.equal(summary?.severity, 'critical');
    assert.match(summary?.summary ?? '', /1 auth.unauthorized alert\(s\) suppressed/);
  });

  it('a hanging or failing webhook never blocks alert(); failures are logged and counted', async () => {
    const { hook, alerter, lines } = await setup({ timeoutMs: 100 });
    hook.mode.hang = true;
    const t0 = performance.now();
    alerter.alert({ kind: 'audit.failure', severity: 'critical', summary: 'cannot write the audit log (ENOSPC)' });
    // alert() returned before the webhook could answer or time out.
    assert.ok(performance.now() - t0 < 100);
    assert.equal(alerter.stats.webhookFailures + alerter.stats.webhookSent, 0);
    await alerter.flush();
    assert.equal(alerter.stats.webhookFailures, 1);
    assert.match(lines.at(-1) as string, /webhook delivery failed for audit.failure \(timeout\)/);
    hook.mode.hang = false;
    hook.mode.status = 500;
    alerter.alert({ kind: 'audit.failure', severity: 'critical', summary: 'again' });
    await alerter.flush();
    assert.match(lines.at(-1) as string, /status 500/);
  });

  it('validates its options', () => {
    assert.throws(
      () => new Alerter({ webhookUrl: 'ftp://x' }),
      (e: unknown) => e instanceof KcmError && e.code === 'invalid_config',
    );
    assert.throws(
      () => new Alerter({ perMinute: 0 }),
      (e: unknown) => e instanceof KcmError && /perMinute/.test(e.message),
    );
  });
});
