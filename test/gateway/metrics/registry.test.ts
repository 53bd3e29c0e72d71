/** The Prometheus registry: exposition text, cumulative ADR-604 buckets, label escaping. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  ADR604_BUCKETS_SECONDS,
  CallbackMetric,
  Counter,
  Histogram,
  Registry,
} from '../../../gateway/src/metrics/registry.ts';

describe('metrics registry', () => {
  it('renders counters, callback gauges and cumulative histograms', () => {
    const r = new Registry();
    const c = r.register(new Counter('req_total', 'Requests.', ['route']));
    const h = r.register(new Histogram('lat_seconds', 'Latency.', ['route']));
    r.register(new CallbackMetric('age_seconds', 'Age.', 'gauge', () => 12.5));
    r.register(new CallbackMetric('absent', 'Not known.', 'gauge', () => undefined));
    c.inc({ route: 'a"b\\c' });
    c.inc({ route: 'a"b\\c' }, 2);
    for (const v of [0.00005, 0.0001, 0.0003, 0.002, 0.02]) h.observe({ route: 'x' }, v);
    const text = r.render();
    assert.match(text, /^req_total\{route="a\\"b\\\\c"\} 3$/m);
    assert.match(text, /^age_seconds 12\.5$/m);
    assert.doesNotMatch(text, /absent/);
    const buckets = [...text.matchAll(/^lat_seconds_bucket\{route="x",le="([^"]+)"\} (\d+)$/gm)].map((m) => [
      m[1],
      Number(m[2]),
    ]);
    assert.deepEqual(buckets, [
      ['0.0001', 2],
      ['0.00025', 2],
      ['0.0005', 3],
      ['0.001', 3],
      ['0.0025', 4],
      ['0.005', 4],
      ['0.01', 4],
      ['+Inf', 5],
    ]);
    assert.match(text, /^lat_seconds_count\{route="x"\} 5$/m);
    assert.deepEqual(
      ADR604_BUCKETS_SECONDS.map((s) => s * 1000),
      [0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    );
  });

  it('refuses duplicate or malformed names, decreasing counters and missing labels', () => {
    const r = new Registry();
    r.register(new Counter('a', 'A.'));
    assert.throws(() => r.register(new Counter('a', 'A.')));
    assert.throws(() => r.register(new Counter('bad-name', 'B.')));
    const c = new Counter('c', 'C.', ['x']);
    assert.throws(() => c.inc({ x: '1' }, -1));
    assert.throws(() => c.inc({}));
    assert.throws(() => new Histogram('h', 'H.', [], [0.2, 0.1]));
    // A refused update adds no series, with one label or several.
    const two = new Counter('d', 'D.', ['x', 'y']);
    assert.throws(() => two.inc({ x: '1' }));
    assert.throws(() => two.inc({ y: '1' }));
    assert.equal(two.get({ x: '1', y: '' }), 0);
    const out: string[] = [];
    two.render(out);
    assert.deepEqual(out, ['# HELP d D.', '# TYPE d counter']);
    // A value that is not a string (only through a cast) is refused, not made a second series of one key.
    const e = new Counter('e', 'E.', ['status']);
    e.inc({ status: '200' });
    assert.throws(() => e.inc({ status: 200 as unknown as string }), /not a string/);
    assert.equal(e.get({ status: '200' }), 1);
  });

  it('counts each label combination apart, as a map keyed by the whole label set would (property)', () => {
    const value = fc.constantFrom('', 'a', 'b', 'a,b', 'x="y"', 'encrypt', '200', '\\n');
    const update = fc.record({ x: value, y: value, z: value, by: fc.integer({ min: 0, max: 5 }) });
    fc.assert(
      fc.property(fc.array(update, { maxLength: 40 }), (updates) => {
        const c = new Counter('c', 'C.', ['x', 'y', 'z']);
        const h = new Histogram('h', 'H.', ['y', 'x']);
        const model = new Map<string, number>();
        for (const u of updates) {
          c.inc({ x: u.x, y: u.y, z: u.z }, u.by);
          h.observe({ x: u.x, y: u.y }, u.by / 1000);
          const k = JSON.stringify([u.x, u.y, u.z]);
          model.set(k, (model.get(k) ?? 0) + u.by);
        }
        for (const [k, n] of model) {
          const [x, y, z] = JSON.parse(k) as string[];
          assert.equal(c.get({ x: x as string, y: y as string, z: z as string }), n);
        }
        const seen = new Set([...model.keys()].map((k) => JSON.stringify((JSON.parse(k) as string[]).slice(0, 2))));
        let observed = 0;
        for (const k of seen) {
          const [x, y] = JSON.parse(k) as string[];
          observed += h.count({ x: x as string, y: y as string });
        }
        assert.equal(observed, updates.length);
        const out: string[] = [];
        c.render(out);
        assert.equal(out.length, 2 + model.size);
      }),
      { numRuns: 300 },
    );
  });
});
