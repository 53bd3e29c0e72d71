/**
 * The field transforms of the proxy: encrypt the selected fields of a request
 * body, decrypt (or mask, or pass as ciphertext) those of a response body.
 * Each reads a scanned body (json-body.ts, json-scan.ts), never a parsed
 * document, and answers the new body with only the selected values replaced
 * (json-splice.ts): every other byte is passed as it came. Each makes ONE
 * native call for all fields of the body under one L3 key version
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

import { isUtf8 } from 'node:buffer';
import {
  encryptFields,
  encryptFieldsInto,
  type FieldFailureReason,
  type FieldOpenResult,
  openFieldsInto,
  openParsedFields,
  parseFieldCiphertexts,
} from '../../../common/src/crypto/field-cipher.ts';
import { KcmError } from '../../../common/src/errors.ts';
import { type FieldKeyRef, parseEnvelope } from '../../../common/src/format/envelope.ts';
import { hasLoneSurrogate } from '../../../common/src/format/unicode.ts';
import { jsonStringBytes, type KeyHandle } from '../../../native/index.ts';
import type { CompiledRoute, FieldRule, ResponseFieldRule } from '../policy/policy-types.ts';
import type { Selector } from '../policy/selector.ts';
import { fieldContext, type RecordId } from './field-context.ts';
import { collectTargets, concretePath, type FieldTarget, nodeValue, readRecordId } from './field-targets.ts';
import type { ScannedJson } from './json-body.ts';
import { compilePlan, type PlanNode, scanJson, utf8Text } from './json-scan.ts';
import { type JsonEdit, spliceJson } from './json-splice.ts';
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

function isPromise<T>(v: T | Promise<T>): v is Promise<T> {
  return typeof (v as { then?: unknown })?.then === 'function';
}

function emptyReport(): TransformReport {
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
 * The JSON text that replaces a decrypted field, as bytes, or undefined when
 * the plaintext is not what the rule's codec holds: not UTF-8, or under
 * "stringify" not one JSON value within `maxDepth` (checked by the strict
 * scanner, whose errors never quote the input). Codec 2 answers `plaintext`
 * itself; codec 1 a new buffer the caller must zero too. Never throws and
 * never makes a JavaScript string of the plaintext.
 */
