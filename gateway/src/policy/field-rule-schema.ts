/**
 * Schema of the field rules of a route (`request[]`, `response[]`), of
 * `readers` and of `recordId`, plus the checks across rules: selectors of one
 * direction never overlap, a record id selector shares its field's wildcards
 * and is never itself encrypted, and every rule naming one logical field
 * agrees on how the field is bound (nonString, record binding).
 */
import type { PositionedNode } from './json-position-reader.ts';
import {
  type FieldRule,
  NON_STRING,
  ON_FAILURE,
  ON_MISSING,
  OTHER_READERS,
  type Readers,
  type RecordIdSource,
  type ResponseFieldRule,
} from './policy-types.ts';
import {
  childPath,
  readArray,
  readEnum,
  readObject,
  readString,
  readStringArray,
  type SchemaErrors,
} from './schema-reader.ts';
import { isPrefixOf, parseSelector, type Selector, SelectorSyntaxError, selectorsOverlap } from './selector.ts';

/** Most rules per direction of one route. */
export const MAX_RULES = 256;
/** Longest logical field name (it is part of the AAD context). */
export const MAX_FIELD_NAME = 256;
const FIELD_NAME = /^[\x21-\x7e]+$/;

const RULE_KEYS = ['select', 'field', 'onMissing', 'nonString', 'recordId'];
const RESPONSE_RULE_KEYS = [...RULE_KEYS, 'onFailure', 'readers'];

/** Parses `readers`; `mask` defaults to "****". */
export function readReaders(errors: SchemaErrors, node: PositionedNode, path: string): Readers | undefined {
  const o = readObject(errors, node, path, ['identities', 'roles', 'others', 'mask']);
  if (!o) return undefined;
  const ids = o.get('identities', false);
  const roles = o.get('roles', false);
  const others = o.get('others', true);
  const mask = o.get('mask', false);
  const identities = ids ? readStringArray(errors, ids, o.pathOf('identities'), 1000, { max: 256 }) : [];
  const roleList = roles ? readStringArray(errors, roles, o.pathOf('roles'), 1000, { max: 256 }) : [];
  const othersValue = others && readEnum(errors, others, o.pathOf('others'), OTHER_READERS);
  const maskValue = mask ? readString(errors, mask, o.pathOf('mask'), { max: 256 }) : '****';
  if (!identities || !roleList || !othersValue || maskValue === undefined) return undefined;
  return { identities: new Set(identities), roles: new Set(roleList), others: othersValue, mask: maskValue };
}

function readSelector(errors: SchemaErrors, node: PositionedNode, path: string): Selector | undefined {
  const text = readString(errors, node, path, { max: 512 });
  if (text === undefined) return undefined;
  try {
    return parseSelector(text);
  } catch (err) {
    if (!(err instanceof SelectorSyntaxError)) throw err;
    errors.add(node.pos, path, `bad selector: ${err.message}`);
    return undefined;
  }
}

function readRecordId(
  errors: SchemaErrors,
  node: PositionedNode,
  path: string,
  field: Selector | undefined,
  routeParams: readonly string[],
): RecordIdSource | undefined {
  const o = readObject(errors, node, path, ['pathParam', 'select']);
  if (!o) return undefined;
  if (o.has('pathParam') === o.has('select')) {
    errors.add(node.pos, path, 'give exactly one of "pathParam" or "select"');
    return undefined;
  }
  const param = o.get('pathParam', false);
  if (param) {
    const name = readString(errors, param, o.pathOf('pathParam'), { max: 64 });
    if (name === undefined) return undefined;
    if (!routeParams.includes(name)) {
      errors.add(param.pos, o.pathOf('pathParam'), `the route path has no :${name}`);
      return undefined;
    }
    return { from: 'pathParam', param: name };
  }
  const selNode = o.get('select', true) as PositionedNode;
  const selector = readSelector(errors, selNode, o.pathOf('select'));
  if (!selector || !field) return undefined;
  const lastEach = selector.segments.map((s) => s.kind).lastIndexOf('each');
  const bound: Selector = { text: selector.text, segments: selector.segments.slice(0, lastEach + 1) };
  if (!isPrefixOf(bound, field)) {
    errors.add(selNode.pos, o.pathOf('select'), `its [*] segments must be those of the field ${field.text}`);
    return undefined;
  }
  return { from: 'selector', selector };
}

