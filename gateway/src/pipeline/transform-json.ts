/**
 * The field transforms of the proxy: encrypt the selected fields of a request
 * body (transform-encrypt.ts), decrypt (or mask, or pass as ciphertext) those
 * of a response body (transform-decrypt.ts). This file holds what both
 * share: the request and report types, the opaque decryption error, the
 * scan plans of the rules, the field contexts (AAD) and the splice edits.
 *
 * Each transform reads a scanned body (json-body.ts, json-scan.ts), never a
 * parsed document, and answers the new body with only the selected values
 * replaced (json-splice.ts): every other byte is passed as it came. Each makes
 * ONE native call for all fields of the body under one L3 key version
 * (encryptFields: one fresh L4 data key per request; decryptFields: one call
 * per L3 version present, normally one).
 *
 * Fields are bound by AAD to tenant, key, policy, field and optionally record
 * (pipeline/field-context.ts). Decryption failures are opaque to the caller
 * (`field_decryption_failed`, 422); the precise reason of every failed field
 * is in the report or in {@link FieldDecryptionError.failures} for the audit
 * log. Nothing here ever puts a field's plaintext into an error, and every
 * plaintext buffer is zeroed once used, whether the transform succeeds or
 * throws.
 */

import type { FieldFailureReason } from '../../../common/src/crypto/field-cipher.ts';
import { KcmError } from '../../../common/src/errors.ts';
import type { FieldKeyRef } from '../../../common/src/format/envelope.ts';
import { hasLoneSurrogate } from '../../../common/src/format/unicode.ts';
import type { KeyHandle } from '../../../native/index.ts';
import type { CompiledRoute, FieldRule } from '../policy/policy-types.ts';
import type { Selector } from '../policy/selector.ts';
import { fieldContext, type RecordId } from './field-context.ts';
import { concretePath, type FieldTarget, readRecordId } from './field-targets.ts';
import type { ScannedJson } from './json-body.ts';
import { compilePlan, type PlanNode } from './json-scan.ts';
import type { JsonEdit } from './json-splice.ts';
import { TARGET_ESCAPED, TARGET_STRING } from './json-targets.ts';
import type { FieldKeyProvider } from './key-provider.ts';

/** What one request's transform needs besides the body. */
export interface TransformRequest {
  route: CompiledRoute;
  /** The resolved tenant (policy/tenant-source.ts). */
  tenant: string;
  /** The route pattern's captured parameters (record ids may come from them). */
  params: Readonly<Record<string, string>>;
  keys: FieldKeyProvider;
  /**
   * The key the one-call open path already resolved for this request, so the
   * general path, when it runs after a decline, does not ask (and count a
   * cache lookup) twice. Set by transform-decrypt.ts.
   */
  resolved?: { ref: FieldKeyRef; handle: KeyHandle | undefined };
}

/** The authenticated caller, for deciding who reads plaintext. */
export interface Caller {
  identity?: string;
  roles: readonly string[];
}

/**
 * Why a response field was not decrypted: field-cipher's reasons, a
 * non-string/non-envelope value (`not_ciphertext`), or a plaintext that is
 * not what its codec holds (`value_encoding`: not UTF-8, or under
 * `nonString: "stringify"` not one JSON value; only a ciphertext sealed
 * outside the proxy under a proxy field's context can be one).
 */
export type FieldAuditReason = FieldFailureReason | 'not_ciphertext' | 'value_encoding';

/** One failed field, for the audit log: where (policy paths and indices only) and why. */
export interface FieldAuditEntry {
  path: string;
  field: string;
  reason: FieldAuditReason;
}

export interface TransformReport {
  /** The new body, or undefined when no value changed. */
  body: Buffer | undefined;
  encrypted: number;
  /** The L3 key version the encrypted fields are sealed under (when `encrypted` > 0). */
  keyVersion?: number;
  /** The L3 versions of the route's key whose keys were resolved to open response fields (their audit record names them). */
  openedVersions?: number[];
  decrypted: number;
  /** Fields replaced by a mask (non-reader, or onFailure "mask"). */
  masked: number;
  /** Fields left as ciphertext for a caller who may not read them. */
  ciphertext: number;
  /** Response fields that failed and were masked per policy. */
  failures: FieldAuditEntry[];
}

/** KcmError `field_decryption_failed` carrying the per-field reasons for the audit log (never the values). */
export class FieldDecryptionError extends KcmError {
  constructor(readonly failures: readonly FieldAuditEntry[]) {
    super('field_decryption_failed');
  }
}

