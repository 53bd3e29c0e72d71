/**
 * A small JSON reader that remembers where every value and key starts, so a
 * policy schema error can name `file:line:column` and the field path. It is
 * for policy files (small, trusted to be well-formed or rejected), not for
 * request bodies: those go through JSON.parse after a depth pre-scan
 * (pipeline/json-body.ts).
 *
 * Strict RFC 8259: no comments, no trailing commas, no duplicate keys (a
 * duplicate is an error here, because two values for one security setting
 * must never be resolved silently), nesting at most {@link MAX_POLICY_DEPTH}.
 */

/** Line and column, both 1-based; columns count UTF-16 code units. */
export interface Position {
  line: number;
  column: number;
}

export type PositionedNode =
  | { kind: 'object'; pos: Position; entries: PositionedEntry[] }
  | { kind: 'array'; pos: Position; items: PositionedNode[] }
  | { kind: 'string'; pos: Position; value: string }
  | { kind: 'number'; pos: Position; value: number }
  | { kind: 'boolean'; pos: Position; value: boolean }
  | { kind: 'null'; pos: Position };

export interface PositionedEntry {
  key: string;
  keyPos: Position;
  value: PositionedNode;
}

/** Deepest nesting a policy file may have. */
export const MAX_POLICY_DEPTH = 32;

/** A syntax error at a position; the loader turns it into KcmError `invalid_policy`. */
export class JsonSyntaxError extends Error {
  constructor(
    readonly pos: Position,
    readonly reason: string,
  ) {
    super(`${pos.line}:${pos.column}: ${reason}`);
  }
}

const ESCAPES: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };

class Reader {
  private i = 0;
  private line = 1;
  private lineStart = 0;
  constructor(private readonly text: string) {}

  pos(): Position {
    return { line: this.line, column: this.i - this.lineStart + 1 };
  }

  fail(reason: string, at: Position = this.pos()): never {
    throw new JsonSyntaxError(at, reason);
  }

  skipSpace(): void {
    const t = this.text;
    while (this.i < t.length) {
      const c = t.charCodeAt(this.i);
      if (c === 0x0a) {
        this.i++;
        this.line++;
        this.lineStart = this.i;
      } else if (c === 0x20 || c === 0x09 || c === 0x0d) this.i++;
      else break;
    }
  }

  document(): PositionedNode {
    if (this.text.charCodeAt(0) === 0xfeff) this.i = 1;
    this.skipSpace();
    const node = this.value(0);
    this.skipSpace();
    if (this.i < this.text.length) this.fail('unexpected text after the JSON value');
    return node;
  }

  value(depth: number): PositionedNode {
    if (depth > MAX_POLICY_DEPTH) this.fail(`nesting deeper than ${MAX_POLICY_DEPTH}`);
    const pos = this.pos();
    const c = this.text[this.i];
    if (c === '{') return this.object(pos, depth);
    if (c === '[') return this.array(pos, depth);
    if (c === '"') return { kind: 'string', pos, value: this.string() };
    if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) return { kind: 'number', pos, value: this.number() };
    for (const [word, node] of [
      ['true', { kind: 'boolean', pos, value: true }],
      ['false', { kind: 'boolean', pos, value: false }],
      ['null', { kind: 'null', pos }],
    ] as const) {
      if (this.text.startsWith(word, this.i)) {
        this.i += word.length;
        return node;
      }
    }
    return this.fail(c === undefined ? 'unexpected end of input' : `unexpected character ${JSON.stringify(c)}`);
  }

  object(pos: Position, depth: number): PositionedNode {
    this.i++;
    const entries: PositionedEntry[] = [];
    const seen = new Set<string>();
    this.skipSpace();
    if (this.text[this.i] === '}') {
      this.i++;
      return { kind: 'object', pos, entries };
    }
    for (;;) {
      this.skipSpace();
      const keyPos = this.pos();
      if (this.text[this.i] !== '"') this.fail('expected a "quoted" key');
      const key = this.string();
      if (seen.has(key)) this.fail(`duplicate key ${JSON.stringify(key)}`, keyPos);
      seen.add(key);
      this.skipSpace();
      if (this.text[this.i] !== ':') this.fail('expected ":" after the key');
      this.i++;
      this.skipSpace();
      entries.push({ key, keyPos, value: this.value(depth + 1) });
      this.skipSpace();
      const c = this.text[this.i++];
      if (c === '}') return { kind: 'object', pos, entries };
      if (c !== ',') this.fail('expected "," or "}"', { line: this.line, column: this.i - this.lineStart });
    }
  }

  array(pos: Position, depth: number): PositionedNode {
    this.i++;
    const items: PositionedNode[] = [];
    this.skipSpace();
    if (this.text[this.i] === ']') {
      this.i++;
      return { kind: 'array', pos, items };
    }
    for (;;) {
      this.skipSpace();
      items.push(this.value(depth + 1));
      this.skipSpace();
      const c = this.text[this.i++];
      if (c === ']') return { kind: 'array', pos, items };
      if (c !== ',') this.fail('expected "," or "]"', { line: this.line, column: this.i - this.lineStart });
    }
  }

  string(): string {
    const start = this.pos();
    this.i++;
    let out = '';
    const t = this.text;
    for (;;) {
      const c = t[this.i];
      if (c === undefined) this.fail('unterminated string', start);
      if (c === '"') {
        this.i++;
        return out;
      }
      if (c < ' ') this.fail('control character in a string');
      if (c === '\\') {
        const e = t[this.i + 1];
        if (e === 'u') {
          const hex = t.slice(this.i + 2, this.i + 6);
          if (!/^[0-9a-fA-F]{4}$/.test(hex)) this.fail('bad \\u escape');
          out += String.fromCharCode(Number.parseInt(hex, 16));
          this.i += 6;
        } else {
          const rep = e === undefined ? undefined : ESCAPES[e];
          if (rep === undefined) this.fail('bad escape');
          out += rep;
          this.i += 2;
        }
      } else {
        out += c;
        this.i++;
      }
    }
  }

  number(): number {
    const start = this.pos();
    const m = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/.exec(this.text.slice(this.i, this.i + 64));
    if (!m) this.fail('malformed number', start);
    this.i += m[0].length;
    const next = this.text[this.i];
    if (next !== undefined && /[0-9.eE+-]/.test(next)) this.fail('malformed number', start);
    return Number(m[0]);
  }
}

/** Parses `text` into positioned nodes. Throws {@link JsonSyntaxError} with the position of the first error. */
export function readPositionedJson(text: string): PositionedNode {
  return new Reader(text).document();
}

/** The plain value of a node, as JSON.parse would build it (a "__proto__" key stays an own member). */
export function plainValue(node: PositionedNode): unknown {
  switch (node.kind) {
    case 'object': {
      const o: Record<string, unknown> = {};
      for (const e of node.entries) Object.defineProperty(o, e.key, { value: plainValue(e.value), enumerable: true });
      return o;
    }
    case 'array':
      return node.items.map(plainValue);
    case 'null':
      return null;
    default:
      return node.value;
  }
}
