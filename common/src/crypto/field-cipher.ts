/**
 * Field encryption with the envelope of SPEC.md §5: one backend call per
 * request to encrypt (a fresh L4 data key per call, wrapped under the L3 key),
 * one backend call per L3 key version to decrypt, per-item results.
 */
import type { KeyHandle } from '../../../native/index.ts';
import { KcmError } from '../errors.ts';
import {
  dataKeyWrapAad,
  ENVELOPE_TEXT_HEAD,
  encodeFieldHeader,
  type FieldEnvelope,
  type FieldKeyRef,
  fieldAad,
  fieldAadHead,
  MAX_CONTEXT_BYTES,
  MAX_FIELD_PLAINTEXT,
  parseEnvelope,
  serializeEnvelope,
} from '../format/envelope.ts';

/** Why a field did not decrypt. Callers answer the opaque `decryption_failed`; this goes to the audit log. */
export type FieldFailureReason =
  | 'format_prefix'
  | 'format_version'
  | 'format_encoding'
  | 'format_header'
  | 'format_length'
  | 'wrong_tenant'
  | 'unknown_key'
  | 'auth_failed';

export type FieldOpenResult = { ok: true; plaintext: Buffer } | { ok: false; reason: FieldFailureReason };

/** Finds the L3 key version a ciphertext names, or undefined when this caller cannot have it. */
export type FieldKeyResolver = (ref: FieldKeyRef) => KeyHandle | undefined;

interface RefBytes {
  header: Buffer;
  wrapAad: Buffer;
  /** fieldAadHead(header): the AADs' common start, for encryptFieldsInto. */
  aadHead: Buffer;
}

function newRefBytes(ref: FieldKeyRef): RefBytes {
  const header = encodeFieldHeader(ref);
  return { header, wrapAad: dataKeyWrapAad(ref), aadHead: fieldAadHead(header) };
}

/** The field header and data-key wrap AAD of key references in use (see refBytes). */
const refCache = new Map<string, RefBytes>();
const REF_CACHE_MAX = 1024;

/**
 * encodeFieldHeader(ref) and dataKeyWrapAad(ref), which depend on nothing
 * but the reference: built (and so validated) once per reference, not once
 * per request. The cache key is length-prefixed, so no two references share
 * one; past REF_CACHE_MAX references it starts over. The buffers are shared:
 * callers read them, never write them.
 */
function refBytes(ref: FieldKeyRef): RefBytes {
  // Only a number may share a cache entry: '1' must fail validation, not find 1's bytes.
  if (typeof ref.keyVersion !== 'number') return newRefBytes(ref);
  const id = `${ref.tenant.length}:${ref.tenant}${ref.keyId.length}:${ref.keyId}${ref.keyVersion}`;
  let bytes = refCache.get(id);
  if (!bytes) {
    bytes = newRefBytes(ref);
    if (refCache.size >= REF_CACHE_MAX) refCache.clear();
    refCache.set(id, bytes);
  }
  return bytes;
}

/**
 * Encrypts every plaintext under one fresh data key wrapped by `l3` (which must
 * be the key `ref` names), binding each to its context. One backend call.
 * Throws KcmError `plaintext_too_large`, `invalid_context`, `format_header` (bad ref).
 * A key whose envelope is asynchronous (KeyHandle.asyncEnvelope) takes
 * {@link encryptFieldsAsync}; so for every call of this file.
 */
export function encryptFields(
  l3: KeyHandle,
  ref: FieldKeyRef,
  plaintexts: readonly Uint8Array[],
  contexts: readonly Uint8Array[],
): string[] {
  const { header, wrapAad, aads } = fieldBatch(ref, plaintexts, contexts);
  return envelopesOf(header, l3.dataKeySealBatch(wrapAad, plaintexts, aads));
}

/** encryptFields through the key's asynchronous envelope (or its synchronous one): same checks, same output. */
export async function encryptFieldsAsync(
  l3: KeyHandle,
  ref: FieldKeyRef,
  plaintexts: readonly Uint8Array[],
  contexts: readonly Uint8Array[],
): Promise<string[]> {
  const { header, wrapAad, aads } = fieldBatch(ref, plaintexts, contexts);
  return envelopesOf(header, await l3.dataKeySealBatchAsync(wrapAad, plaintexts, aads));
}

