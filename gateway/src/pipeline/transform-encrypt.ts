/**
 * The request side of the field transforms (transform-json.ts has what both
 * sides share): every field the route's request rules select is encrypted,
 * in one native call that seals and splices when the values can be sealed
 * where they stand (sealInPlace), else after decoding them (encryptDecoded).
 * A value the rule cannot take is refused (selector errors), never passed in
 * clear.
 */

import {
  encryptFields,
  encryptFieldsAsync,
  encryptFieldsInto,
  encryptFieldsIntoAsync,
} from '../../../common/src/crypto/field-cipher.ts';
import { KcmError } from '../../../common/src/errors.ts';
import type { FieldKeyRef } from '../../../common/src/format/envelope.ts';
import { hasLoneSurrogate } from '../../../common/src/format/unicode.ts';
import type { FieldRule } from '../policy/policy-types.ts';
import { collectTargets, concretePath, type FieldTarget, nodeValue } from './field-targets.ts';
import type { ScannedJson } from './json-body.ts';
import { spliceJson } from './json-splice.ts';
import {
  contextOf,
  edit,
  emptyReport,
  foundContexts,
  foundType,
  isPromise,
  type TransformReport,
  type TransformRequest,
} from './transform-json.ts';

/**
 * The plaintext bytes of a selected value, per the rule's `nonString` (see
 * field-context.ts codecs): a string's UTF-8, or under "stringify" the
 * value's JSON text exactly as the body spells it (`12345678901234567891.50`
 * stays so; decryption splices back these very bytes).
 */
function encodeValue(body: Uint8Array, rule: FieldRule, t: FieldTarget): Buffer {
  const { node } = t;
  if (rule.nonString === 'stringify') return Buffer.from(body.subarray(node.start, node.end));
  if (node.type !== 'string') {
    throw new KcmError('selector_type_mismatch', `${concretePath(rule.selector, t.indices)} is a ${node.type}`);
  }
  // Unescaped, the bytes between the quotes are the value's UTF-8 (the body is valid UTF-8).
  if (node.escaped !== true) return Buffer.from(body.subarray(node.start + 1, node.end - 1));
  const value = nodeValue(body, node) as string;
  if (hasLoneSurrogate(value)) {
    throw new KcmError(
      'selector_type_mismatch',
      `${concretePath(rule.selector, t.indices)} is not well-formed Unicode`,
    );
  }
  return Buffer.from(value, 'utf8');
}

/**
 * The bytes of `body` a target's plaintext is, as a range, or undefined when
 * they are not in the body as they are (an escaped string, whose value must
 * be decoded: {@link encodeValue}). Throws as encodeValue does.
 */
function plaintextSpan(rule: FieldRule, t: FieldTarget): [number, number] | undefined {
  const { node } = t;
  if (rule.nonString !== 'stringify' && node.type !== 'string') {
    throw new KcmError('selector_type_mismatch', `${concretePath(rule.selector, t.indices)} is a ${node.type}`);
  }
  return plaintextRange(rule, node.start, node.end, node.type === 'string', node.escaped === true);
}

/**
 * Where the plaintext of a selected value (`start`..`end` in the body) lies
 * for `rule`: the whole value under `nonString: "stringify"`, else a
 * string's bytes between its quotes; undefined for an escaped string (its
 * value must be decoded) or a value of another type (the rule refuses it).
 */
function plaintextRange(
  rule: FieldRule,
  start: number,
  end: number,
  isString: boolean,
  escaped: boolean,
): [number, number] | undefined {
  if (rule.nonString === 'stringify') return [start, end];
  return isString && !escaped ? [start + 1, end - 1] : undefined;
}

/**
 * Encrypts every field `req.route.request` selects in `body` (scanned with
 * `planFor(route.request)` in transform-json.ts), with one backend call. Returns the
 * report (`encrypted` = fields done) with the new body. Throws KcmError:
 * `selector_missing`, `selector_type_mismatch`, `too_many_fields`
 * (field-targets.ts), `plaintext_too_large`, and whatever the key provider
 * throws.
 *
 * When every plaintext lies in the body as it is (no escaped string, the
 * usual case), the backend seals the spans in place and writes the new body
 * itself (encryptFieldsInto: no plaintext copied, no envelope string made);
 * otherwise the decoded values are sealed (encryptFields) and spliced here.
 * Both check the targets in the same order and give the same errors.
 */
