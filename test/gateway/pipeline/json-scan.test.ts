/** The strict JSON scanner: accepts exactly what JSON.parse accepts, bounds depth, refuses planned duplicate members and their case variants, and returns exact skeleton spans. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { type ErrorCode, KcmError } from '../../../common/src/errors.ts';
import { nodeValue } from '../../../gateway/src/pipeline/field-targets.ts';
import { compilePlan, type JsonNode, type PlanNode, scanJson } from '../../../gateway/src/pipeline/json-scan.ts';
import {
  formatSegments,
  MAX_SELECTOR_SEGMENTS,
  parseSelector,
  type SelectorSegment,
} from '../../../gateway/src/policy/selector.ts';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Depth limit of the differential tests: never reached by their inputs. */
const BIG = 10_000;
const MARKER = 'SCAN-BODY-MARKER-5c1e';
const EMPTY = compilePlan([]);
const planOf = (...selectors: string[]): PlanNode => compilePlan(selectors.map(parseSelector));
/** Steps into objects and arrays at several places, including a node with both `members` and `each`. */
const PLAN = planOf('$.a', '$.b.a', '$.a[*]', '$.a.b', '$["é"]', '$.__proto__.a', '$[*].a', '$[*][*]');
const PLANS: readonly PlanNode[] = [EMPTY, PLAN];

type Outcome = { ok: true; root: JsonNode } | { ok: false; code: ErrorCode };

/** Scans, and turns a refusal into its code (any other exception fails the test). */
function scan(input: string | Uint8Array, plan: PlanNode = EMPTY, maxDepth = BIG): Outcome {
  const bytes = typeof input === 'string' ? Buffer.from(input, 'utf8') : input;
  try {
    return { ok: true, root: scanJson(bytes, plan, maxDepth) as JsonNode };
  } catch (err) {
    assert.ok(err instanceof KcmError, `not a KcmError: ${String(err)}`);
    return { ok: false, code: err.code };
  }
}

/** The code of a refusal, or 'ok'. */
const codeOf = (input: string | Uint8Array, plan: PlanNode = EMPTY, maxDepth = BIG): string => {
  const r = scan(input, plan, maxDepth);
  return r.ok ? 'ok' : r.code;
};

