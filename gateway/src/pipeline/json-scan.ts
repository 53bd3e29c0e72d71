/**
 * A strict, single-pass JSON scanner over bytes that keeps only what the
 * policy selects: it checks the whole body against RFC 8259 (syntax, string
 * escapes, number grammar, one value, nesting depth) and returns a skeleton
 * made of the nodes lying on the selectors' paths, each with the byte span of
 * its value in the body. Everything else is validated and skipped, never
 * materialised: no object graph, no re-serialisation. The proxy then splices
 * new values into the original bytes (json-splice.ts), so every byte the
 * policy does not select reaches the other side exactly as it was sent
 * (number precision, key order, whitespace).
 *
 * Duplicate member names: JSON.parse keeps the last, other parsers the first.
 * A body that repeats a member the plan steps into is refused
 * (`json_duplicate_key`), so no consumer can read a clear duplicate of a field
 * the gateway encrypted. Repeats elsewhere are left alone.
 *
 * Case variants: Go's encoding/json, .NET's System.Text.Json with
 * PropertyNameCaseInsensitive and Jackson with ACCEPT_CASE_INSENSITIVE_PROPERTIES
 * bind a member whose name differs from the expected one only in letter case
 * (Go also folds `ſ` to `s` and the Kelvin sign to `k`). In an object the plan
 * steps into, a member whose name equals a planned name under
 * {@link foldName} but not exactly is refused like a duplicate
 * (`json_duplicate_key`): `{"card":{"Number":"4111"}}` would otherwise pass
 * in clear to such an upstream as `card.number`. Objects off the plan are not
 * checked.
 *
 * The body must already be valid UTF-8 (json-body.ts checks it first); bytes
 * ≥ 0x80 are then only ever inside strings or a syntax error.
 * Errors never quote the body.
 */
import { KcmError } from '../../../common/src/errors.ts';
import { hasLoneSurrogate } from '../../../common/src/format/unicode.ts';
import type { Selector } from '../policy/selector.ts';

/** The selectors of one direction compiled into a trie of steps. */
export interface PlanNode {
  /** Member names stepped into from an object here, and where each leads. */
  members?: Map<string, PlanNode>;
  /** The same names as UTF-8 bytes (those that have a UTF-8 form), to match unescaped member names without decoding them. */
  names?: { name: string; bytes: Buffer; next: PlanNode }[];
  /** {@link foldName} of every name of `members`: a member that is not one of them but folds to one is refused. */
  folds?: Set<string>;
  /** The folds of `folds` that are ASCII, as bytes, to check ASCII member names without decoding them. */
  asciiFolds?: Buffer[];
  /** Where `[*]` leads from an array here. */
  each?: PlanNode;
}

export type JsonType = 'object' | 'array' | 'string' | 'number' | 'boolean' | 'null';

/** A value on a planned path: its type and byte span `[start, end)` in the body. */
export interface JsonNode {
  type: JsonType;
  start: number;
  end: number;
  /** Objects the plan steps into: their planned members only. */
  members?: Map<string, JsonNode>;
  /** Arrays the plan steps into with `[*]`: every element. */
  items?: JsonNode[];
  /** Strings holding at least one backslash escape (decode with JSON.parse). */
  escaped?: boolean;
}

const NON_ASCII = /[^\0-\x7f]/;

/** One code point's case fold: upper then lower case (single code points only), İ as i. */
function foldChar(ch: string): string {
  if (ch === '\u0130') return 'i'; // İ: lower case "i̇" (two code points); Jackson under a Turkish locale binds it as i.
  const upper = ch.toUpperCase();
  const base = upper.length === ch.length ? upper : ch; // ß → "SS" is not a simple mapping
  const lower = base.toLowerCase();
  return lower.length === base.length ? lower : base;
}

/**
 * A member name's case fold, code point by code point (upper case, then lower
 * case, where each is one code point). Two names that any of Go's
 * `bytes.EqualFold` (simple Unicode folding: S s ſ, K k K), .NET's
 * `OrdinalIgnoreCase` (ı ~ I) or Jackson's `toLowerCase` treat as equal get
 * the same fold. ASCII names fold to their ASCII lower case.
 */
