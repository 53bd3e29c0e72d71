/**
 * Finds the values a route's selectors name in a parsed JSON document.
 *
 * Shape rules (policies/README.md "Selecting fields"):
 * - A member step reads only an object's own member (never the prototype:
 *   `$.constructor` selects nothing on `{}`); `[*]` steps only into arrays.
 * - Absent, or `null`, anywhere along the way: the field is missing, and the
 *   rule's `onMissing` decides (`error` → `selector_missing`, `skip`).
 * - Any other type where the selector needs an object or array (a string
 *   where `$.card.number` needs `card` to be an object): always
 *   `selector_type_mismatch`, whatever `onMissing` says, because data in an
 *   unexpected shape may be exactly what the policy meant to protect.
 * Error details name the concrete path (`$.items[3].card.number`), which
 * comes from the policy and array indices, never from document content.
 */
import { KcmError } from '../../../common/src/errors.ts';
import type { FieldRule } from '../policy/policy-types.ts';
import { formatSegments, type Selector, type SelectorSegment } from '../policy/selector.ts';

export type JsonContainer = Record<string, unknown> | unknown[];

/** One selected place: `parent[key]` holds `value` (never undefined or null). */
export interface FieldTarget {
  /** Index of the rule in the list given to {@link collectTargets}. */
  rule: number;
  parent: JsonContainer;
  key: string | number;
  value: unknown;
  /** The array index taken at each `[*]`, in order. */
  indices: number[];
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The selector with each `[*]` replaced by the index taken there, e.g. `$.items[3].card`. */
export function concretePath(selector: Selector, indices: readonly number[], upTo = selector.segments.length): string {
  let k = 0;
  let out = '';
  for (const seg of selector.segments.slice(0, upTo)) {
    out += seg.kind === 'each' ? `[${indices[k++]}]` : formatSegments([seg]).slice(1);
  }
  return `$${out}`;
}

class Walker {
  readonly targets: FieldTarget[] = [];
  constructor(
    private readonly rules: readonly FieldRule[],
    private readonly maxFields: number,
  ) {}

  walk(rule: number, node: unknown, depth: number, indices: number[]): void {
    const { selector, onMissing } = this.rules[rule] as FieldRule;
    const seg = selector.segments[depth] as SelectorSegment;
    const last = depth === selector.segments.length - 1;
    if (seg.kind === 'member') {
      if (!isObject(node)) this.mismatch(selector, indices, depth);
      const has = Object.hasOwn(node, seg.name);
      const child = has ? node[seg.name] : undefined;
      if (child === undefined || child === null) this.missing(selector, indices, depth + 1, onMissing);
      else if (last) this.add({ rule, parent: node, key: seg.name, value: child, indices });
      else this.walk(rule, child, depth + 1, indices);
      return;
    }
    if (!Array.isArray(node)) this.mismatch(selector, indices, depth);
    for (let i = 0; i < node.length; i++) {
      const child = node[i];
      const at = [...indices, i];
      if (child === undefined || child === null) this.missing(selector, at, depth + 1, onMissing);
      else if (last) this.add({ rule, parent: node, key: i, value: child, indices: at });
      else this.walk(rule, child, depth + 1, at);
    }
  }

  private add(target: FieldTarget): void {
    if (this.targets.length === this.maxFields) throw new KcmError('too_many_fields', `limit ${this.maxFields}`);
    this.targets.push(target);
  }

  private missing(selector: Selector, indices: number[], upTo: number, onMissing: FieldRule['onMissing']): void {
    if (onMissing === 'error') throw new KcmError('selector_missing', concretePath(selector, indices, upTo));
  }

  private mismatch(selector: Selector, indices: number[], upTo: number): never {
    const at = upTo === 0 ? 'the document root' : concretePath(selector, indices, upTo);
    throw new KcmError('selector_type_mismatch', `${at} is not the object or array ${selector.text} needs`);
  }
}

/**
 * Every value the rules select, in rule order then document order. Throws
 * KcmError `selector_missing`, `selector_type_mismatch` (see the module doc),
 * `too_many_fields` past `maxFields` targets.
 */
export function collectTargets(doc: unknown, rules: readonly FieldRule[], maxFields: number): FieldTarget[] {
  const w = new Walker(rules, maxFields);
  for (let r = 0; r < rules.length; r++) w.walk(r, doc, 0, []);
  return w.targets;
}

/**
 * The value a record id selector names for a target with `indices` (its
 * `[*]` steps take the target's indices). Returns the id as text (strings as
 * they are, finite numbers in JavaScript's canonical form) or undefined when
 * absent or of another type.
 */
export function readRecordId(doc: unknown, selector: Selector, indices: readonly number[]): string | undefined {
  let node: unknown = doc;
  let k = 0;
  for (const seg of selector.segments) {
    if (seg.kind === 'member') {
      if (!isObject(node) || !Object.hasOwn(node, seg.name)) return undefined;
      node = node[seg.name];
    } else {
      if (!Array.isArray(node)) return undefined;
      node = node[indices[k++] as number];
    }
  }
  if (typeof node === 'string' && node.length > 0) return node;
  if (typeof node === 'number' && Number.isFinite(node)) return String(node);
  return undefined;
}