/** The checked header, wrap AAD and per-item AADs of an encryptFields batch. */
function fieldBatch(
  ref: FieldKeyRef,
  plaintexts: readonly Uint8Array[],
  contexts: readonly Uint8Array[],
): { header: Buffer; wrapAad: Buffer; aads: Buffer[] } {
  if (plaintexts.length !== contexts.length) {
    throw new KcmError('invalid_argument', 'plaintexts and contexts differ in length');
  }
  const { header, wrapAad } = refBytes(ref);
  const aads: Buffer[] = new Array(plaintexts.length);
  for (let i = 0; i < plaintexts.length; i++) {
    if ((plaintexts[i] as Uint8Array).length > MAX_FIELD_PLAINTEXT) {
      throw new KcmError('plaintext_too_large', `item ${i} exceeds ${MAX_FIELD_PLAINTEXT} bytes`);
    }
    aads[i] = fieldAad(header, contexts[i] as Uint8Array);
  }
  return { header, wrapAad, aads };
}

function envelopesOf(header: Buffer, batch: { wrappedKey: Buffer; sealed: Buffer[] }): string[] {
  return batch.sealed.map((s) => serializeEnvelope(header, batch.wrappedKey, s));
}

/**
 * encryptFields over spans of a body, written into a new body in one backend
 * call: item i seals `body[spans[4i+2], spans[4i+3])` bound to `contexts[i]`
 * and replaces `body[spans[4i], spans[4i+1])` with the JSON string of its
 * envelope (the text encryptFields answers, in quotes; envelopes need no JSON
 * escape). Every other byte is copied. Items may come in any order (they are
 * checked in that order, as encryptFields checks its items, then put in body
 * order); value spans must not overlap. The plaintexts are read in place,
 * never copied. Throws KcmError `format_header` (bad ref),
 * `plaintext_too_large`, `invalid_context`; CryptoError `invalid_argument`
 * for bad spans.
 */
export function encryptFieldsInto(
  l3: KeyHandle,
  ref: FieldKeyRef,
  body: Uint8Array,
  spans: Uint32Array,
  contexts: readonly Uint8Array[],
): Buffer {
  const { wrapAad, ordered, orderedContexts, heads } = spliceBatch(ref, spans, contexts);
  return l3.dataKeySealSplice(wrapAad, body, ordered, orderedContexts, heads);
}

/** encryptFieldsInto through the key's asynchronous envelope (or its synchronous one): same checks, same output. */
export async function encryptFieldsIntoAsync(
  l3: KeyHandle,
  ref: FieldKeyRef,
  body: Uint8Array,
  spans: Uint32Array,
  contexts: readonly Uint8Array[],
): Promise<Buffer> {
  const { wrapAad, ordered, orderedContexts, heads } = spliceBatch(ref, spans, contexts);
  return l3.dataKeySealSpliceAsync(wrapAad, body, ordered, orderedContexts, heads);
}

/**
 * What sealing under `ref` takes besides the key, the body and the text
 * head: the data-key wrap AAD and the splice heads (a native front keeps
 * them with its copy of the key). Throws KcmError `format_header` for a bad ref.
 */
export function sealHeadsOf(ref: FieldKeyRef): { wrapAad: Buffer; header: Buffer; aadHead: Buffer } {
  const { header, wrapAad, aadHead } = refBytes(ref);
  return { wrapAad, header, aadHead };
}

/** encryptFieldsInto's checks, and its items in body order with the splice heads of `ref`. */
function spliceBatch(ref: FieldKeyRef, spans: Uint32Array, contexts: readonly Uint8Array[]) {
  if (spans.length !== 4 * contexts.length) {
    throw new KcmError('invalid_argument', 'spans and contexts differ in length');
  }
  const { header, wrapAad, aadHead } = refBytes(ref);
  for (let i = 0; i < contexts.length; i++) {
    if ((spans[4 * i + 3] as number) - (spans[4 * i + 2] as number) > MAX_FIELD_PLAINTEXT) {
      throw new KcmError('plaintext_too_large', `item ${i} exceeds ${MAX_FIELD_PLAINTEXT} bytes`);
    }
    if ((contexts[i] as Uint8Array).length > MAX_CONTEXT_BYTES) {
      throw new KcmError('invalid_context', `context longer than ${MAX_CONTEXT_BYTES} bytes`);
    }
  }
  const [ordered, orderedContexts] = inBodyOrder(spans, 4, contexts);
  return { wrapAad, ordered, orderedContexts, heads: { aadHead, textHead: ENVELOPE_TEXT_HEAD, header } };
}

/**
 * decryptFields for a body, all or nothing, in one backend call: when every
 * value span (`spans`: start, end per item, in any order, not overlapping) is
 * exactly the JSON string of an envelope of `ref` that opens under `l3` with
 * its context and holds UTF-8, the body with each value replaced by the JSON
 * string of its plaintext; otherwise null, with no reason: decryptFields on
 * the same items says which failed and why. Never throws for what the items
 * hold; a context over 4 KiB is also a null (decryptFields throws
 * `invalid_context` for it).
 */
