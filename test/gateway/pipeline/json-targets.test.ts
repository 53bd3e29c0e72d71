/**
 * The native target pass (native/src/json_targets.rs via
 * gateway/src/pipeline/json-targets.ts) against its reference, the
 * JavaScript scanner and target walk (json-scan.ts, field-targets.ts): on
 * random bodies (random spacing, escapes, non-ASCII and case-variant member
 * names, repeated members, corruption) and random rules and limits, every
 * answer the native pass gives must be exactly the reference's targets, and
 * it must decline whenever the reference throws.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { KcmError } from '../../../common/src/errors.ts';
import { collectTargets } from '../../../gateway/src/pipeline/field-targets.ts';
import { scanCheckedBody } from '../../../gateway/src/pipeline/json-body.ts';
import { encodeRules, nativeTargets, TARGET_ESCAPED } from '../../../gateway/src/pipeline/json-targets.ts';
import { planFor } from '../../../gateway/src/pipeline/transform-json.ts';
import type { BodyLimits } from '../../../gateway/src/policy/policy-types.ts';
import { parseSelector, selectorsOverlap } from '../../../gateway/src/policy/selector.ts';
import { nativeJsonTargets } from '../../../native/index.ts';
import { nativeLoadError } from '../../native/backends.ts';
import { requestRoute } from './helpers.ts';

const TYPES: Record<string, number> = { object: 1, array: 2, string: 3, number: 4, boolean: 5, null: 6 };
const NAMES = ['a', 'b', 'card', 'number', 's', 'k', 'ω'];
/**
 * Member names as written in bodies: the planned ones, case variants (ASCII,
 * and non-ASCII ones that fold to a planned name: ſ → s, the Kelvin sign →
 * k, Ω → ω), escapes, other non-ASCII names, others.
 */
const SPELLINGS = [
  'a',
  'b',
  'card',
  'number',
  's',
  'k',
  'ω',
  'Number',
  'CARD',
  'A',
  'n\\u0075mber',
  '\\u0061',
  'númber',
  'ſ',
  '\u212a',
  'Ω',
  'x',
];

type Tree = null | boolean | number | string | { raw: string } | Tree[] | { members: [string, Tree][] };

const leaf: fc.Arbitrary<Tree> = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.integer(),
  fc.string({ maxLength: 6 }),
  fc.constantFrom<Tree>({ raw: '"a\\"b"' }, { raw: '"\\u00e9"' }, { raw: '-0.5e+3' }, { raw: '"é✓"' }),
);
/** Documents whose arrays hold one kind of thing (leaves, or records), as JSON APIs send. */
const { tree } = fc.letrec<{ tree: Tree; value: Tree; record: Tree; list: Tree }>((tie) => ({
  record: fc
    .array(fc.tuple(fc.constantFrom(...SPELLINGS), tie('value')), { maxLength: 4 })
    .map((members): Tree => ({ members })),
  list: fc.oneof(fc.array(leaf, { maxLength: 4 }), fc.array(tie('record'), { maxLength: 3 })),
  value: fc.oneof({ depthSize: 'small', withCrossShrink: true }, leaf, tie('record'), tie('list')),
  tree: fc.oneof({ arbitrary: tie('record'), weight: 3 }, { arbitrary: tie('list'), weight: 1 }),
}));

const SPACES = ['', ' ', '\n', '\t ', '\r\n'];

function write(t: Tree, ws: () => string): string {
  if (t === null || typeof t !== 'object') return JSON.stringify(t);
  if ('raw' in t) return t.raw;
  if (Array.isArray(t)) return `[${ws()}${t.map((c) => write(c, ws)).join(`${ws()},${ws()}`)}${ws()}]`;
  return `{${ws()}${t.members.map(([k, v]) => `"${k}"${ws()}:${ws()}${write(v, ws)}`).join(`,${ws()}`)}${ws()}}`;
}

/** Every path of `t` through planned names and arrays, as steps ('*' for an array). */
function paths(t: Tree, prefix: string[] = [], out: string[][] = []): string[][] {
  if (t === null || typeof t !== 'object' || 'raw' in t) return out;
  const children: [string, Tree][] = Array.isArray(t)
    ? t.map((c) => ['*', c])
    : t.members.filter(([k]) => NAMES.includes(k)).map(([k, c]) => [k, c]);
  for (const [step, child] of children) {
    const p = [...prefix, step];
    out.push(p);
    paths(child, p, out);
  }
  return out;
}

