/** The pipeline runner: stage order, early answers, error → status, aborts, sync fast path. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KcmError } from '../../../common/src/errors.ts';
import type { PipelineResponse, RequestContext } from '../../../gateway/src/pipeline/context.ts';
import { Pipeline } from '../../../gateway/src/pipeline/pipeline.ts';
import type { Stage, StageName } from '../../../gateway/src/pipeline/stages.ts';

const ORDER: StageName[] = [
  'route',
  'identify',
  'limits',
  'request-transform',
  'upstream',
  'response-transform',
  'respond',
  'record',
];

function answer(status: number) {
  return (ctx: RequestContext): void => {
    ctx.response = { status, headers: {}, body: '{}' };
  };
}

function harness(behaviour: Partial<Record<StageName, (ctx: RequestContext) => void | Promise<void>>>) {
  const ran: StageName[] = [];
  const sent: PipelineResponse[] = [];
  const logs: string[] = [];
  const stages: Stage[] = ORDER.map((name) => ({
    name,
    run(ctx) {
      ran.push(name);
      if (name === 'respond') {
        if (!ctx.aborted) ctx.responder.send(ctx.response ?? { status: 500, headers: {}, body: '' });
        return;
      }
      return behaviour[name]?.(ctx);
    },
  }));
  const p = new Pipeline(stages, 1024, (m) => logs.push(m));
  const ctx = p.newContext(
    {
      adapter: 'uws',
      method: 'POST',
      path: '/x',
      query: '',
      headers: { 'x-correlation-id': 'cid-1' },
      peer: { address: '127.0.0.1' },
      startedAt: process.hrtime.bigint(),
      responder: { send: (r) => sent.push(r) },
    },
    undefined,
  );
  ctx.body.end();
  return { ran, sent, logs, ctx, run: () => p.run(ctx) };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('pipeline runner', () => {
  it('runs every stage in order, synchronously when no stage is async', () => {
    const h = harness({ upstream: answer(200) });
    h.run();
    assert.deepEqual(h.ran, ORDER, 'all ran before run() returned');
    assert.equal(h.sent[0]?.status, 200);
    assert.equal(h.ctx.correlationId, 'cid-1');
  });

  it('skips to respond and record after an early error', () => {
    const h = harness({
      identify: () => {
        throw new KcmError('unauthenticated');
      },
    });
    h.run();
    assert.deepEqual(h.ran, ['route', 'identify', 'respond', 'record']);
    assert.equal(h.sent[0]?.status, 401);
  });

  it('lets response-transform see an early answer that is not an error', () => {
    const h = harness({ limits: answer(200) });
    h.run();
    assert.deepEqual(h.ran, ['route', 'identify', 'limits', 'response-transform', 'respond', 'record']);
  });

  it('maps a KcmError to its status, and anything else to an opaque 500 logged without detail leaks', async () => {
    const h = harness({ limits: async () => Promise.reject(new KcmError('body_too_large')) });
    h.run();
    await tick();
    assert.equal(h.sent[0]?.status, 413);
    assert.match(String(h.sent[0]?.body), /"code":"body_too_large"/);
    assert.equal(h.ctx.error?.code, 'body_too_large');

    const h2 = harness({
      upstream: () => {
        throw new TypeError('boom');
      },
    });
    h2.run();
    assert.equal(h2.sent[0]?.status, 500);
    assert.deepEqual(JSON.parse(String(h2.sent[0]?.body)), {
      error: { code: 'internal_error', message: 'internal error' },
    });
    assert.equal(h2.logs.length, 1);
    assert.deepEqual(h2.ran.slice(-2), ['respond', 'record']);
  });

  it('keeps the table status of codes thrown by the crypto face', () => {
    const h = harness({
      upstream: () => {
        throw Object.assign(new Error('x'), { code: 'key_destroyed' });
      },
    });
    h.run();
    assert.equal(h.sent[0]?.status, 503);
  });

  it('writes nothing after the client aborted, but still records', async () => {
    let release: () => void = () => {};
    const h = harness({
      upstream: () =>
        new Promise<void>((r) => {
          release = r;
        }),
    });
    h.run();
    h.ctx.aborted = true;
    release();
    await tick();
    assert.equal(h.sent.length, 0);
    assert.deepEqual(h.ran.slice(-2), ['respond', 'record']);
  });

  it('never rejects, even when record throws', async () => {
    const h = harness({
      upstream: answer(204),
      record: () => {
        throw new Error('sink down');
      },
    });
    h.run();
    await tick();
    assert.equal(h.sent[0]?.status, 204);
    assert.equal(h.logs.length, 1);
  });
});
