/**
 * The field transforms of the proxy: encrypt the selected fields of a request
 * body, decrypt (or mask, or pass as ciphertext) those of a response body.
 * Each works in place on a parsed document (pipeline/json-body.ts) and makes
 * ONE native call for all fields of the body under one L3 key version
 * (encryptFields: one fresh L4 data key per request; decryptFields: one call
 * per L3 version present, normally one).
 *
 * Fields are bound by AAD to tenant, key, policy, field and optionally record
 * (pipeline/field-context.ts). Decryption failures are opaque to the caller
 * (`field_decryption_failed`, 422); the precise reason of every failed field
 * is in the report or in {@link FieldDecryptionError.failures} for the audit
 * log. Nothing here ever puts a field's plaintext into an error.
 */
import {
  decryptFields,
  encryptFields,
  type FieldFailureReason,
  type FieldOpenResult,
} from '../../../common/src/crypto/field-cipher.ts';
import { KcmError } from '../../../common/src/errors.ts';
import { type FieldKeyRef, parseEnvelope } from '../../../common/src/format/envelope.ts';
import type { KeyHandle } from '../../../native/index.ts';
import type { CompiledRoute, FieldRule, ResponseFieldRule } from '../policy/policy-types.ts';
import { fieldContext } from './field-context.ts';
import { collectTargets, concretePath, type FieldTarget, readRecordId } from './field-targets.ts';
import type { FieldKeyProvider } from './key-provider.ts';

/** What one request's transform needs besides the document. */
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

/** Why a response field was not decrypted: field-cipher's reasons, or a non-string/non-envelope value. */
export type FieldAuditReason = FieldFailureReason | 'not_ciphertext';

/** One failed field, for the audit log: where (policy paths and indices only) and why. */
export interface FieldAuditEntry {
  path: string;
  field: string;
  reason: FieldAuditReason;
}

