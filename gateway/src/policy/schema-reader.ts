/**
 * Typed reads of positioned JSON nodes that record schema errors as
 * `file:line:column: field.path: reason` instead of throwing, so one load
 * reports every mistake in a file. Values in messages are limited to what a
 * policy author wrote (policy files hold no secrets).
 */
import type { Position, PositionedEntry, PositionedNode } from './json-position-reader.ts';

/** Most errors one load reports; the rest are counted. */
export const MAX_REPORTED_ERRORS = 25;

export class SchemaErrors {
  readonly messages: string[] = [];
  private dropped = 0;
  constructor(readonly file: string) {}

  /** Records `reason` at `pos` for the field `path`. */
  add(pos: Position, path: string, reason: string): void {
    if (this.messages.length >= MAX_REPORTED_ERRORS) {
      this.dropped++;
      return;
    }
    this.messages.push(`${this.file}:${pos.line}:${pos.column}: ${path || '(top level)'}: ${reason}`);
  }

  get count(): number {
    return this.messages.length + this.dropped;
  }

  /** All messages, one per line, with a count of those left out. */
  text(): string {
    return this.dropped ? [...this.messages, `… and ${this.dropped} more`].join('\n') : this.messages.join('\n');
  }
}

/** `base.key` or `base[i]`. */
export function childPath(base: string, key: string | number): string {
  if (typeof key === 'number') return `${base}[${key}]`;
  return /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(key) ? (base ? `${base}.${key}` : key) : `${base}[${JSON.stringify(key)}]`;
}

function kindName(node: PositionedNode): string {
  return node.kind === 'object' ? 'an object' : node.kind === 'array' ? 'an array' : `a ${node.kind}`;
}

/** A JSON object's members by name, after reporting unknown and missing ones. */
export class ObjectReader {
  private readonly members = new Map<string, PositionedEntry>();
  constructor(
    readonly errors: SchemaErrors,
    readonly node: PositionedNode & { kind: 'object' },
    readonly path: string,
    allowed: readonly string[],
  ) {
    for (const e of node.entries) {
      if (!allowed.includes(e.key)) {
        errors.add(e.keyPos, childPath(path, e.key), `unknown field (allowed: ${allowed.join(', ')})`);
      } else this.members.set(e.key, e);
    }
  }

  /** The member `key`, or undefined (after reporting it when `required`). */
  get(key: string, required: boolean): PositionedNode | undefined {
    const e = this.members.get(key);
    if (!e && required) this.errors.add(this.node.pos, this.path, `missing required field "${key}"`);
    return e?.value;
  }

  has(key: string): boolean {
    return this.members.has(key);
  }

  /** Path of member `key`. */
  pathOf(key: string): string {
    return childPath(this.path, key);
  }
}

/** An ObjectReader for `node`, or undefined after reporting that it is not an object. */
export function readObject(
  errors: SchemaErrors,
  node: PositionedNode,
  path: string,
  allowed: readonly string[],
): ObjectReader | undefined {
  if (node.kind !== 'object') {
    errors.add(node.pos, path, `expected an object, found ${kindName(node)}`);
    return undefined;
  }
  return new ObjectReader(errors, node, path, allowed);
}

/** The string value, or undefined after reporting; `pattern`/`max` constrain it. */
export function readString(
  errors: SchemaErrors,
  node: PositionedNode,
  path: string,
  rule?: { pattern?: RegExp; max?: number; what?: string },
): string | undefined {
  if (node.kind !== 'string') {
    errors.add(node.pos, path, `expected a string, found ${kindName(node)}`);
    return undefined;
  }
  const max = rule?.max ?? 1024;
  if (node.value.length === 0 || node.value.length > max) {
    errors.add(node.pos, path, `must be 1-${max} characters`);
    return undefined;
  }
  if (rule?.pattern && !rule.pattern.test(node.value)) {
    errors.add(node.pos, path, `must be ${rule.what ?? `a string matching ${rule.pattern}`}`);
    return undefined;
  }
  return node.value;
}

/** One of `values`, or undefined after reporting. */
export function readEnum<T extends string>(
  errors: SchemaErrors,
  node: PositionedNode,
  path: string,
  values: readonly T[],
): T | undefined {
  if (node.kind !== 'string' || !values.includes(node.value as T)) {
    errors.add(node.pos, path, `must be one of ${values.map((v) => JSON.stringify(v)).join(', ')}`);
    return undefined;
  }
  return node.value as T;
}

/** An integer in [min, max], or undefined after reporting. */
export function readInteger(
  errors: SchemaErrors,
  node: PositionedNode,
  path: string,
  min: number,
  max: number,
): number | undefined {
  if (node.kind !== 'number' || !Number.isInteger(node.value) || node.value < min || node.value > max) {
    errors.add(node.pos, path, `must be an integer from ${min} to ${max}`);
    return undefined;
  }
  return node.value;
}

/** The items of an array (at most `max`), or undefined after reporting. */
export function readArray(
  errors: SchemaErrors,
  node: PositionedNode,
  path: string,
  max: number,
): PositionedNode[] | undefined {
  if (node.kind !== 'array') {
    errors.add(node.pos, path, `expected an array, found ${kindName(node)}`);
    return undefined;
  }
  if (node.items.length > max) {
    errors.add(node.pos, path, `at most ${max} items`);
    return undefined;
  }
  return node.items;
}

/** An array of strings each passing `rule`; undefined items are dropped after reporting. */
export function readStringArray(
  errors: SchemaErrors,
  node: PositionedNode,
  path: string,
  max: number,
  rule?: { pattern?: RegExp; max?: number; what?: string },
): string[] | undefined {
  const items = readArray(errors, node, path, max);
  if (!items) return undefined;
  const out: string[] = [];
  items.forEach((item, i) => {
    const s = readString(errors, item, childPath(path, i), rule);
    if (s !== undefined) out.push(s);
  });
  return out;
}