export function openFieldsInto(
  l3: KeyHandle,
  ref: FieldKeyRef,
  body: Uint8Array,
  spans: Uint32Array,
  contexts: readonly Uint8Array[],
): Buffer | null {
  const b = openSpliceBatch(ref, spans, contexts);
  return b && l3.dataKeyOpenSplice(b.wrapAad, body, b.ordered, b.orderedContexts, b.heads);
}

/** openFieldsInto through the key's asynchronous envelope (or its synchronous one): same answers. */
export async function openFieldsIntoAsync(
  l3: KeyHandle,
  ref: FieldKeyRef,
  body: Uint8Array,
  spans: Uint32Array,
  contexts: readonly Uint8Array[],
): Promise<Buffer | null> {
  const b = openSpliceBatch(ref, spans, contexts);
  return b && l3.dataKeyOpenSpliceAsync(b.wrapAad, body, b.ordered, b.orderedContexts, b.heads);
}

/** openFieldsInto's items in body order with the splice heads of `ref`; null when a context is too long. */
function openSpliceBatch(ref: FieldKeyRef, spans: Uint32Array, contexts: readonly Uint8Array[]) {
  if (spans.length !== 2 * contexts.length) {
    throw new KcmError('invalid_argument', 'spans and contexts differ in length');
  }
  for (const c of contexts) if (c.length > MAX_CONTEXT_BYTES) return null;
  const { header, wrapAad, aadHead } = refBytes(ref);
  const [ordered, orderedContexts] = inBodyOrder(spans, 2, contexts);
  return { wrapAad, ordered, orderedContexts, heads: { aadHead, textHead: ENVELOPE_TEXT_HEAD, header } };
}

/**
 * The items of `spans` (`width` numbers each, the value start first) and
 * their contexts in body order: themselves when already so (the usual case).
 */
function inBodyOrder(
  spans: Uint32Array,
  width: number,
  contexts: readonly Uint8Array[],
): [Uint32Array, readonly Uint8Array[]] {
  let sorted = true;
  for (let i = width; i < spans.length && sorted; i += width)
    sorted = (spans[i] as number) >= (spans[i - width] as number);
  if (sorted) return [spans, contexts];
  const order = contexts.map((_, i) => i).sort((a, b) => (spans[width * a] as number) - (spans[width * b] as number));
  const out = new Uint32Array(spans.length);
  for (const [k, i] of order.entries()) out.set(spans.subarray(width * i, width * i + width), width * k);
  return [out, order.map((i) => contexts[i] as Uint8Array)];
}

function formatReason(err: unknown): FieldFailureReason {
  if (err instanceof KcmError && err.code.startsWith('format_')) return err.code as FieldFailureReason;
  throw err;
}

/**
 * Decrypts field ciphertexts for a caller of `expectedTenant`. Items naming
 * another tenant fail (`wrong_tenant`) before any key is looked up; items are
 * grouped by L3 key version and each group is opened in one backend call.
 * A bad ciphertext is a per-item failure, never an exception; throws only for
 * caller errors (`invalid_context` past 4 KiB, mismatched array lengths).
 */
export function decryptFields(
  expectedTenant: string,
  resolve: FieldKeyResolver,
  ciphertexts: readonly string[],
  contexts: readonly Uint8Array[],
): FieldOpenResult[] {
  return openParsedFields(parseFieldCiphertexts(expectedTenant, ciphertexts), resolve, contexts);
}

/** Ciphertexts parsed for opening: per-item format/tenant failures, the rest grouped by L3 key version. */
export interface ParsedFields {
  /** Results so far: set for the items that already failed. */
  results: FieldOpenResult[];
  envelopes: FieldEnvelope[];
  /** Item indices per L3 key version; the first item's envelope names the version. */
  groups: Map<string, number[]>;
}

/**
 * The first half of {@link decryptFields}: parses every ciphertext once, so a
 * caller can look up the keys of `groups` (perhaps asynchronously) before
 * {@link openParsedFields}.
 */
export function parseFieldCiphertexts(expectedTenant: string, ciphertexts: readonly string[]): ParsedFields {
  const results: FieldOpenResult[] = new Array(ciphertexts.length);
  const envelopes: FieldEnvelope[] = new Array(ciphertexts.length);
  const groups = new Map<string, number[]>();
  for (let i = 0; i < ciphertexts.length; i++) {
    let env: FieldEnvelope;
    try {
      env = parseEnvelope(ciphertexts[i] as string);
      envelopes[i] = env;
    } catch (err) {
      results[i] = { ok: false, reason: formatReason(err) };
      continue;
    }
    if (env.tenant !== expectedTenant) {
      results[i] = { ok: false, reason: 'wrong_tenant' };
      continue;
    }
    const id = `${env.keyId}\0${env.keyVersion}`;
    const group = groups.get(id);
    if (group) group.push(i);
    else groups.set(id, [i]);
  }
  return { results, envelopes, groups };
}