export function foldName(name: string): string {
  if (!NON_ASCII.test(name)) return name.toLowerCase();
  let out = '';
  for (const ch of name) out += foldChar(ch);
  return out;
}

/**
 * {@link foldName} of `name` when it is ASCII, else undefined: the folds an
 * unescaped ASCII member name is compared with byte by byte (here, and in
 * the native target pass's rules, json-targets.ts).
 */
export function asciiFold(name: string): string | undefined {
  const fold = foldName(name);
  return NON_ASCII.test(fold) ? undefined : fold;
}

/** Compiles selectors into one trie (shared prefixes share nodes). */
export function compilePlan(selectors: readonly Selector[]): PlanNode {
  const root: PlanNode = {};
  for (const s of selectors) {
    let node = root;
    for (const seg of s.segments) {
      if (seg.kind === 'each') {
        node.each ??= {};
        node = node.each;
      } else {
        node.members ??= new Map();
        node.names ??= [];
        node.folds ??= new Set();
        node.asciiFolds ??= [];
        let next = node.members.get(seg.name);
        if (!next) {
          next = {};
          node.members.set(seg.name, next);
          // A name with a lone surrogate has no UTF-8 form: only an escaped member name can equal it.
          if (!hasLoneSurrogate(seg.name))
            node.names.push({ name: seg.name, bytes: Buffer.from(seg.name, 'utf8'), next });
          const fold = foldName(seg.name);
          if (!node.folds.has(fold)) {
            node.folds.add(fold);
            const ascii = asciiFold(seg.name);
            if (ascii !== undefined) node.asciiFolds.push(Buffer.from(ascii, 'latin1'));
          }
        }
        node = next;
      }
    }
  }
  return root;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const LBRACE = 0x7b;
const RBRACE = 0x7d;
const LBRACKET = 0x5b;
const RBRACKET = 0x5d;
const MINUS = 0x2d;
const PLUS = 0x2b;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;

/** Bytes that end the fast run of a string: the quote, the backslash, and control characters. */
const STRING_STOP = new Uint8Array(256);
for (let c = 0; c < 0x20; c++) STRING_STOP[c] = 1;
STRING_STOP[QUOTE] = 1;
STRING_STOP[BACKSLASH] = 1;

/** The escape letters after a backslash: " \ / b f n r t (u is handled apart). */
const SIMPLE_ESCAPE = new Uint8Array(128);
for (const c of '"\\/bfnrt') SIMPLE_ESCAPE[c.charCodeAt(0)] = 1;

const HEX = new Uint8Array(128);
for (const c of '0123456789abcdefABCDEF') HEX[c.charCodeAt(0)] = 1;

function malformed(): never {
  throw new KcmError('json_malformed');
}

function isDigit(c: number | undefined): boolean {
  return c !== undefined && c >= ZERO && c <= NINE;
}

/** The UTF-8 text of `b[start, end)` (a view, no copy of the bytes). */
export function utf8Text(b: Uint8Array, start: number, end: number): string {
  return Buffer.from(b.buffer, b.byteOffset + start, end - start).toString('utf8');
}

/** The planned name whose UTF-8 bytes are exactly `b[from, to)`, if any. */
function matchName(b: Uint8Array, from: number, to: number, names: NonNullable<PlanNode['names']>) {
  const n = to - from;
  outer: for (const entry of names) {
    const bytes = entry.bytes;
    if (bytes.length !== n) continue;
    for (let k = 0; k < n; k++) if (bytes[k] !== b[from + k]) continue outer;
    return entry;
  }
  return undefined;
}

/**
 * True when the member name `b[from, to)` (unescaped, not a planned name)
 * folds to a planned name: ASCII names are compared byte by byte with the
 * ASCII folds, others are decoded and folded.
 */
function isCaseVariant(b: Uint8Array, from: number, to: number, plan: PlanNode): boolean {
  const n = to - from;
  let any = 0;
  for (let k = from; k < to; k++) any |= b[k] as number;
  if (any >= 0x80) return (plan.folds as Set<string>).has(foldName(utf8Text(b, from, to)));
  outer: for (const fold of plan.asciiFolds as Buffer[]) {
    if (fold.length !== n) continue;
    for (let k = 0; k < n; k++) {
      let c = b[from + k] as number;
      if (c >= 0x41 && c <= 0x5a) c |= 0x20;
      if (c !== fold[k]) continue outer;
    }
    return true;
  }
  return false;
}

function caseVariant(): never {
  throw new KcmError('json_duplicate_key', 'a member name differs only in letter case from one the policy selects');
}

/** One open array or object. Frames off the plan are shared constants (nothing to record). */
interface Frame {
  readonly object: boolean;
  readonly plan: PlanNode | undefined;
  readonly node: JsonNode | undefined;
  /** Objects: the planned member whose value is being read. */
  key: string | undefined;
}

const OFF_OBJECT: Frame = Object.freeze({ object: true, plan: undefined, node: undefined, key: undefined });
const OFF_ARRAY: Frame = Object.freeze({ object: false, plan: undefined, node: undefined, key: undefined });

class Scanner {
  private i = 0;
  private escaped = false;
  private readonly len: number;

  constructor(
    private readonly b: Uint8Array,
    private readonly maxDepth: number,
  ) {
    this.len = b.length;
  }

  private ws(i: number): number {
    const { b, len } = this;
    while (i < len) {
      const c = b[i] as number;
      if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
      i++;
    }
    return i;
  }

  /** Scans the string whose opening quote is at `i`; returns the index after its closing quote. */
  private string(i: number): number {
    const { b, len } = this;
    this.escaped = false;
    i++;
    while (i < len) {
      const c = b[i] as number;
      if (STRING_STOP[c] === 0) {
        i++;
        continue;
      }
      if (c === QUOTE) return i + 1;
      if (c === BACKSLASH) {
        this.escaped = true;
        const e = b[i + 1];
        if (e === undefined || e >= 128) malformed();
        if (e === 0x75) {
          for (let k = i + 2; k < i + 6; k++) {
            const h = b[k];
            if (h === undefined || h >= 128 || HEX[h] === 0) malformed();
          }
          i += 6;
        } else if (SIMPLE_ESCAPE[e] === 1) i += 2;
        else malformed();
      } else if (c < 0x20) malformed();
      else i++;
    }
    return malformed();
  }

  /** Scans the number starting at `i`; returns the index after it. */
  private number(i: number): number {
    const { b } = this;
    if (b[i] === MINUS) i++;
    if (b[i] === ZERO) i++;
    else if (isDigit(b[i])) while (isDigit(b[i])) i++;
    else malformed();
    if (b[i] === DOT) {
      i++;
      if (!isDigit(b[i])) malformed();
      while (isDigit(b[i])) i++;
    }
    if (b[i] === 0x65 || b[i] === 0x45) {
      i++;
      if (b[i] === PLUS || b[i] === MINUS) i++;
      if (!isDigit(b[i])) malformed();
      while (isDigit(b[i])) i++;
    }
    return i;
  }

  private literal(i: number, text: string): number {
    const { b } = this;
    for (let k = 0; k < text.length; k++) if (b[i + k] !== text.charCodeAt(k)) malformed();
    return i + text.length;
  }

  /**
   * Reads the member name at `i` of `frame` up to and past its colon; returns
   * the plan of its value (undefined off the plan).
   */
  private key(frame: Frame, i: number): PlanNode | undefined {
    const { b } = this;
    if (b[i] !== QUOTE) malformed();
    const end = this.string(i);
    let childPlan: PlanNode | undefined;
    const plan = frame.plan;
    if (plan?.names !== undefined) {
      let name: string | undefined;
      if (this.escaped) {
        name = JSON.parse(utf8Text(b, i, end)) as string;
        childPlan = plan.members?.get(name);
        if (childPlan === undefined && plan.folds?.has(foldName(name))) caseVariant();
      } else {
        const found = matchName(b, i + 1, end - 1, plan.names);
        if (found !== undefined) {
          name = found.name;
          childPlan = found.next;
        } else if (isCaseVariant(b, i + 1, end - 1, plan)) caseVariant();
      }
      if (childPlan !== undefined) {
        if ((frame.node as JsonNode).members?.has(name as string)) throw new KcmError('json_duplicate_key');
        frame.key = name;
      }
    }
    i = this.ws(end);
    if (b[i] !== COLON) malformed();
    this.i = this.ws(i + 1);
    return childPlan;
  }

  scan(plan: PlanNode | undefined): JsonNode | undefined {
    const { b, len } = this;
    const stack: Frame[] = [];
    let i = this.ws(0);
    let valuePlan = plan;
    for (;;) {
      // One value starts at i; `done` is its node once complete (when on the plan).
      let done: JsonNode | undefined;
      const c = b[i];
      if (c === LBRACE || c === LBRACKET) {
        if (stack.length === this.maxDepth) throw new KcmError('json_too_deep', `more than ${this.maxDepth} levels`);
        const object = c === LBRACE;
        let frame: Frame;
        if (valuePlan !== undefined) {
          const node: JsonNode = { type: object ? 'object' : 'array', start: i, end: -1 };
          if (object && valuePlan.members !== undefined) node.members = new Map();
          if (!object && valuePlan.each !== undefined) node.items = [];
          frame = { object, plan: valuePlan, node, key: undefined };
        } else frame = object ? OFF_OBJECT : OFF_ARRAY;
        stack.push(frame);
        i = this.ws(i + 1);
        if (b[i] !== (object ? RBRACE : RBRACKET)) {
          if (object) {
            valuePlan = this.key(frame, i);
            i = this.i;
          } else valuePlan = frame.plan?.each;
          continue;
        }
        i++;
        stack.pop();
        done = frame.node;
        if (done !== undefined) done.end = i;
      } else if (c === QUOTE) {
        const start = i;
        i = this.string(i);
        if (valuePlan !== undefined) done = { type: 'string', start, end: i, escaped: this.escaped };
      } else {
        const start = i;
        let type: JsonType;
        if (c === MINUS || isDigit(c)) {
          i = this.number(i);
          type = 'number';
        } else if (c === 0x74) {
          i = this.literal(i, 'true');
          type = 'boolean';
        } else if (c === 0x66) {
          i = this.literal(i, 'false');
          type = 'boolean';
        } else if (c === 0x6e) {
          i = this.literal(i, 'null');
          type = 'null';
        } else return malformed();
        if (valuePlan !== undefined) done = { type, start, end: i };
      }
      // The value is complete: record it, then close every container it completes.
      for (;;) {
        const top = stack[stack.length - 1];
        if (top === undefined) {
          if (this.ws(i) !== len) malformed();
          return done;
        }
        if (done !== undefined && top.node !== undefined) {
          if (top.object) top.node.members?.set(top.key as string, done);
          else top.node.items?.push(done);
        }
        i = this.ws(i);
        const sep = b[i];
        if (sep === COMMA) {
          i = this.ws(i + 1);
          if (top.object) {
            valuePlan = this.key(top, i);
            i = this.i;
          } else valuePlan = top.plan?.each;
          break;
        }
        if (sep !== (top.object ? RBRACE : RBRACKET)) malformed();
        i++;
        stack.pop();
        done = top.node;
        if (done !== undefined) done.end = i;
      }
    }
  }
}

/**
 * Scans `body` (valid UTF-8) as one JSON value and returns the skeleton of
 * the values on `plan`'s paths (the root node; undefined when `plan` is
 * undefined). Throws KcmError `json_malformed`, `json_too_deep` (more than
 * `maxDepth` nested arrays/objects), `json_duplicate_key` (a planned member
 * repeated, or a case variant of one). Iterative: no
 * input can exhaust the stack.
 */
export function scanJson(body: Uint8Array, plan: PlanNode | undefined, maxDepth: number): JsonNode | undefined {
  return new Scanner(body, maxDepth).scan(plan);
}
