/**
 * Finds the values a route's selectors name in a scanned JSON body (the
 * skeleton of json-scan.ts, whose plan must include every selector given
 * here).
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
import { hasLoneSurrogate } from '../../../common/src/format/unicode.ts';
import type { FieldRule } from '../policy/policy-types.ts';
import { formatSegments, type Selector, type SelectorSegment } from '../policy/selector.ts';
import type { RecordId } from './field-context.ts';
import { type JsonNode, utf8Text } from './json-scan.ts';

/** One selected value (never absent or null) and its place in the body. */
export interface FieldTarget {
  /** Index of the rule in the list given to {@link collectTargets}. */
  rule: number;
  node: JsonNode;
  /** The array index taken at each `[*]`, in order. */
  indices: number[];
}

/** The JavaScript value of a scanned node, as JSON.parse would give it. */
export function nodeValue(body: Uint8Array, node: JsonNode): unknown {
  if (node.type === 'string' && node.escaped !== true) {
    return utf8Text(body, node.start + 1, node.end - 1);
  }
  return JSON.parse(utf8Text(body, node.start, node.end));
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

  walk(rule: number, node: JsonNode, depth: number, indices: number[]): void {
    const { selector, onMissing } = this.rules[rule] as FieldRule;
    const seg = selector.segments[depth] as SelectorSegment;
    const last = depth === selector.segments.length - 1;
    if (seg.kind === 'member') {
      if (node.type !== 'object') this.mismatch(selector, indices, depth);
      const child = node.members?.get(seg.name);
      if (child === undefined || child.type === 'null') this.missing(selector, indices, depth + 1, onMissing);
      else if (last) this.add({ rule, node: child, indices });
      else this.walk(rule, child, depth + 1, indices);
      return;
    }
    if (node.type !== 'array') this.mismatch(selector, indices, depth);
    const items = node.items ?? [];
    for (let i = 0; i < items.length; i++) {
      const child = items[i] as JsonNode;
      const at = [...indices, i];
      if (child.type === 'null') this.missing(selector, at, depth + 1, onMissing);
      else if (last) this.add({ rule, node: child, indices: at });
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
export function collectTargets(root: JsonNode, rules: readonly FieldRule[], maxFields: number): FieldTarget[] {
  const w = new Walker(rules, maxFields);
  for (let r = 0; r < rules.length; r++) w.walk(r, root, 0, []);
  return w.targets;
}

/**
 * The record id a record id selector names for a target with `indices` (its
 * `[*]` steps take the target's indices): a string as its UTF-8 (the bytes
 * of the body when unescaped), a number as its JSON text exactly as written
 * (never through a double). Returns undefined when it is absent, an empty
 * string, or of another type. Throws KcmError `selector_type_mismatch` for a
 * string that is not well-formed Unicode (a lone surrogate has no UTF-8
 * form: bound as U+FFFD it would equal another id).
 */
export function readRecordId(
  body: Uint8Array,
  root: JsonNode,
  selector: Selector,
  indices: readonly number[],
): RecordId | undefined {
  let node: JsonNode | undefined = root;
  let k = 0;
  for (const seg of selector.segments) {
    if (seg.kind === 'member') node = node.type === 'object' ? node.members?.get(seg.name) : undefined;
    else node = node.type === 'array' ? node.items?.[indices[k++] as number] : undefined;
    if (node === undefined) return undefined;
  }
  if (node.type === 'number') return { kind: 'number', bytes: body.subarray(node.start, node.end) };
  if (node.type !== 'string' || node.end - node.start === 2) return undefined;
  if (node.escaped !== true) return { kind: 'string', bytes: body.subarray(node.start + 1, node.end - 1) };
  const value = nodeValue(body, node) as string;
  if (value === '') return undefined;
  if (hasLoneSurrogate(value)) {
    throw new KcmError(
      'selector_type_mismatch',
      `record id ${concretePath(selector, indices)} is not well-formed Unicode`,
    );
  }
  return { kind: 'string', bytes: Buffer.from(value, 'utf8') };
}
