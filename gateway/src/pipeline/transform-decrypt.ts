/**
 * The response side of the field transforms (transform-json.ts has what both
 * sides share): readers get plaintext, others the ciphertext or the mask;
 * one native call opens and splices when every field allows it
 * (openInPlace), else the general path opens per L3 version present and
 * reports every failed field (masked per policy, or the opaque
 * FieldDecryptionError). Plaintexts are zeroed once used.
 */

import { isUtf8 } from 'node:buffer';
import {
  anyAsyncEnvelope,
  type FieldFailureReason,
  type FieldOpenResult,
  openFieldsInto,
  openFieldsIntoAsync,
  openParsedFields,
  openParsedFieldsAsync,
  parseFieldCiphertexts,
  zeroOpened,
} from '../../../common/src/crypto/field-cipher.ts';
import { KcmError } from '../../../common/src/errors.ts';
import { type FieldKeyRef, parseEnvelope } from '../../../common/src/format/envelope.ts';
import { jsonStringBytes, type KeyHandle } from '../../../native/index.ts';
import type { FieldRule, ResponseFieldRule } from '../policy/policy-types.ts';
import { collectTargets, concretePath, type FieldTarget, nodeValue } from './field-targets.ts';
import type { ScannedJson } from './json-body.ts';
import { scanJson, utf8Text } from './json-scan.ts';
import { type JsonEdit, spliceJson } from './json-splice.ts';
import {
  type Caller,
  contextOf,
  edit,
  emptyReport,
  type FieldAuditEntry,
  type FieldAuditReason,
  FieldDecryptionError,
  foundContexts,
  foundType,
  isPromise,
  type TransformReport,
  type TransformRequest,
} from './transform-json.ts';

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

/** True when a selected value may be opened on the one-call path: the caller reads it, its rule's codec is the string one, and it is an unescaped string. */
function opensInOneCall(rule: ResponseFieldRule, reads: boolean, isString: boolean, escaped: boolean): boolean {
  return reads && rule.nonString !== 'stringify' && isString && !escaped;
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
    // The key the one-call path resolved for this very ref, unless destroyed since (revoked, replaced): then ask again.
    const r = req.resolved;
    const known =
      r &&
      r.ref.tenant === ref.tenant &&
      r.ref.keyId === ref.keyId &&
      r.ref.keyVersion === ref.keyVersion &&
      (r.handle === undefined || r.handle.live)
        ? r
        : undefined;
    const h = known ? known.handle : keys.decryptKey(ref);
    const handle = isPromise(h) ? await h : h;
    handles.set(ref.keyVersion, handle);
    if (handle === undefined) continue;
    report.openedVersions ??= [];
    report.openedVersions.push(ref.keyVersion);
  }
  // Every group is of `tenant` (parseFieldCiphertexts fails the others); only the route's key id has handles.
  const resolve = (ref: FieldKeyRef) => (ref.keyId === keyId ? handles.get(ref.keyVersion) : undefined);
  // A token key (pkcs11 backend) opens off the event loop; every other key in this turn.
  return anyAsyncEnvelope(handles.values())
    ? openParsedFieldsAsync(parsed, resolve, contexts)
    : openParsedFields(parsed, resolve, contexts);
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
  req.resolved = { ref, handle };
  if (handle === undefined) return undefined;
  try {
    const body = handle.asyncEnvelope
      ? await openFieldsIntoAsync(handle, ref, bytes, spans, contexts)
      : openFieldsInto(handle, ref, bytes, spans, contexts);
    return body ? { body, version: ref.keyVersion } : undefined;
  } catch {
    return undefined; // e.g. the version revoked meanwhile: the general path says so
  }
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
 * `planFor(route.response)` in transform-json.ts) for `caller`: readers (by identity or
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
    zeroOpened(results);
    for (const d of decoded) d.fill(0);
  }
  return report;
}