function decodeValue(rule: FieldRule, plaintext: Buffer, maxDepth: number): Buffer | undefined {
  if (!isUtf8(plaintext)) return undefined;
  if (rule.nonString !== 'stringify') return jsonStringBytes(plaintext);
  try {
    scanJson(plaintext, undefined, maxDepth);
  } catch {
    return undefined;
  }
  return plaintext;
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

function contextOf(body: ScannedJson, req: TransformRequest, rule: FieldRule, t: FieldTarget): Buffer {
  return fieldContext(req.route.policyId, rule, recordIdOf(body, rule, t, req.params));
}

/** A value's replacement: `text` (one JSON value) over the node's bytes. */
function edit(t: FieldTarget, text: string | Uint8Array): JsonEdit {
  return { start: t.node.start, end: t.node.end, text };
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

/** True when a selected value may be opened on the one-call path: the caller reads it, its rule's codec is the string one, and it is an unescaped string. */
function opensInOneCall(rule: ResponseFieldRule, reads: boolean, isString: boolean, escaped: boolean): boolean {
  return reads && rule.nonString !== 'stringify' && isString && !escaped;
}

/**
 * Encrypts every field `req.route.request` selects in `body` (scanned with
 * {@link planFor}`(route.request)`), with one backend call. Returns the
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
  report.body = encryptFieldsInto(key.handle, key.ref, bytes, spans, contexts);
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
    const sealed = encryptFields(key.handle, key.ref, plaintexts, contexts);
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
 * Opens ciphertexts: each is parsed once, the key of every L3 version present
 * is resolved (awaited only when the provider answers with a promise, i.e. a
 * cache miss), then each version's items are opened in one backend call.
 * Keys of another tenant or key id than the route's are never resolved. When
 * a backend call throws, the plaintexts of the versions already opened are
 * zeroed before the error goes on.
 */
async function openAll(
  req: TransformRequest,
  ciphertexts: string[],
  contexts: Buffer[],
  report: TransformReport,
): Promise<FieldOpenResult[]> {
  const { tenant, keys } = req;
  const keyId = req.route.keyId;
  const parsed = parseFieldCiphertexts(tenant, ciphertexts);
  const handles = new Map<number, KeyHandle | undefined>();
  for (const items of parsed.groups.values()) {
    const ref = parsed.envelopes[items[0] as number] as FieldKeyRef;
    if (ref.keyId !== keyId) continue;
    const h = keys.decryptKey(ref);
    const handle = isPromise(h) ? await h : h;
    handles.set(ref.keyVersion, handle);
    if (handle === undefined) continue;
    report.openedVersions ??= [];
    report.openedVersions.push(ref.keyVersion);
  }
  // Every group is of `tenant` (parseFieldCiphertexts fails the others); only the route's key id has handles.
  const resolve = (ref: FieldKeyRef) => (ref.keyId === keyId ? handles.get(ref.keyVersion) : undefined);
  if (parsed.groups.size <= 1) return openParsedFields(parsed, resolve, contexts);
  try {
    for (const group of parsed.groups) openParsedFields({ ...parsed, groups: new Map([group]) }, resolve, contexts);
  } catch (err) {
    zeroPlaintexts(parsed.results);
    throw err;
  }
  return parsed.results;
}

function zeroPlaintexts(results: readonly (FieldOpenResult | undefined)[]): void {
  for (const r of results) if (r?.ok) r.plaintext.fill(0);
}

function mayRead(rule: ResponseFieldRule, caller: Caller): boolean {
  const { readers } = rule;
  if (caller.identity !== undefined && readers.identities.has(caller.identity)) return true;
  return caller.roles.some((r) => readers.roles.has(r));
}

/** Why a value cannot be passed as ciphertext of `tenant`, or undefined when it can. */
function ciphertextProblem(value: unknown, tenant: string): FieldAuditReason | undefined {
  if (typeof value !== 'string') return 'not_ciphertext';
  try {
    return parseEnvelope(value).tenant === tenant ? undefined : 'wrong_tenant';
  } catch (err) {
    return err instanceof KcmError && err.code.startsWith('format_')
      ? (err.code as FieldFailureReason)
      : 'not_ciphertext';
  }
}

/**
 * The response body with every target decrypted in one backend call
 * (openFieldsInto), or undefined when that cannot be done here: a field the
 * caller may not read, a JSON-codec (`stringify`) field, a value that is not
 * an unescaped string, a record id that cannot be read, envelopes of another
 * tenant, key or L3 version than the first one's, a key that cannot be had,
 * or any field that fails. decryptResponseFields then does everything again
 * on its general path, which finds and reports what failed, so the two paths
 * cannot answer differently; only a successful body comes from here, with
 * the key version it was opened under (the first ciphertext's).
 */
async function openInPlace(
  body: ScannedJson,
  req: TransformRequest & { caller: Caller },
  targets: readonly FieldTarget[],
  reads: readonly boolean[],
): Promise<{ body: Buffer; version: number } | undefined> {
  const n = targets.length;
  if (n === 0) return undefined;
  const { route } = req;
  const spans = new Uint32Array(2 * n);
  const contexts: Buffer[] = new Array(n);
  try {
    for (let i = 0; i < n; i++) {
      const t = targets[i] as FieldTarget;
      const rule = route.response[t.rule] as ResponseFieldRule;
      const { node } = t;
      if (!opensInOneCall(rule, reads[t.rule] === true, node.type === 'string', node.escaped === true))
        return undefined;
      contexts[i] = contextOf(body, req, rule, t);
      spans[2 * i] = node.start;
      spans[2 * i + 1] = node.end;
    }
  } catch {
    return undefined; // fails again, with its reason, on the general path
  }
  return openPrepared(body.bytes, req, spans, contexts);
}

/**
 * openInPlace's second half: the unescaped ciphertext strings at `spans`
 * (start, end per item) opened with `contexts`, under the key version the
 * first one names; undefined when that cannot be done here.
 */
async function openPrepared(
  bytes: Uint8Array,
  req: TransformRequest,
  spans: Uint32Array,
  contexts: Buffer[],
): Promise<{ body: Buffer; version: number } | undefined> {
  let ref: FieldKeyRef;
  try {
    ref = parseEnvelope(utf8Text(bytes, (spans[0] as number) + 1, (spans[1] as number) - 1));
  } catch {
    return undefined;
  }
  if (ref.tenant !== req.tenant || ref.keyId !== req.route.keyId) return undefined;
  // The general path would ask for this same key first (item 0's group): its error is the answer on both.
  const pending = req.keys.decryptKey(ref);
  const handle = isPromise(pending) ? await pending : pending;
  if (handle === undefined) return undefined;
  try {
    const body = openFieldsInto(handle, ref, bytes, spans, contexts);
    return body ? { body, version: ref.keyVersion } : undefined;
  } catch {
    return undefined; // e.g. the version revoked meanwhile: the general path says so
  }
}

/** Whether a native target (its flags, json-targets.ts) is a string, and an escaped one. */
function foundType(flags: number): [isString: boolean, escaped: boolean] {
  return [(flags & ~TARGET_ESCAPED) === TARGET_STRING, (flags & TARGET_ESCAPED) !== 0];
}

/**
 * The contexts of native targets (`found`: 4 numbers each, json-targets.ts),
 * one per target, made once per rule; undefined when a rule's context cannot
 * be made (the general path then reports why).
 */
function foundContexts(req: TransformRequest, rules: readonly FieldRule[], found: Uint32Array): Buffer[] | undefined {
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

/**
 * decryptResponseFields over the native pass's targets (`found`, for
 * `route.response`) when the one-call path applies (see openInPlace): the
 * same report, or undefined, after which the caller scans in JavaScript and
 * calls decryptResponseFields. No targets is the general path's answer too
 * (an unchanged body).
 */
export async function decryptFoundTargets(
  bytes: Uint8Array,
  req: TransformRequest & { caller: Caller },
  found: Uint32Array,
): Promise<TransformReport | undefined> {
  const report = emptyReport();
  const { route } = req;
  const n = found.length / 4;
  if (n === 0) return report;
  const spans = new Uint32Array(2 * n);
  for (let i = 0; i < n; i++) {
    const rule = route.response[found[4 * i] as number] as ResponseFieldRule;
    const [isString, escaped] = foundType(found[4 * i + 3] as number);
    if (!opensInOneCall(rule, mayRead(rule, req.caller), isString, escaped)) return undefined;
    spans[2 * i] = found[4 * i + 1] as number;
    spans[2 * i + 1] = found[4 * i + 2] as number;
  }
  const contexts = foundContexts(req, route.response, found);
  if (contexts === undefined) return undefined;
  const opened = await openPrepared(bytes, req, spans, contexts);
  if (opened === undefined) return undefined;
  report.body = opened.body;
  report.openedVersions = [opened.version];
  report.decrypted = n;
  return report;
}

/**
 * Transforms every field `req.route.response` selects in `body` (scanned with
 * {@link planFor}`(route.response)`) for `caller`: readers (by identity or
 * role) get plaintext; others get the ciphertext unchanged (checked to be an
 * envelope of the tenant) or the mask, per the rule's readers, without any
 * decryption. A field that fails (not a string, not an envelope, another
 * tenant/key/field/record, bad tag, a plaintext its codec cannot hold) is
 * masked when its rule says
 * `onFailure: "mask"`, else the whole body fails with
 * {@link FieldDecryptionError} (422, opaque). Tries the one-call path
 * (openInPlace) first unless `options.oneCall` is false. Returns the report
 * with the new body. Also throws `selector_missing`, `selector_type_mismatch`,
 * `too_many_fields`.
 */
export async function decryptResponseFields(
  body: ScannedJson,
  req: TransformRequest & { caller: Caller },
  options: { oneCall?: boolean } = {},
): Promise<TransformReport> {
  const report = emptyReport();
  const { route } = req;
  if (route.response.length === 0) return report;
  const targets = collectTargets(body.root, route.response, route.limits.maxFields);
  const reads = route.response.map((rule) => mayRead(rule, req.caller));
  // `oneCall: false`: decryptFoundTargets already tried the one-call path on these same targets.
  const opened = options.oneCall === false ? undefined : await openInPlace(body, req, targets, reads);
  if (opened !== undefined) {
    report.body = opened.body;
    report.openedVersions = [opened.version];
    report.decrypted = targets.length;
    return report;
  }
  const writes: JsonEdit[] = [];
  const failed: FieldAuditEntry[] = [];
  const fail = (t: FieldTarget, rule: ResponseFieldRule, reason: FieldAuditReason): void => {
    const entry = { path: concretePath(rule.selector, t.indices), field: rule.field, reason };
    if (rule.onFailure === 'mask') {
      report.failures.push(entry);
      report.masked++;
      writes.push(edit(t, JSON.stringify(rule.readers.mask)));
    } else failed.push(entry);
  };
  const open: FieldTarget[] = [];
  const ciphertexts: string[] = [];
  const contexts: Buffer[] = [];
  for (const t of targets) {
    const rule = route.response[t.rule] as ResponseFieldRule;
    if (!reads[t.rule]) {
      if (rule.readers.others === 'mask') {
        report.masked++;
        writes.push(edit(t, JSON.stringify(rule.readers.mask)));
      } else {
        const problem =
          t.node.type === 'string' ? ciphertextProblem(nodeValue(body.bytes, t.node), req.tenant) : 'not_ciphertext';
        if (problem) fail(t, rule, problem);
        else report.ciphertext++;
      }
    } else if (t.node.type !== 'string') fail(t, rule, 'not_ciphertext');
    else {
      open.push(t);
      ciphertexts.push(nodeValue(body.bytes, t.node) as string);
      contexts.push(contextOf(body, req, rule, t));
    }
  }
  const results = open.length > 0 ? await openAll(req, ciphertexts, contexts, report) : [];
  const decoded: Buffer[] = [];
  try {
    for (let i = 0; i < open.length; i++) {
      const t = open[i] as FieldTarget;
      const rule = route.response[t.rule] as ResponseFieldRule;
      const r = results[i] as FieldOpenResult;
      const json = r.ok ? decodeValue(rule, r.plaintext, route.limits.maxDepth) : undefined;
      if (!r.ok) fail(t, rule, r.reason);
      else if (json === undefined) fail(t, rule, 'value_encoding');
      else {
        if (json !== r.plaintext) decoded.push(json);
        writes.push(edit(t, json));
        report.decrypted++;
      }
    }
    if (failed.length > 0) throw new FieldDecryptionError([...failed, ...report.failures]);
    if (writes.length > 0) report.body = spliceJson(body.bytes, writes);
  } finally {
    zeroPlaintexts(results);
    for (const d of decoded) d.fill(0);
  }
  return report;
}