/** A tree and rules: mostly paths the tree has (so most bodies get targets), some random. */
const scenario = tree.chain((t) => {
  const found = paths(t);
  const random = fc.array(fc.oneof(fc.constantFrom(...NAMES), fc.constant('*')), { minLength: 1, maxLength: 3 });
  const steps = found.length > 0 ? fc.oneof({ arbitrary: fc.constantFrom(...found), weight: 4 }, random) : random;
  const rule = fc.record({ steps, required: fc.constantFrom(false, false, false, true) });
  return fc.tuple(fc.constant(t), fc.array(rule, { minLength: 1, maxLength: 4 }));
});

describe('native JSON targets agree with the JavaScript scan and walk', { skip: nativeLoadError() ?? false }, () => {
  it('on random bodies, rules and limits', () => {
    const outcomes = { answered: 0, declined: 0, referenceThrew: 0 };
    fc.assert(
      fc.property(
        scenario,
        fc.nat(),
        fc.oneof(
          { arbitrary: fc.constant(undefined), weight: 4 },
          { arbitrary: fc.tuple(fc.nat(), fc.constantFrom('', '"', '{', ']', ',', 'x', '\\')), weight: 1 },
        ),
        fc.constantFrom(64, 64, 64, 3),
        fc.constantFrom(1000, 1000, 1000, 2),
        ([t, rawRules], seed, corrupt, maxDepth, maxFields) => {
          let k = seed;
          const ws = () => SPACES[k++ % SPACES.length] as string;
          let body = write(t, ws);
          if (corrupt) {
            const [at, ch] = corrupt;
            const i = at % (body.length + 1);
            body = body.slice(0, i) + ch + body.slice(i + (at % 2));
          }
          // The policy schema refuses overlapping selectors: keep the first of each overlapping set.
          const kept: { text: string; required: boolean }[] = [];
          for (const r of rawRules) {
            const step = (x: string) => (x === '*' ? '[*]' : /^[a-z]+$/.test(x) ? `.${x}` : `[${JSON.stringify(x)}]`);
            const text = `$${r.steps.map(step).join('')}`;
            if (kept.some((q) => selectorsOverlap(parseSelector(q.text), parseSelector(text)))) continue;
            kept.push({ text, required: r.required });
          }
          const rules = requestRoute(
            kept.map((r, i) => ({ select: r.text, field: `f${i}`, onMissing: r.required ? 'error' : 'skip' })),
          ).request;
          assert.ok(encodeRules(rules), 'these rules are taken');
          const limits: BodyLimits = { bodyBytes: 1 << 20, maxDepth, maxFields };
          const bytes = Buffer.from(body, 'utf8');
          let reference: number[] | undefined;
          try {
            const scanned = scanCheckedBody(bytes, limits, planFor(rules));
            reference = collectTargets(scanned.root, rules, maxFields).flatMap((x) => [
              x.rule,
              x.node.start,
              x.node.end,
              (TYPES[x.node.type] as number) + (x.node.escaped === true ? TARGET_ESCAPED : 0),
            ]);
          } catch (err) {
            assert.ok(err instanceof KcmError, String(err));
            outcomes.referenceThrew++;
            (outcomes as Record<string, number>)[(err as KcmError).code] =
              ((outcomes as Record<string, number>)[(err as KcmError).code] ?? 0) + 1;
          }
          const native = nativeTargets(bytes, rules, limits);
          if (native === undefined) {
            outcomes.declined++;
            return;
          }
          outcomes.answered++;
          assert.notEqual(reference, undefined, `native answered where the reference threw: ${body}`);
          assert.deepEqual([...native], reference, body);
        },
      ),
      { numRuns: 3000 },
    );
    // Not degenerate: many answers, and many declines (the reference's errors among them).
    assert.ok(outcomes.answered >= 300, JSON.stringify(outcomes));
    assert.ok(outcomes.referenceThrew >= 300, JSON.stringify(outcomes));
  });

  it('KCM_CRYPTO_BACKEND=node keeps the pass (and the native binary) out', () => {
    assert.equal(nativeJsonTargets({ KCM_CRYPTO_BACKEND: 'node' }), undefined);
    assert.ok(nativeJsonTargets({}));
  });

  it('rules that read a record id from the body are not sent', () => {
    const route = requestRoute([{ select: '$.people[*].ssn', field: 'ssn', recordId: { select: '$.people[*].id' } }]);
    assert.equal(encodeRules(route.request), null);
    assert.equal(nativeTargets(Buffer.from('{"people":[]}'), route.request, route.limits), undefined);
  });
});