function jsonParses(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------
// An independent reference: a lax parser for texts JSON.parse accepts that
// keeps repeated members (JSON.parse drops all but the last).

type Tree = { kind: 'object'; entries: [string, Tree][] } | { kind: 'array'; items: Tree[] } | { kind: 'scalar' };

function parseTree(text: string): Tree {
  let i = 0;
  const isWs = (c: string | undefined) => c === ' ' || c === '\t' || c === '\n' || c === '\r';
  const ws = () => {
    while (isWs(text[i])) i++;
  };
  const str = (): string => {
    const s = i++;
    while (text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    i++;
    return JSON.parse(text.slice(s, i)) as string;
  };
  const value = (): Tree => {
    ws();
    const c = text[i];
    let t: Tree;
    if (c === '{') {
      i++;
      ws();
      const entries: [string, Tree][] = [];
      if (text[i] === '}') i++;
      else
        for (;;) {
          ws();
          const k = str();
          ws();
          i++; // the colon
          entries.push([k, value()]);
          if (text[i++] === '}') break;
        }
      t = { kind: 'object', entries };
    } else if (c === '[') {
      i++;
      ws();
      const items: Tree[] = [];
      if (text[i] === ']') i++;
      else
        for (;;) {
          items.push(value());
          if (text[i++] === ']') break;
        }
      t = { kind: 'array', items };
    } else {
      if (c === '"') str();
      else while (i < text.length && !isWs(text[i]) && !',]}'.includes(text[i] as string)) i++;
      t = { kind: 'scalar' };
    }
    ws();
    return t;
  };
  return value();
}

function depthOf(t: Tree): number {
  if (t.kind === 'object') return 1 + Math.max(0, ...t.entries.map(([, v]) => depthOf(v)));
  if (t.kind === 'array') return 1 + Math.max(0, ...t.items.map(depthOf));
  return 0;
}

/**
 * The reference case fold of the generators' alphabet: what Go's
 * bytes.EqualFold, .NET's OrdinalIgnoreCase or Jackson's toLowerCase
 * treat as one letter (ſ and S, the Kelvin sign and K, ı and I).
 */
const FOLD_SPECIAL: Record<string, string> = { ſ: 's', '\u212a': 'k', ı: 'i', İ: 'i' };
const refFold = (s: string): string => Array.from(s, (c) => FOLD_SPECIAL[c] ?? c.toLowerCase()).join('');

/** True when an object reached along the plan repeats a member name the plan steps into, or has a case variant of one. */
function dupOnPlan(t: Tree, plan: PlanNode): boolean {
  if (t.kind === 'object' && plan.members !== undefined) {
    const seen = new Set<string>();
    const planned = [...plan.members.keys()];
    for (const [k, v] of t.entries) {
      const p = plan.members.get(k);
      if (p === undefined) {
        if (planned.some((name) => refFold(name) === refFold(k))) return true;
        continue;
      }
      if (seen.has(k)) return true;
      seen.add(k);
      if (dupOnPlan(v, p)) return true;
    }
  }
  if (t.kind === 'array' && plan.each !== undefined) return t.items.some((e) => dupOnPlan(e, plan.each as PlanNode));
  return false;
}

const isWsByte = (c: number | undefined) => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;

function typeOfJson(v: Json): JsonNode['type'] {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v as 'object' | 'string' | 'number' | 'boolean';
}

/** Checks a skeleton node against the value JSON.parse gives at its place. */
function checkSkeleton(bytes: Uint8Array, node: JsonNode, value: Json, plan: PlanNode, path = '$'): void {
  assert.equal(node.type, typeOfJson(value), `type at ${path}`);
  assert.ok(0 <= node.start && node.start < node.end && node.end <= bytes.length, `span at ${path}`);
  const span = bytes.subarray(node.start, node.end);
  assert.ok(!isWsByte(span[0]) && !isWsByte(span[span.length - 1]), `span at ${path} is not trimmed`);
  assert.deepEqual(JSON.parse(Buffer.from(span).toString('utf8')), value, `span text at ${path}`);
  assert.deepEqual(nodeValue(bytes, node), value, `nodeValue at ${path}`);
  if (node.type === 'string') assert.equal(node.escaped, span.includes(0x5c), `escaped flag at ${path}`);
  else assert.equal(node.escaped, undefined, `escaped flag on a ${node.type} at ${path}`);

  if (plan.members !== undefined && node.type === 'object') {
    const obj = value as { [k: string]: Json };
    assert.ok(node.members !== undefined, `members at ${path}`);
    const expected = [...plan.members.keys()].filter((k) => Object.hasOwn(obj, k)).sort();
    assert.deepEqual([...node.members.keys()].sort(), expected, `planned members at ${path}`);
    for (const [k, child] of node.members) {
      checkSkeleton(bytes, child, obj[k] as Json, plan.members.get(k) as PlanNode, `${path}[${JSON.stringify(k)}]`);
    }
  } else assert.equal(node.members, undefined, `unexpected members at ${path}`);

  if (plan.each !== undefined && node.type === 'array') {
    const arr = value as Json[];
    assert.ok(node.items !== undefined, `items at ${path}`);
    assert.equal(node.items.length, arr.length, `item count at ${path}`);
    node.items.forEach((child, k) => {
      checkSkeleton(bytes, child, arr[k] as Json, plan.each as PlanNode, `${path}[${k}]`);
    });
    for (let k = 1; k < node.items.length; k++) {
      assert.ok((node.items[k - 1] as JsonNode).end <= (node.items[k] as JsonNode).start, `item order at ${path}`);
    }
  } else assert.equal(node.items, undefined, `unexpected items at ${path}`);
}

/**
 * The differential oracle: the scanner's outcome on `text` must be what
 * JSON.parse plus the reference depth and duplicate checks say, and an
 * accepted text's skeleton must match JSON.parse's value.
 */
function checkAgainstJsonParse(text: string, plan: PlanNode, maxDepth = BIG): void {
  const bytes = Buffer.from(text, 'utf8');
  assert.equal(bytes.toString('utf8'), text, 'test input must be well-formed Unicode');
  let parsed: Json;
  try {
    parsed = JSON.parse(text) as Json;
  } catch {
    const got = scan(bytes, plan, maxDepth);
    assert.ok(!got.ok, `accepted what JSON.parse refuses: ${JSON.stringify(text)}`);
    // A refusal found before the syntax error may win.
    const allowed: string[] = ['json_malformed'];
    if (plan.members !== undefined || plan.each !== undefined) allowed.push('json_duplicate_key');
    if ((text.match(/[[{]/g)?.length ?? 0) > maxDepth) allowed.push('json_too_deep');
    assert.ok(allowed.includes(got.code), `${got.code} for ${JSON.stringify(text)}`);
    return;
  }
  const tree = parseTree(text);
  const allowed: string[] = [];
  if (depthOf(tree) > maxDepth) allowed.push('json_too_deep');
  if (dupOnPlan(tree, plan)) allowed.push('json_duplicate_key');
  const got = scan(bytes, plan, maxDepth);
  if (allowed.length === 0) {
    assert.ok(got.ok, `refused (${got.ok ? '' : got.code}) what JSON.parse accepts: ${JSON.stringify(text)}`);
    checkSkeleton(bytes, got.root, parsed, plan);
  } else {
    assert.ok(!got.ok && allowed.includes(got.code), `expected ${allowed.join('|')} for ${JSON.stringify(text)}`);
  }
}

// ---------------------------------------------------------------------------
// Generators.

/** Member names and string contents: a few short names (so selectors hit) and the awkward characters. */
const UNIT = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('a', 'b', 'c') },
  {
    weight: 2,
    arbitrary: fc.constantFrom('"', '\\', '/', '\n', '\t', '\x00', '\x01', '\x1f', '\x7f', ' ', '_', 'é', '\u2028'),
  },
  { weight: 1, arbitrary: fc.constantFrom('😀', '\ud800', '\udfff', '\ufffd', '\u00ff', '\uffff', '__proto__') },
  { weight: 1, arbitrary: fc.constantFrom('A', 'B', 'ſ', '\u212a', 'ı', 'É', '__PROTO__') },
);
const jsonDoc = fc.jsonValue({ maxDepth: 4, stringUnit: UNIT }) as fc.Arbitrary<Json>;

/** Deterministic choices for the renderer (shrinkable, cycled). */
const choices = fc.array(fc.nat(), { minLength: 1, maxLength: 64 });
type Pick = <T>(options: readonly T[]) => T;
function picker(cs: readonly number[]): Pick {
  let k = 0;
  return <T>(options: readonly T[]): T => options[(cs[k++ % cs.length] as number) % options.length] as T;
}

const WS = ['', '', '', ' ', '\t', '\n', '\r', ' \r\n\t '];
const SHORT: Record<number, string> = { 8: '\\b', 9: '\\t', 10: '\\n', 12: '\\f', 13: '\\r' };

function uEscape(code: number, pick: Pick): string {
  const hex = code.toString(16).padStart(4, '0');
  return `\\u${pick([hex, hex.toUpperCase()])}`;
}

/** A JSON string literal for `s`, each character spelt raw or escaped at random (always valid). */
function renderString(s: string, pick: Pick): string {
  let out = '"';
  for (const ch of s) {
    const cp = ch.codePointAt(0) as number;
    if (ch === '"') out += pick(['\\"', '\\u0022']);
    else if (ch === '\\') out += pick(['\\\\', '\\u005C']);
    else if (ch === '/') out += pick(['/', '\\/', '\\u002f']);
    else if (cp < 0x20) out += pick([SHORT[cp] ?? uEscape(cp, pick), uEscape(cp, pick)]);
    else if (cp >= 0xd800 && cp <= 0xdfff) out += uEscape(cp, pick);
    else if (cp > 0xffff) out += pick([ch, uEscape(ch.charCodeAt(0), pick) + uEscape(ch.charCodeAt(1), pick)]);
    else out += pick([ch, ch, ch, uEscape(cp, pick)]);
  }
  return `${out}"`;
}

/** A valid spelling of a number (canonical, or with a fraction or exponent added). */
function renderNumber(n: number, pick: Pick): string {
  const s = JSON.stringify(n);
  const [mant, exp] = s.split(/e/i) as [string, string | undefined];
  const m = mant.includes('.') ? mant : pick([mant, mant, `${mant}.0`, `${mant}.000`]);
  const e = exp === undefined ? pick(['', '', 'e0', 'E+00', 'e-0', 'E1']) : `${pick(['e', 'E'])}${exp}`;
  return m + e;
}

/** JSON text for `v` with random whitespace between tokens and random string and number spellings. */
function render(v: Json, pick: Pick): string {
  const w = () => pick(WS);
  if (v === null) return 'null';
  if (typeof v === 'boolean') return String(v);
  if (typeof v === 'number') return renderNumber(v, pick);
  if (typeof v === 'string') return renderString(v, pick);
  if (Array.isArray(v)) {
    if (v.length === 0) return `[${w()}]`;
    return `[${w()}${v.map((e) => render(e, pick)).join(`${w()},${w()}`)}${w()}]`;
  }
  const keys = Object.keys(v);
  if (keys.length === 0) return `{${w()}}`;
  return `{${w()}${keys.map((k) => `${renderString(k, pick)}${w()}:${w()}${render(v[k] as Json, pick)}`).join(`${w()},${w()}`)}${w()}}`;
}
const renderTop = (v: Json, pick: Pick) => `${pick(WS)}${render(v, pick)}${pick(WS)}`;

/** Valid JSON texts with varied spelling. */
const validText = fc.tuple(jsonDoc, choices).map(([v, cs]) => renderTop(v, picker(cs)));

/** Characters worth inserting or substituting: structure, number, literal and string pieces. */
const MUTATION_CHARS = [
  '{',
  '}',
  '[',
  ']',
  ',',
  ':',
  '"',
  '\\',
  'u',
  '0',
  '1',
  '9',
  '-',
  '+',
  '.',
  'e',
  'E',
  't',
  'f',
  'n',
  'l',
  'a',
  'x',
  'é',
  '\u2028',
  '\u00a0',
  '\ufeff',
  ' ',
  '\t',
  '\n',
  '\r',
  '\x00',
  '\x01',
  '\x0b',
  '\x0c',
  '\x7f',
  '/',
];

type Mutation = { op: 'insert' | 'delete' | 'replace'; at: number; ch: string };
const mutation = fc.record({
  op: fc.constantFrom<Mutation['op']>('insert', 'delete', 'replace'),
  at: fc.nat(),
  ch: fc.oneof(
    { weight: 1, arbitrary: fc.constantFrom('{', '}', '[', ']', ',', ':', '"') },
    { weight: 2, arbitrary: fc.constantFrom(...MUTATION_CHARS) },
  ),
});

/** Applies mutations on code points (so the text stays well-formed Unicode). */
function mutate(text: string, ms: readonly Mutation[]): string {
  const cps = Array.from(text);
  for (const m of ms) {
    const at = m.at % (cps.length + (m.op === 'insert' ? 1 : 0) || 1);
    if (m.op === 'insert') cps.splice(at, 0, m.ch);
    else if (cps.length > 0) cps.splice(at, 1, ...(m.op === 'replace' ? [m.ch] : []));
  }
  return cps.join('');
}

/** Token soup: mostly not JSON, sometimes JSON, often nearly JSON. */
const TOKENS = [
  '{',
  '}',
  '[',
  ']',
  ',',
  ':',
  '"',
  '\\',
  '\\u',
  '\\"',
  '\\/',
  '0',
  '1',
  '9',
  '-',
  '+',
  '.',
  'e',
  'E',
  'true',
  'false',
  'null',
  'tru',
  'nul',
  'a',
  'é',
  '\u2028',
  '😀',
  ' ',
  '\t',
  '\n',
  '\r',
  '\x01',
  '\x7f',
  '"a"',
  '"b"',
  '"a":',
  '"__proto__"',
  '"\\u0061"',
  '00e9',
  'F',
];
const tokenSoup = fc.array(fc.constantFrom(...TOKENS), { maxLength: 16 }).map((ts) => ts.join(''));

/** Every path of a document, as selector segments (arrays step with `[*]`, even when empty). */
function pathsOf(v: Json, prefix: SelectorSegment[], out: Map<string, SelectorSegment[]>): void {
  if (prefix.length === MAX_SELECTOR_SEGMENTS || v === null || typeof v !== 'object') return;
  if (Array.isArray(v)) {
    const p: SelectorSegment[] = [...prefix, { kind: 'each' }];
    out.set(formatSegments(p), p);
    for (const e of v) pathsOf(e, p, out);
    return;
  }
  for (const k of Object.keys(v)) {
    const p: SelectorSegment[] = [...prefix, { kind: 'member', name: k }];
    out.set(formatSegments(p), p);
    pathsOf(v[k] as Json, p, out);
  }
}

// ---------------------------------------------------------------------------

describe('JSON scanner: differential against JSON.parse', () => {
  it('accepts every JSON text (random whitespace, escapes, number spellings), with an exact skeleton', () => {
    fc.assert(
      fc.property(validText, (text) => {
        for (const plan of PLANS) checkAgainstJsonParse(text, plan);
      }),
      { numRuns: 1000 },
    );
  });

  it('accepts a token soup iff JSON.parse does', () => {
    fc.assert(
      fc.property(tokenSoup, (text) => {
        for (const plan of PLANS) checkAgainstJsonParse(text, plan);
      }),
      { numRuns: 5000 },
    );
  });

  it('accepts single-character mutations of JSON texts iff JSON.parse does', () => {
    fc.assert(
      fc.property(validText, fc.array(mutation, { minLength: 1, maxLength: 2 }), (text, ms) => {
        const mutated = mutate(text, ms);
        for (const plan of PLANS) checkAgainstJsonParse(mutated, plan);
      }),
      { numRuns: 4000 },
    );
  });

  it('accepts every single-character edit of small documents iff JSON.parse does (exhaustive)', () => {
    const docs = [
      '{"a":[1,-2.5e+3,"x\\u00e9\\n",true,false,null,{}],"b":{"c":[]}}',
      ' [0,{"a":"b","a":[]},[[]],""] ',
      '{"__proto__" : -0 ,"é":"\\"/", "b":{"a":1}}',
    ];
    for (const doc of docs) {
      assert.ok(jsonParses(doc), doc);
      const cps = Array.from(doc);
      const edits = new Set<string>();
      for (let at = 0; at <= cps.length; at++) {
        if (at < cps.length) edits.add([...cps.slice(0, at), ...cps.slice(at + 1)].join(''));
        for (const ch of MUTATION_CHARS) {
          edits.add([...cps.slice(0, at), ch, ...cps.slice(at)].join(''));
          if (at < cps.length) edits.add([...cps.slice(0, at), ch, ...cps.slice(at + 1)].join(''));
        }
      }
      for (const text of edits) for (const plan of PLANS) checkAgainstJsonParse(text, plan);
    }
  });

  it('refuses documents deeper than a small maxDepth with json_too_deep, and only those', () => {
    fc.assert(
      fc.property(validText, fc.nat({ max: 4 }), fc.array(mutation, { maxLength: 1 }), (text, maxDepth, ms) => {
        checkAgainstJsonParse(mutate(text, ms), EMPTY, maxDepth);
      }),
      { numRuns: 1000 },
    );
  });

  it('matches JSON.parse on every number-like text of up to 5 characters, alone and inside containers', () => {
    const alphabet = ['-', '+', '0', '1', '.', 'e'];
    let texts = [''];
    const all: string[] = [];
    for (let len = 1; len <= 5; len++) {
      texts = texts.flatMap((t) => alphabet.map((c) => t + c));
      all.push(...texts);
    }
    for (const n of all) {
      for (const text of [n, `[${n},1]`, `{"a":${n} }`]) {
        const expected = jsonParses(text) ? 'ok' : 'json_malformed';
        assert.equal(codeOf(text), expected, JSON.stringify(text));
      }
    }
  });

  it('matches JSON.parse on every backslash escape and on \\u with 4 chosen characters', () => {
    for (let c = 0x20; c < 0x7f; c++) {
      const text = `"\\${String.fromCharCode(c)}"`;
      assert.equal(codeOf(text), jsonParses(text) ? 'ok' : 'json_malformed', text);
    }
    const hexish = ['0', '9', 'a', 'F', 'g', '"', ' '];
    for (const a of hexish)
      for (const b of hexish)
        for (const c of hexish)
          for (const d of hexish) {
            for (const text of [`"\\u${a}${b}${c}${d}"`, `{"\\u${a}${b}${c}${d}":1}`]) {
              assert.equal(codeOf(text), jsonParses(text) ? 'ok' : 'json_malformed', text);
              assert.equal(codeOf(text, PLAN), jsonParses(text) ? 'ok' : 'json_malformed', text);
            }
          }
  });
});

describe('JSON scanner: edge cases', () => {
  const cases: [string, 'ok' | 'json_malformed'][] = [
    // Numbers.
    ['0', 'ok'],
    ['-0', 'ok'],
    ['01', 'json_malformed'],
    ['-01', 'json_malformed'],
    ['00', 'json_malformed'],
    ['1.', 'json_malformed'],
    ['1.e5', 'json_malformed'],
    ['.5', 'json_malformed'],
    ['-.5', 'json_malformed'],
    ['1e', 'json_malformed'],
    ['1e+', 'json_malformed'],
    ['1e+5', 'ok'],
    ['1E5', 'ok'],
    ['2E-3', 'ok'],
    ['1.5e-07', 'ok'],
    ['-', 'json_malformed'],
    ['+1', 'json_malformed'],
    ['--1', 'json_malformed'],
    ['1e5.5', 'json_malformed'],
    ['0x10', 'json_malformed'],
    ['Infinity', 'json_malformed'],
    ['NaN', 'json_malformed'],
    ['1e400', 'ok'],
    ['123456789012345678901234567890', 'ok'],
    ['[-]', 'json_malformed'],
    ['[1.]', 'json_malformed'],
    ['{"a":-}', 'json_malformed'],
    // Strings and escapes.
    ['""', 'ok'],
    ['"\\u00e9"', 'ok'],
    ['"\\u00E9"', 'ok'],
    ['"\\ud800"', 'ok'],
    ['"\\uDFFF\\uD800"', 'ok'],
    ['"\\"\\\\\\/\\b\\f\\n\\r\\t"', 'ok'],
    ['"\\x41"', 'json_malformed'],
    ['"\\U0041"', 'json_malformed'],
    ['"\\u12"', 'json_malformed'],
    ['"\\u12', 'json_malformed'],
    ['"\\u', 'json_malformed'],
    ['"\\', 'json_malformed'],
    ['"\\"', 'json_malformed'],
    ['"\\0"', 'json_malformed'],
    ['"\\\n"', 'json_malformed'],
    ['"a\nb"', 'json_malformed'],
    ['"a\tb"', 'json_malformed'],
    ['"\x00"', 'json_malformed'],
    ['"\x1f"', 'json_malformed'],
    ['"\x7f"', 'ok'],
    ['"\u2028\u2029é😀"', 'ok'],
    ['"abc', 'json_malformed'],
    ["'a'", 'json_malformed'],
    // Literals.
    ['true', 'ok'],
    ['false', 'ok'],
    ['null', 'ok'],
    ['t', 'json_malformed'],
    ['tru', 'json_malformed'],
    ['fals', 'json_malformed'],
    ['nul', 'json_malformed'],
    ['[tru', 'json_malformed'],
    ['{"a":nul', 'json_malformed'],
    ['[true', 'json_malformed'],
    ['True', 'json_malformed'],
    ['truee', 'json_malformed'],
    ['nulll', 'json_malformed'],
    ['[truefalse]', 'json_malformed'],
    ['undefined', 'json_malformed'],
    // Structure.
    ['', 'json_malformed'],
    [' \t\r\n', 'json_malformed'],
    ['\u00a0', 'json_malformed'],
    ['\u00a01', 'json_malformed'],
    ['1\u2028', 'json_malformed'],
    ['\x0c1', 'json_malformed'],
    ['\x0b1', 'json_malformed'],
    ['\ufeff{}', 'json_malformed'],
    ['\ufeff', 'json_malformed'],
    ['1 2', 'json_malformed'],
    ['{}{}', 'json_malformed'],
    ['[][]', 'json_malformed'],
    ['"a""b"', 'json_malformed'],
    ['{} x', 'json_malformed'],
    ['[1,]', 'json_malformed'],
    ['[1,,2]', 'json_malformed'],
    ['[,1]', 'json_malformed'],
    ['[,]', 'json_malformed'],
    ['{"a":1,}', 'json_malformed'],
    ['{,}', 'json_malformed'],
    ['{"a":1,,"b":2}', 'json_malformed'],
    ['{"a"}', 'json_malformed'],
    ['{"a":}', 'json_malformed'],
    ['{"a" 1}', 'json_malformed'],
    ['{"a"::1}', 'json_malformed'],
    ['{a:1}', 'json_malformed'],
    ['{1:1}', 'json_malformed'],
    ['{"a":1 "b":2}', 'json_malformed'],
    ['[1 2]', 'json_malformed'],
    ['[1:2]', 'json_malformed'],
    ['{"a",1}', 'json_malformed'],
    ['[', 'json_malformed'],
    [']', 'json_malformed'],
    ['{', 'json_malformed'],
    ['}', 'json_malformed'],
    ['[}', 'json_malformed'],
    ['{]', 'json_malformed'],
    ['[[]', 'json_malformed'],
    ['[]]', 'json_malformed'],
    ['{"a":[}', 'json_malformed'],
    ['{"a":{"b":1}', 'json_malformed'],
    [' [ 1 , { "a" : [ ] } ] ', 'ok'],
    ['{"":0}', 'ok'],
    ['{"a":1,"b":[true,false,null],"c":{"d":"e"}}', 'ok'],
    ['é', 'json_malformed'],
    ['[é]', 'json_malformed'],
  ];

  it('numbers, escapes, literals and structure: the expected verdict, which JSON.parse shares', () => {
    for (const [text, expected] of cases) {
      assert.equal(
        jsonParses(text),
        expected === 'ok',
        `the table disagrees with JSON.parse on ${JSON.stringify(text)}`,
      );
      for (const plan of PLANS) assert.equal(codeOf(text, plan), expected, JSON.stringify(text));
    }
  });

  it('refuses every raw control character in a string and accepts DEL and bytes ≥ 0x80', () => {
    for (let c = 0; c < 0x20; c++) {
      assert.equal(codeOf(`"a${String.fromCharCode(c)}b"`), 'json_malformed', `control 0x${c.toString(16)}`);
      assert.equal(codeOf(`{"a${String.fromCharCode(c)}":1}`, PLAN), 'json_malformed', `control 0x${c.toString(16)}`);
    }
    const raw = Buffer.from([0x22, 0x7f, 0xc3, 0xa9, 0xf0, 0x9f, 0x98, 0x80, 0x22]);
    const r = scan(raw);
    assert.ok(r.ok);
    assert.equal(nodeValue(raw, r.root), '\x7fé😀');
  });

  it('refuses every truncation of a valid document', () => {
    const text = '{"a":[1,-2.5e+3,"x\\u00e9\\n",true,false,null,{}],"b":{"c":[]}}';
    for (let n = 0; n < text.length; n++) {
      for (const plan of PLANS) assert.equal(codeOf(text.slice(0, n), plan), 'json_malformed', text.slice(0, n));
    }
    assert.equal(codeOf(text, PLAN), 'ok');
  });

  it('never reads past the end of a view into a larger buffer', () => {
    const backing = Buffer.from('xx{"a":1}true12"ab"[1]{"a":"b"}yy', 'utf8');
    const view = (from: number, to: number) => new Uint8Array(backing.buffer, backing.byteOffset + from, to - from);
    assert.equal(codeOf(view(2, 9), PLAN), 'ok'); // {"a":1}
    assert.equal(codeOf(view(2, 8), PLAN), 'json_malformed'); // {"a":1
    assert.equal(codeOf(view(9, 12)), 'json_malformed'); // tru
    assert.equal(codeOf(view(9, 13)), 'ok'); // true
    assert.equal(codeOf(view(13, 14)), 'ok'); // 1 (of 12)
    assert.equal(codeOf(view(15, 18)), 'json_malformed'); // "ab
    assert.equal(codeOf(view(19, 21), planOf('$[*]')), 'json_malformed'); // [1
    const obj = view(22, 31); // {"a":"b"}
    const r = scan(obj, planOf('$.a'));
    assert.ok(r.ok);
    assert.equal(r.root.start, 0);
    assert.equal(r.root.end, 9);
    assert.equal(nodeValue(obj, r.root.members?.get('a') as JsonNode), 'b');
  });

  it('accepts nesting at exactly maxDepth and refuses maxDepth + 1 as json_too_deep', () => {
    for (const maxDepth of [1, 2, 5, 64]) {
      const arrays = (n: number) => `${'['.repeat(n)}${']'.repeat(n)}`;
      const objects = (n: number) => `${'{"a":'.repeat(n - 1)}{}${'}'.repeat(n - 1)}`;
      const mixed = (n: number) => {
        let s = '1';
        for (let k = 0; k < n; k++) s = k % 2 === 0 ? `[0,${s}]` : `{"a":${s},"b":{}}`;
        return s;
      };
      for (const make of [arrays, objects, mixed]) {
        for (const plan of [EMPTY, planOf('$.a.a.a'), planOf('$[*][*]')]) {
          assert.equal(codeOf(make(maxDepth), plan, maxDepth), 'ok', make(maxDepth));
          assert.equal(codeOf(make(maxDepth + 1), plan, maxDepth), 'json_too_deep', make(maxDepth + 1));
        }
      }
    }
    assert.equal(codeOf('1', EMPTY, 0), 'ok');
    assert.equal(codeOf('"x"', EMPTY, 0), 'ok');
    assert.equal(codeOf('[]', EMPTY, 0), 'json_too_deep');
    assert.equal(codeOf('{}', EMPTY, 0), 'json_too_deep');
    assert.equal(codeOf('[[1],[2,[3]],{"a":[4]}]', EMPTY, 3), 'ok');
    assert.equal(codeOf('[[1],[2,[3]],{"a":[[4]]}]', EMPTY, 3), 'json_too_deep');
  });

  it('refuses hostile nesting as json_too_deep without exhausting the stack', () => {
    const hostile = '['.repeat(200_000);
    assert.equal(codeOf(hostile, EMPTY, 64), 'json_too_deep');
    assert.equal(codeOf(hostile, planOf('$[*][*][*]'), 64), 'json_too_deep');
    assert.equal(codeOf('{"a":'.repeat(200_000), planOf('$.a.a.a'), 64), 'json_too_deep');
    // With no effective limit the scan is still iterative: deep but valid passes, deep but unclosed is malformed.
    assert.equal(codeOf(hostile, EMPTY, 1_000_000), 'json_malformed');
    assert.equal(codeOf(`${hostile}${']'.repeat(200_000)}`, planOf('$[*][*]'), 1_000_000), 'ok');
  });
});

describe('JSON scanner: skeleton', () => {
  it('gives, for selectors on existing paths, nodes whose spans and values are what JSON.parse gives there', () => {
    const extra = ['$.zz', '$.a.zz', '$[*].zz', '$.a[*]', '$.b[*].c'];
    fc.assert(
      fc.property(
        jsonDoc,
        choices,
        fc.array(fc.nat(), { maxLength: 6 }),
        fc.subarray(extra),
        (doc, cs, picks, extraSelectors) => {
          const paths = new Map<string, SelectorSegment[]>();
          pathsOf(doc, [], paths);
          const texts = [...paths.keys()];
          const chosen = texts.length === 0 ? [] : picks.map((k) => texts[k % texts.length] as string);
          const selectors = [...chosen, ...extraSelectors].map(parseSelector);
          const plan = compilePlan(selectors);
          const text = renderTop(doc, picker(cs));
          const bytes = Buffer.from(text, 'utf8');
          const r = scan(bytes, plan);
          if (dupOnPlan(parseTree(text), plan)) {
            // A member beside a case variant of it (`a` and `A`) where only one is selected.
            assert.deepEqual(r, { ok: false, code: 'json_duplicate_key' }, text);
            return;
          }
          assert.ok(r.ok, `refused ${text}`);
          checkSkeleton(bytes, r.root, JSON.parse(text) as Json, plan);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('lists every element of a [*] array in order, and only planned members of objects', () => {
    const text = ' { "x" : 1 , "items" : [ {"v":"\\u0041","w":2} , 7 , null , {"v":[]} , {} ] , "y" : {"v":3} } ';
    const bytes = Buffer.from(text, 'utf8');
    const r = scan(bytes, planOf('$.items[*].v', '$.y'));
    assert.ok(r.ok);
    assert.deepEqual([...(r.root.members?.keys() ?? [])], ['items', 'y']);
    const items = r.root.members?.get('items')?.items ?? [];
    assert.deepEqual(
      items.map((n) => n.type),
      ['object', 'number', 'null', 'object', 'object'],
    );
    assert.deepEqual(
      items.map((n) => text.slice(n.start, n.end)),
      ['{"v":"\\u0041","w":2}', '7', 'null', '{"v":[]}', '{}'],
    );
    const v0 = items[0]?.members?.get('v') as JsonNode;
    assert.deepEqual([...(items[0]?.members?.keys() ?? [])], ['v']);
    assert.equal(v0.escaped, true);
    assert.equal(nodeValue(bytes, v0), 'A');
    assert.equal(items[1]?.members, undefined);
    assert.equal(items[3]?.members?.get('v')?.type, 'array');
    assert.equal(items[4]?.members?.size, 0);
    const y = r.root.members?.get('y') as JsonNode;
    assert.equal(text.slice(y.start, y.end), '{"v":3}');
    assert.equal(y.members, undefined);
    assert.equal(r.root.start, 1);
    assert.equal(r.root.end, text.length - 1);
  });

  it('matches escaped member names to selectors by their decoded value', () => {
    const text = '{"\\u0061":1,"\\u00e9":2,"\\"q\\"":3,"odd key":4,"\\ud83d\\ude00":5}';
    const bytes = Buffer.from(text, 'utf8');
    const r = scan(bytes, planOf('$.a', '$["é"]', '$["\\"q\\""]', '$["odd key"]', '$["😀"]'));
    assert.ok(r.ok);
    const got = Object.fromEntries([...(r.root.members ?? [])].map(([k, n]) => [k, nodeValue(bytes, n)]));
    assert.deepEqual(got, { a: 1, é: 2, '"q"': 3, 'odd key': 4, '😀': 5 });
  });

  it('matches a selector naming a lone surrogate only to that member, never to a raw U+FFFD name', () => {
    // Buffer.from('\ud800') is the UTF-8 of U+FFFD, but JSON.parse keeps '\ud800' and '\ufffd' apart.
    const plan = planOf('$["\\ud800"]');
    assert.equal(plan.members?.has('\ud800'), true);
    const raw = scan('{"\ufffd":1}', plan);
    assert.ok(raw.ok);
    assert.equal(raw.root.members?.size, 0, 'a raw U+FFFD member is not the lone surrogate the selector names');
    const escaped = '{"\\ud800":1}';
    const bytes = Buffer.from(escaped, 'utf8');
    const hit = scan(bytes, plan);
    assert.ok(hit.ok);
    assert.equal(nodeValue(bytes, hit.root.members?.get('\ud800') as JsonNode), 1);
    assert.equal(codeOf('{"\\ud800":1,"\ufffd":2}', plan), 'ok', 'two different names are not a duplicate');
    assert.equal(codeOf('{"\ufffd":1,"\\ud800":2}', plan), 'ok', 'two different names are not a duplicate');
    assert.equal(codeOf('{"\\ud800":1,"\\uD800":2}', plan), 'json_duplicate_key');
  });

  it('treats __proto__ and other Object.prototype names as ordinary members', () => {
    const text = '{"__proto__":{"a":"p"},"constructor":1,"toString":2}';
    const bytes = Buffer.from(text, 'utf8');
    const r = scan(bytes, planOf('$.__proto__.a', '$.constructor', '$.hasOwnProperty'));
    assert.ok(r.ok);
    assert.deepEqual([...(r.root.members?.keys() ?? [])], ['__proto__', 'constructor']);
    assert.equal(nodeValue(bytes, r.root.members?.get('__proto__')?.members?.get('a') as JsonNode), 'p');
    const empty = scan('{}', planOf('$.constructor', '$.__proto__'));
    assert.ok(empty.ok);
    assert.equal(empty.root.members?.size, 0);
  });

  it('records a planned node whatever its type (a scalar where the plan expects a container)', () => {
    const r = scan('{"a":"s","b":[1]}', planOf('$.a.b', '$.a[*]', '$.b.c'));
    assert.ok(r.ok);
    const a = r.root.members?.get('a') as JsonNode;
    assert.equal(a.type, 'string');
    assert.equal(a.members, undefined);
    assert.equal(a.items, undefined);
    const b = r.root.members?.get('b') as JsonNode;
    assert.equal(b.type, 'array');
    assert.equal(b.items, undefined);
    assert.equal(b.members, undefined);
  });
});

describe('JSON scanner: duplicate member names', () => {
  const cases: [string, string[], string][] = [
    ['{"a":1,"a":2}', ['$.a'], 'json_duplicate_key'],
    ['{"a":1,"a":2}', ['$.b'], 'ok'],
    ['{"a":1,"a":2}', [], 'ok'],
    ['{"a":1,"\\u0061":2}', ['$.a'], 'json_duplicate_key'],
    ['{"\\u0061":1,"a":2}', ['$.a'], 'json_duplicate_key'],
    ['{"é":1,"\\u00e9":2}', ['$["é"]'], 'json_duplicate_key'],
    ['{"a":{"x":1},"a":{"y":2}}', ['$.a.x'], 'json_duplicate_key'],
    ['{"a":[1],"b":2,"a":[3]}', ['$.a[*]'], 'json_duplicate_key'],
    ['{"x":{"a":1,"a":2}}', ['$.a'], 'ok'],
    ['{"a":{"b":1,"b":2}}', ['$.a'], 'ok'],
    ['{"a":{"b":1,"b":2}}', ['$.a.b'], 'json_duplicate_key'],
    ['{"a":{"b":1,"b":2}}', ['$.a.c'], 'ok'],
    ['{"a":[{"b":1,"b":2}]}', ['$.a[*].b'], 'json_duplicate_key'],
    ['{"a":[{"b":1},{"b":2}]}', ['$.a[*].b'], 'ok'],
    ['{"a":[{"b":1,"b":2}]}', ['$.a'], 'ok'],
    ['[{"a":1,"a":2}]', ['$[*].a'], 'json_duplicate_key'],
    ['[{"a":1,"a":2}]', ['$.a'], 'ok'],
    ['{"__proto__":1,"__proto__":2}', ['$.__proto__'], 'json_duplicate_key'],
    ['{"__proto__":1,"__proto__":2}', ['$.b'], 'ok'],
    ['{"constructor":1,"constructor":2}', ['$.constructor'], 'json_duplicate_key'],
    ['{"a":1,"b":2}', ['$.a', '$.b'], 'ok'],
    ['{"a":1,"A":2}', ['$.a', '$.A'], 'ok'],
    // Case variants of a planned name, alone or beside it, in either order, raw or escaped.
    ['{"card":{"number":"x","Number":"4111"}}', ['$.card.number'], 'json_duplicate_key'],
    ['{"card":{"Number":"4111","number":"x"}}', ['$.card.number'], 'json_duplicate_key'],
    ['{"card":{"Number":"4111"}}', ['$.card.number'], 'json_duplicate_key'],
    ['{"card":{"NUMBER":"4111"}}', ['$.card.number'], 'json_duplicate_key'],
    ['{"card":{"\\u004eumber":"4111"}}', ['$.card.number'], 'json_duplicate_key'],
    ['{"Card":{"number":"4111"}}', ['$.card.number'], 'json_duplicate_key'],
    ['[{"ID":1}]', ['$[*].id'], 'json_duplicate_key'],
    ['{"a":1,"A":2}', ['$.a'], 'json_duplicate_key'],
    ['{"A":1}', ['$.a'], 'json_duplicate_key'],
    ['{"a":1}', ['$.A'], 'json_duplicate_key'],
    ['{"é":1,"É":2}', ['$["é"]'], 'json_duplicate_key'],
    // Go folds ſ to s and the Kelvin sign to k; .NET upper-cases ı to I; Jackson under a Turkish locale lower-cases İ to i.
    ['{"ſsn":"123"}', ['$.ssn'], 'json_duplicate_key'],
    ['{"\\u017fsn":"123"}', ['$.ssn'], 'json_duplicate_key'],
    ['{"\u212aey":"k"}', ['$.key'], 'json_duplicate_key'],
    ['{"ıd":1}', ['$.id'], 'json_duplicate_key'],
    ['{"İD":1}', ['$.id'], 'json_duplicate_key'],
    ['{"ssn":"x"}', ['$["ſsn"]'], 'json_duplicate_key'],
    // Not variants: other names, other objects, names off the plan.
    ['{"card":{"numbers":"x","numbe":"y","nümber":"z"}}', ['$.card.number'], 'ok'],
    ['{"card":{"number":"x"},"other":{"Number":"y","NUMBER":"z"}}', ['$.card.number'], 'ok'],
    ['{"card":{"number":"x"},"CARDS":1}', ['$.card.number'], 'ok'],
    ['{"x":{"A":1}}', ['$.a'], 'ok'],
    ['{"card":[{"Number":1}]}', ['$.card.number'], 'ok'],
    ['{"ss":2,"SS":3}', ['$["ẞ"]'], 'ok'],
    ['{"ß":1}', ['$["ẞ"]'], 'json_duplicate_key'],
  ];

  it('refuses a repeated member exactly where the plan steps into it', () => {
    for (const [text, selectors, expected] of cases) {
      assert.ok(jsonParses(text), text);
      assert.equal(codeOf(text, planOf(...selectors)), expected, `${text} with ${selectors.join(' ')}`);
    }
  });

  it('says why it refuses a case variant, without quoting the name', () => {
    const err = (() => {
      try {
        scanJson(Buffer.from(`{"${MARKER.toUpperCase()}":1}`), planOf(`$["${MARKER.toLowerCase()}"]`), BIG);
      } catch (e) {
        return e as KcmError;
      }
      assert.fail('accepted');
    })();
    assert.equal(err.code, 'json_duplicate_key');
    assert.equal(err.detail, 'a member name differs only in letter case from one the policy selects');
  });

  it('agrees with the reference on random objects with repeated names', () => {
    const value = fc.oneof(fc.constant('1'), fc.constant('[]'), fc.constant('{"a":1,"a":2}'), fc.constant('[{"b":1}]'));
    const name = fc.constantFrom('"a"', '"b"', '"\\u0061"', '"\\u0062"', '"c"', '"A"', '"\\u0042"', '"ſ"', '"B"');
    const obj = fc
      .array(fc.tuple(name, value), { maxLength: 5 })
      .map((es) => `{${es.map(([k, v]) => `${k}:${v}`).join(',')}}`);
    const plans = [EMPTY, planOf('$.a'), planOf('$.b'), planOf('$.a.a'), planOf('$.b[*].b'), planOf('$.c', '$.a.b')];
    fc.assert(
      fc.property(obj, fc.constantFrom(...plans), (text, plan) => {
        checkAgainstJsonParse(text, plan);
      }),
      { numRuns: 1000 },
    );
  });
});

describe('JSON scanner: errors never quote the body', () => {
  function refusal(text: string, plan: PlanNode, maxDepth = BIG): KcmError {
    try {
      scanJson(Buffer.from(text, 'utf8'), plan, maxDepth);
    } catch (err) {
      assert.ok(err instanceof KcmError);
      return err;
    }
    assert.fail(`accepted ${text}`);
  }

  it('keeps the marker out of malformed, too-deep and duplicate-key errors', () => {
    const m = JSON.stringify(MARKER);
    const bad: [string, PlanNode, number][] = [
      [`{${m}:1,}`, EMPTY, BIG],
      [`{${m}}`, PLAN, BIG],
      [`[${m} ${m}]`, EMPTY, BIG],
      [`"${MARKER}\\x"`, EMPTY, BIG],
      [`"${MARKER}\n"`, EMPTY, BIG],
      [`"${MARKER}`, EMPTY, BIG],
      [MARKER, EMPTY, BIG],
      [`${m} ${MARKER}`, EMPTY, BIG],
      [`[[[${m}]]]`, EMPTY, 2],
      [`{${m}:1,${m}:2}`, compilePlan([parseSelector(`$[${m}]`)]), BIG],
      [`{"a":${m},"a":${m}}`, planOf('$.a'), BIG],
    ];
    for (const [text, plan, maxDepth] of bad) {
      const err = refusal(text, plan, maxDepth);
      assert.ok(!err.message.includes(MARKER), `${err.message} (for ${text})`);
      assert.ok(!(err.detail ?? '').includes('MARKER'), `${err.detail} (for ${text})`);
    }
  });

  it('keeps random body text out of every error', () => {
    const doc = fc.jsonValue({ maxDepth: 3, stringUnit: fc.constantFrom('a', MARKER, '"') }) as fc.Arbitrary<Json>;
    fc.assert(
      fc.property(
        doc,
        choices,
        fc.array(mutation, { minLength: 1, maxLength: 2 }),
        fc.nat({ max: 3 }),
        (v, cs, ms, maxDepth) => {
          const text = mutate(renderTop(v, picker(cs)), ms);
          for (const plan of PLANS) {
            try {
              scanJson(Buffer.from(text, 'utf8'), plan, maxDepth);
            } catch (err) {
              assert.ok(err instanceof KcmError);
              assert.ok(!err.message.includes('MARKER'), err.message);
            }
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});