/**
 * The second half of {@link decryptFields}: opens each group of `parsed`
 * with the key `resolve` names. When a group's backend call throws, the
 * plaintexts of the groups already opened are zeroed before the error goes on.
 */
export function openParsedFields(
  parsed: ParsedFields,
  resolve: FieldKeyResolver,
  contexts: readonly Uint8Array[],
): FieldOpenResult[] {
  const { results, envelopes, groups } = parsed;
  checkOpenLengths(results, contexts);
  try {
    for (const items of groups.values()) {
      const g = groupBatch(resolve, envelopes, items, contexts, results);
      if (g) groupResults(items, results, g.key.dataKeyOpenBatch(...g.batch));
    }
  } catch (err) {
    zeroOpened(results);
    throw err;
  }
  return results;
}

/** Zeroes the plaintexts of `results` (those that opened), once they are of no more use or go nowhere. */
export function zeroOpened(results: readonly (FieldOpenResult | undefined)[]): void {
  for (const r of results) if (r?.ok) r.plaintext.fill(0);
}

/** Whether any of `keys` needs the asynchronous calls (a token key: KeyHandle.asyncEnvelope). */
export function anyAsyncEnvelope(keys: Iterable<KeyHandle | undefined>): boolean {
  for (const k of keys) if (k?.asyncEnvelope) return true;
  return false;
}

/**
 * openParsedFields through the keys' asynchronous envelopes (or their
 * synchronous ones), one group after the other: same results.
 */
export async function openParsedFieldsAsync(
  parsed: ParsedFields,
  resolve: FieldKeyResolver,
  contexts: readonly Uint8Array[],
): Promise<FieldOpenResult[]> {
  const { results, envelopes, groups } = parsed;
  checkOpenLengths(results, contexts);
  try {
    for (const items of groups.values()) {
      const g = groupBatch(resolve, envelopes, items, contexts, results);
      if (g) groupResults(items, results, await g.key.dataKeyOpenBatchAsync(...g.batch));
    }
  } catch (err) {
    zeroOpened(results);
    throw err;
  }
  return results;
}

/** decryptFields through the keys' asynchronous envelopes (or their synchronous ones): same results. */
export function decryptFieldsAsync(
  expectedTenant: string,
  resolve: FieldKeyResolver,
  ciphertexts: readonly string[],
  contexts: readonly Uint8Array[],
): Promise<FieldOpenResult[]> {
  return openParsedFieldsAsync(parseFieldCiphertexts(expectedTenant, ciphertexts), resolve, contexts);
}

function checkOpenLengths(results: readonly unknown[], contexts: readonly Uint8Array[]): void {
  if (results.length !== contexts.length) {
    throw new KcmError('invalid_argument', 'ciphertexts and contexts differ in length');
  }
}

type OpenBatchArgs = Parameters<KeyHandle['dataKeyOpenBatch']>;

/**
 * The key and the one backend call's arguments of one L3 key version's
 * items; undefined (the items marked `unknown_key`) when `resolve` has no key.
 */
function groupBatch(
  resolve: FieldKeyResolver,
  envelopes: readonly FieldEnvelope[],
  items: readonly number[],
  contexts: readonly Uint8Array[],
  results: FieldOpenResult[],
): { key: KeyHandle; batch: OpenBatchArgs } | undefined {
  const first = envelopes[items[0] as number] as FieldEnvelope;
  const key = resolve(first);
  if (!key) {
    for (const i of items) results[i] = { ok: false, reason: 'unknown_key' };
    return undefined;
  }
  const { wrapAad } = refBytes(first);
  const n = items.length;
  const wrappedKeys: Uint8Array[] = new Array(n);
  const wrapAads: Uint8Array[] = new Array(n).fill(wrapAad);
  const sealed: Uint8Array[] = new Array(n);
  const aads: Uint8Array[] = new Array(n);
  for (let k = 0; k < n; k++) {
    const i = items[k] as number;
    const env = envelopes[i] as FieldEnvelope;
    wrappedKeys[k] = env.wrappedKey;
    sealed[k] = env.sealed;
    aads[k] = fieldAad(env.header, contexts[i] as Uint8Array);
  }
  return { key, batch: [wrappedKeys, wrapAads, sealed, aads] };
}

/** Item results of one group from its backend call's answer. */
function groupResults(items: readonly number[], results: FieldOpenResult[], opened: readonly (Buffer | null)[]): void {
  for (let k = 0; k < items.length; k++) {
    const plaintext = opened[k];
    results[items[k] as number] = plaintext ? { ok: true, plaintext } : { ok: false, reason: 'auth_failed' };
  }
}
