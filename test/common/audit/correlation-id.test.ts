import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { correlationIdFrom, traceIdFrom } from '../../../common/src/audit/correlation-id.ts';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';

describe('correlationIdFrom', () => {
  it('takes the trace-id of a valid W3C traceparent first', () => {
    const h = { traceparent: `00-${TRACE}-00f067aa0ba902b7-01`, 'x-correlation-id': 'other' };
    assert.equal(correlationIdFrom(h), TRACE);
    assert.equal(correlationIdFrom(new Headers(h)), TRACE);
    assert.equal(traceIdFrom(`cc-${TRACE}-00f067aa0ba902b7-01-future`), TRACE);
  });

  it('rejects invalid traceparents (Trace Context §3.2)', () => {
    for (const bad of [
      `ff-${TRACE}-00f067aa0ba902b7-01`,
      `00-${'0'.repeat(32)}-00f067aa0ba902b7-01`,
      `00-${TRACE}-${'0'.repeat(16)}-01`,
      `00-${TRACE.toUpperCase()}-00f067aa0ba902b7-01`,
      `00-${TRACE}-00f067aa0ba902b7-01-extra`,
      `00-${TRACE}-00f067aa0ba902b7`,
      'garbage',
    ])
      assert.equal(traceIdFrom(bad), undefined, bad);
  });

  it('falls back to a valid x-correlation-id, else a fresh 128-bit id', () => {
    assert.equal(correlationIdFrom({ 'x-correlation-id': 'req-42:a.b_c' }), 'req-42:a.b_c');
    assert.equal(correlationIdFrom({ 'x-correlation-id': ['first', 'second'] }), 'first');
    for (const bad of ['has space', 'x'.repeat(65), 'new\nline', '']) {
      const id = correlationIdFrom({ 'x-correlation-id': bad, traceparent: 'nope' });
      assert.match(id, /^[0-9a-f]{32}$/);
    }
    assert.notEqual(correlationIdFrom({}), correlationIdFrom({}));
  });
});