/**
 * Reads one direction's rules. `response` adds onFailure and readers
 * (`routeReaders` is the fallback; a response rule without either is an error).
 */
export function readRules(
  errors: SchemaErrors,
  node: PositionedNode,
  path: string,
  routeParams: readonly string[],
  response: { readers: Readers | undefined } | undefined,
): (FieldRule | ResponseFieldRule)[] {
  const items = readArray(errors, node, path, MAX_RULES) ?? [];
  const rules: (FieldRule | ResponseFieldRule)[] = [];
  const positions: PositionedNode[] = [];
  items.forEach((item, i) => {
    const p = childPath(path, i);
    const o = readObject(errors, item, p, response ? RESPONSE_RULE_KEYS : RULE_KEYS);
    if (!o) return;
    const selNode = o.get('select', true);
    const selector = selNode && readSelector(errors, selNode, o.pathOf('select'));
    const fieldNode = o.get('field', false);
    const field = fieldNode
      ? readString(errors, fieldNode, o.pathOf('field'), {
          max: MAX_FIELD_NAME,
          pattern: FIELD_NAME,
          what: 'printable ASCII without spaces',
        })
      : selector?.text;
    const m = o.get('onMissing', false);
    const onMissing = m ? readEnum(errors, m, o.pathOf('onMissing'), ON_MISSING) : 'error';
    const n = o.get('nonString', false);
    const nonString = n ? readEnum(errors, n, o.pathOf('nonString'), NON_STRING) : 'error';
    const r = o.get('recordId', false);
    const recordId = r && readRecordId(errors, r, o.pathOf('recordId'), selector, routeParams);
    let extra: { readers: Readers; onFailure: ResponseFieldRule['onFailure'] } | undefined;
    if (response) {
      const f = o.get('onFailure', false);
      const onFailure = f ? readEnum(errors, f, o.pathOf('onFailure'), ON_FAILURE) : 'error';
      const rd = o.get('readers', false);
      const readers = rd ? readReaders(errors, rd, o.pathOf('readers')) : response.readers;
      if (!rd && !response.readers) {
        errors.add(item.pos, p, 'no "readers" here, on the route or in "defaults": say who may read plaintext');
      }
      if (readers && onFailure) extra = { readers, onFailure };
    }
    if (!selector || field === undefined || !onMissing || !nonString || (r && !recordId)) return;
    if (response && !extra) return;
    const rule: FieldRule = { selector, field, onMissing, nonString, ...(recordId ? { recordId } : {}) };
    rules.push(extra ? { ...rule, ...extra } : rule);
    positions.push(item);
  });
  checkOverlaps(errors, rules, positions, path);
  return rules;
}

function checkOverlaps(
  errors: SchemaErrors,
  rules: readonly FieldRule[],
  positions: readonly PositionedNode[],
  path: string,
): void {
  for (let i = 0; i < rules.length; i++) {
    const a = rules[i] as FieldRule;
    const pos = (positions[i] as PositionedNode).pos;
    for (let j = 0; j < i; j++) {
      const b = rules[j] as FieldRule;
      if (selectorsOverlap(a.selector, b.selector)) {
        errors.add(pos, childPath(path, i), `${a.selector.text} overlaps ${b.selector.text} (rule ${j})`);
      }
    }
    for (const b of rules) {
      if (b.recordId?.from === 'selector' && selectorsOverlap(a.selector, b.recordId.selector)) {
        errors.add(pos, childPath(path, i), `encrypts the record id ${b.recordId.selector.text} of another rule`);
      }
    }
  }
}

/** How a logical field is bound; every rule of one policy naming the field must agree. */
export function fieldBinding(rule: FieldRule): string {
  return `nonString=${rule.nonString}, recordId ${rule.recordId ? 'set' : 'unset'}`;
}