export function isPromise<T>(v: T | Promise<T>): v is Promise<T> {
  return typeof (v as { then?: unknown })?.then === 'function';
}

export function emptyReport(): TransformReport {
  return { body: undefined, encrypted: 0, decrypted: 0, masked: 0, ciphertext: 0, failures: [] };
}

const plans = new WeakMap<readonly FieldRule[], PlanNode>();

/** The scan plan of one direction's rules: their selectors and their record id selectors (cached). */
export function planFor(rules: readonly FieldRule[]): PlanNode {
  let plan = plans.get(rules);
  if (!plan) {
    const selectors: Selector[] = [];
    for (const r of rules) {
      selectors.push(r.selector);
      if (r.recordId?.from === 'selector') selectors.push(r.recordId.selector);
    }
    plan = compilePlan(selectors);
    plans.set(rules, plan);
  }
  return plan;
}

/**
 * The record id a target binds to, or undefined when its rule binds none.
 * A path parameter is a string id. Throws `selector_missing` (absent, empty,
 * or neither a string nor a number), `selector_type_mismatch` (not
 * well-formed Unicode).
 */
function recordIdOf(
  body: ScannedJson,
  rule: FieldRule,
  t: FieldTarget,
  params: TransformRequest['params'],
): RecordId | undefined {
  const src = rule.recordId;
  if (!src) return undefined;
  if (src.from === 'pathParam') return paramRecordId(src.param, params);
  const id = readRecordId(body.bytes, body.root, src.selector, t.indices);
  if (id === undefined) throw new KcmError('selector_missing', `record id ${concretePath(src.selector, t.indices)}`);
  return id;
}

/** The record id path parameter `name` gives; throws as {@link recordIdOf}. */
function paramRecordId(name: string, params: TransformRequest['params']): RecordId {
  const param = params[name];
  if (param === undefined || param === '') throw new KcmError('selector_missing', `record id :${name}`);
  // decodeURIComponent never yields a lone surrogate; checked anyway, the binding depends on it.
  if (hasLoneSurrogate(param)) {
    throw new KcmError('selector_type_mismatch', `record id :${name} is not well-formed Unicode`);
  }
  return { kind: 'string', bytes: Buffer.from(param, 'utf8') };
}

/**
 * The context every target of `rule` has, for a rule that binds no record id
 * or one from a path parameter (not from the body); throws as recordIdOf.
 */
function ruleContext(req: TransformRequest, rule: FieldRule): Buffer {
  const src = rule.recordId;
  if (src?.from === 'selector') throw new KcmError('internal_error', 'a record id from the body needs its target');
  return fieldContext(req.route.policyId, rule, src ? paramRecordId(src.param, req.params) : undefined);
}

export function contextOf(body: ScannedJson, req: TransformRequest, rule: FieldRule, t: FieldTarget): Buffer {
  return fieldContext(req.route.policyId, rule, recordIdOf(body, rule, t, req.params));
}

/** A value's replacement: `text` (one JSON value) over the node's bytes. */
export function edit(t: FieldTarget, text: string | Uint8Array): JsonEdit {
  return { start: t.node.start, end: t.node.end, text };
}

/** Whether a native target (its flags, json-targets.ts) is a string, and an escaped one. */
export function foundType(flags: number): [isString: boolean, escaped: boolean] {
  return [(flags & ~TARGET_ESCAPED) === TARGET_STRING, (flags & TARGET_ESCAPED) !== 0];
}

/**
 * The contexts of native targets (`found`: 4 numbers each, json-targets.ts),
 * one per target, made once per rule; undefined when a rule's context cannot
 * be made (the general path then reports why).
 */
export function foundContexts(
  req: TransformRequest,
  rules: readonly FieldRule[],
  found: Uint32Array,
): Buffer[] | undefined {
  const n = found.length / 4;
  const byRule: (Buffer | undefined)[] = new Array(rules.length);
  const contexts: Buffer[] = new Array(n);
  try {
    for (let i = 0; i < n; i++) {
      const r = found[4 * i] as number;
      let ctx = byRule[r];
      if (ctx === undefined) {
        ctx = ruleContext(req, rules[r] as FieldRule);
        byRule[r] = ctx;
      }
      contexts[i] = ctx;
    }
  } catch {
    return undefined;
  }
  return contexts;
}