export async function encryptRequestFields(body: ScannedJson, req: TransformRequest): Promise<TransformReport> {
  const report = emptyReport();
  const { route } = req;
  if (route.request.length === 0) return report;
  const targets = collectTargets(body.root, route.request, route.limits.maxFields);
  if (targets.length === 0) return report;
  const n = targets.length;
  const contexts: Buffer[] = new Array(n);
  // Item i: value start, value end, plaintext start, plaintext end (target order; encryptFieldsInto sorts).
  const spans = new Uint32Array(4 * n);
  for (let i = 0; i < n; i++) {
    const t = targets[i] as FieldTarget;
    const rule = route.request[t.rule] as FieldRule;
    const pt = plaintextSpan(rule, t);
    // Started over on the decoding path, which checks every target again in the same order.
    if (pt === undefined) return encryptDecoded(body, req, targets);
    contexts[i] = contextOf(body, req, rule, t);
    spans[4 * i] = t.node.start;
    spans[4 * i + 1] = t.node.end;
    spans[4 * i + 2] = pt[0];
    spans[4 * i + 3] = pt[1];
  }
  return sealInPlace(body.bytes, req, spans, contexts);
}

/** The one-call seal of encryptRequestFields' items (`spans`: 4 numbers each, target order) under the route's key. */
async function sealInPlace(
  bytes: Uint8Array,
  req: TransformRequest,
  spans: Uint32Array,
  contexts: readonly Buffer[],
): Promise<TransformReport> {
  const pending = req.keys.encryptKey(req.tenant, req.route.keyId);
  const key = checkedKey(req, isPromise(pending) ? await pending : pending);
  const report = emptyReport();
  // A token key (pkcs11 backend) seals off the event loop; every other key in this turn.
  report.body = key.handle.asyncEnvelope
    ? await encryptFieldsIntoAsync(key.handle, key.ref, bytes, spans, contexts)
    : encryptFieldsInto(key.handle, key.ref, bytes, spans, contexts);
  report.keyVersion = key.ref.keyVersion;
  report.encrypted = contexts.length;
  return report;
}

/** `key`, checked to be of the tenant and key id the request asked for. */
function checkedKey<K extends { ref: FieldKeyRef }>(req: TransformRequest, key: K): K {
  if (key.ref.tenant !== req.tenant || key.ref.keyId !== req.route.keyId) {
    throw new KcmError('internal_error', 'the key provider returned a key of another tenant or key id');
  }
  return key;
}

/** encryptRequestFields for targets some of which must be decoded (escaped strings). */
async function encryptDecoded(
  body: ScannedJson,
  req: TransformRequest,
  targets: readonly FieldTarget[],
): Promise<TransformReport> {
  const report = emptyReport();
  const plaintexts: Buffer[] = new Array(targets.length);
  const contexts: Buffer[] = new Array(targets.length);
  try {
    for (let i = 0; i < targets.length; i++) {
      const t = targets[i] as FieldTarget;
      const rule = req.route.request[t.rule] as FieldRule;
      plaintexts[i] = encodeValue(body.bytes, rule, t);
      contexts[i] = contextOf(body, req, rule, t);
    }
    const pending = req.keys.encryptKey(req.tenant, req.route.keyId);
    const key = checkedKey(req, isPromise(pending) ? await pending : pending);
    const sealed = key.handle.asyncEnvelope
      ? await encryptFieldsAsync(key.handle, key.ref, plaintexts, contexts)
      : encryptFields(key.handle, key.ref, plaintexts, contexts);
    report.keyVersion = key.ref.keyVersion;
    // Envelopes are "okcm:" plus base64url: nothing in them needs a JSON escape.
    report.body = spliceJson(
      body.bytes,
      targets.map((t, i) => edit(t, `"${sealed[i]}"`)),
    );
  } finally {
    for (const p of plaintexts) p?.fill(0);
  }
  report.encrypted = targets.length;
  return report;
}

/**
 * encryptRequestFields over the native pass's targets (`found`, from
 * json-targets.ts nativeTargets for `route.request`): the same report, or
 * undefined when a target needs the general path (an escaped string, a type
 * its rule refuses, a context that cannot be made); the caller then scans in
 * JavaScript and calls encryptRequestFields, which answers or throws.
 */
export async function encryptFoundTargets(
  bytes: Uint8Array,
  req: TransformRequest,
  found: Uint32Array,
): Promise<TransformReport | undefined> {
  const report = emptyReport();
  const { route } = req;
  const n = found.length / 4;
  if (n === 0) return report;
  const spans = new Uint32Array(4 * n);
  for (let i = 0; i < n; i++) {
    const rule = route.request[found[4 * i] as number] as FieldRule;
    const start = found[4 * i + 1] as number;
    const end = found[4 * i + 2] as number;
    const [isString, escaped] = foundType(found[4 * i + 3] as number);
    const pt = plaintextRange(rule, start, end, isString, escaped);
    if (pt === undefined) return undefined; // escaped, or not a string
    spans[4 * i] = start;
    spans[4 * i + 1] = end;
    spans[4 * i + 2] = pt[0];
    spans[4 * i + 3] = pt[1];
  }
  const contexts = foundContexts(req, route.request, found);
  if (contexts === undefined) return undefined;
  return sealInPlace(bytes, req, spans, contexts);
}