export interface TransformReport {
  encrypted: number;
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

const LONE_SURROGATE = /\p{Surrogate}/u;

function isPromise<T>(v: T | Promise<T>): v is Promise<T> {
  return typeof (v as { then?: unknown })?.then === 'function';
}

function emptyReport(): TransformReport {
  return { encrypted: 0, decrypted: 0, masked: 0, ciphertext: 0, failures: [] };
}

function typeName(v: unknown): string {
  return Array.isArray(v) ? 'array' : v === null ? 'null' : typeof v;
}

/** The plaintext bytes of a selected value, per the rule's `nonString` (see field-context.ts codecs). */
function encodeValue(rule: FieldRule, t: FieldTarget): Buffer {
  if (rule.nonString === 'stringify') return Buffer.from(JSON.stringify(t.value), 'utf8');
  if (typeof t.value !== 'string') {
    throw new KcmError('selector_type_mismatch', `${concretePath(rule.selector, t.indices)} is a ${typeName(t.value)}`);
  }
  if (LONE_SURROGATE.test(t.value)) {
    throw new KcmError(
      'selector_type_mismatch',
      `${concretePath(rule.selector, t.indices)} is not well-formed Unicode`,
    );
  }
  return Buffer.from(t.value, 'utf8');
}

function decodeValue(rule: FieldRule, plaintext: Buffer): unknown {
  const text = plaintext.toString('utf8');
  return rule.nonString === 'stringify' ? JSON.parse(text) : text;
}

/** The record id a target binds to, or undefined when its rule binds none. Throws `selector_missing`. */
function recordIdOf(
  doc: unknown,
  rule: FieldRule,
  t: FieldTarget,
  params: TransformRequest['params'],
): string | undefined {
  const src = rule.recordId;
  if (!src) return undefined;
  const id = src.from === 'pathParam' ? params[src.param] : readRecordId(doc, src.selector, t.indices);
  if (id === undefined || id === '') {
    const where = src.from === 'pathParam' ? `:${src.param}` : concretePath(src.selector, t.indices);
    throw new KcmError('selector_missing', `record id ${where}`);
  }
  return id;
}

function contextOf(doc: unknown, req: TransformRequest, rule: FieldRule, t: FieldTarget): Buffer {
  return fieldContext(req.route.policyId, rule, recordIdOf(doc, rule, t, req.params));
}

/**
 * Encrypts, in place, every field `req.route.request` selects in `doc`, with
 * one encryptFields call. Returns the report (`encrypted` = fields done).
 * Throws KcmError: `selector_missing`, `selector_type_mismatch`,
 * `too_many_fields` (field-targets.ts), `plaintext_too_large`, and whatever
 * the key provider throws; on any throw `doc` is unchanged.
 */
export async function encryptRequestFields(doc: unknown, req: TransformRequest): Promise<TransformReport> {
  const report = emptyReport();
  const { route } = req;
  if (route.request.length === 0) return report;
  const targets = collectTargets(doc, route.request, route.limits.maxFields);
  if (targets.length === 0) return report;
  const plaintexts: Buffer[] = new Array(targets.length);
  const contexts: Buffer[] = new Array(targets.length);
  try {
    for (let i = 0; i < targets.length; i++) {
      const t = targets[i] as FieldTarget;
      const rule = route.request[t.rule] as FieldRule;
      plaintexts[i] = encodeValue(rule, t);
      contexts[i] = contextOf(doc, req, rule, t);
    }
    const pending = req.keys.encryptKey(req.tenant, route.keyId);
    const key = isPromise(pending) ? await pending : pending;
    if (key.ref.tenant !== req.tenant || key.ref.keyId !== route.keyId) {
      throw new KcmError('internal_error', 'the key provider returned a key of another tenant or key id');
    }
    const sealed = encryptFields(key.handle, key.ref, plaintexts, contexts);
    for (let i = 0; i < targets.length; i++) {
      const t = targets[i] as FieldTarget;
      (t.parent as Record<string | number, unknown>)[t.key] = sealed[i];
    }
  } finally {
    for (const p of plaintexts) p?.fill(0);
  }
  report.encrypted = targets.length;
  return report;
}

/**
 * Opens ciphertexts with one decryptFields pass. Key versions the provider
 * answers synchronously are used at once; those it answers with a promise
 * are awaited and their items opened in a second pass (cache misses only).
 * Keys of another tenant or key id than the route's are never resolved.
 */
async function openAll(req: TransformRequest, ciphertexts: string[], contexts: Buffer[]): Promise<FieldOpenResult[]> {
  const { tenant, keys } = req;
  const keyId = req.route.keyId;
  const pending = new Map<number, Promise<KeyHandle | undefined>>();
  const results = decryptFields(
    tenant,
    (ref: FieldKeyRef) => {
      if (ref.tenant !== tenant || ref.keyId !== keyId) return undefined;
      const h = keys.decryptKey(ref);
      if (!isPromise(h)) return h;
      pending.set(ref.keyVersion, h);
      return undefined;
    },
    ciphertexts,
    contexts,
  );
  if (pending.size === 0) return results;
  const resolved = new Map<number, KeyHandle | undefined>();
  for (const [version, p] of pending) resolved.set(version, await p);
  const redo = results.flatMap((r, i) => (!r.ok && r.reason === 'unknown_key' ? [i] : []));
  const again = decryptFields(
    tenant,
    (ref) => (ref.tenant === tenant && ref.keyId === keyId ? resolved.get(ref.keyVersion) : undefined),
    redo.map((i) => ciphertexts[i] as string),
    redo.map((i) => contexts[i] as Buffer),
  );
  redo.forEach((i, k) => {
    results[i] = again[k] as FieldOpenResult;
  });
  return results;
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
 * Transforms, in place, every field `req.route.response` selects in `doc`
 * for `caller`: readers (by identity or role) get plaintext; others get the
 * ciphertext unchanged (checked to be an envelope of the tenant) or the mask,
 * per the rule's readers, without any decryption. A field that fails
 * (not a string, not an envelope, another tenant/key/field/record, bad tag)
 * is masked when its rule says `onFailure: "mask"`, else the whole body
 * fails with {@link FieldDecryptionError} (422, opaque) and `doc` is unchanged.
 * Also throws `selector_missing`, `selector_type_mismatch`, `too_many_fields`.
 */
export async function decryptResponseFields(
  doc: unknown,
  req: TransformRequest & { caller: Caller },
): Promise<TransformReport> {
  const report = emptyReport();
  const { route } = req;
  if (route.response.length === 0) return report;
  const targets = collectTargets(doc, route.response, route.limits.maxFields);
  const reads = route.response.map((rule) => mayRead(rule, req.caller));
  const writes: { t: FieldTarget; value: unknown }[] = [];
  const failed: FieldAuditEntry[] = [];
  const fail = (t: FieldTarget, rule: ResponseFieldRule, reason: FieldAuditReason): void => {
    const entry = { path: concretePath(rule.selector, t.indices), field: rule.field, reason };
    if (rule.onFailure === 'mask') {
      report.failures.push(entry);
      report.masked++;
      writes.push({ t, value: rule.readers.mask });
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
        writes.push({ t, value: rule.readers.mask });
      } else {
        const problem = ciphertextProblem(t.value, req.tenant);
        if (problem) fail(t, rule, problem);
        else report.ciphertext++;
      }
    } else if (typeof t.value !== 'string') fail(t, rule, 'not_ciphertext');
    else {
      open.push(t);
      ciphertexts.push(t.value);
      contexts.push(contextOf(doc, req, rule, t));
    }
  }
  if (open.length > 0) {
    const results = await openAll(req, ciphertexts, contexts);
    open.forEach((t, i) => {
      const rule = route.response[t.rule] as ResponseFieldRule;
      const r = results[i] as FieldOpenResult;
      if (!r.ok) fail(t, rule, r.reason);
      else {
        writes.push({ t, value: decodeValue(rule, r.plaintext) });
        r.plaintext.fill(0);
        report.decrypted++;
      }
    });
  }
  if (failed.length > 0) throw new FieldDecryptionError([...failed, ...report.failures]);
  for (const { t, value } of writes) (t.parent as Record<string | number, unknown>)[t.key] = value;
  return report;
}
