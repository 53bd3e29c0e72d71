/**
 * `dataKeySealSplice` built from a `dataKeySealBatch`: what the node backend
 * runs, and what a KeyHandle with an envelope engine (the gateway's PKCS#11
 * backend) runs. Same contract and output as the native export
 * (src/seal_splice.rs): item i of `spans` (4 numbers: value start, value end,
 * plaintext start, plaintext end) has `body[plaintext]` sealed with AAD
 * `aadHead ‖ u32be(len contexts[i]) ‖ contexts[i]`, and `body[value]`
 * replaced by `"` ‖ textHead ‖ base64url(header ‖ wrapped data key ‖ sealed) ‖ `"`.
 * One fresh data key per call. Throws `invalid_argument` (backendError) for
 * bad spans or contexts, before anything is sealed.
 */
import { backendError } from './backend-error.ts';

/** Longest context (the field AAD's limit, SPEC §5.3). */
export const MAX_SPLICE_CONTEXT = 4096;
/** Longest plaintext of one item (a field envelope's limit, SPEC §5); dataKeyOpenSplice refuses longer. */
export const MAX_SPLICE_PLAINTEXT = 1 << 20;

export type SealBatch = (
  wrapAad: Uint8Array,
  plaintexts: readonly Uint8Array[],
  aads: readonly Uint8Array[],
) => { wrappedKey: Uint8Array; sealed: readonly Uint8Array[] };

function invalid(detail: string): never {
  throw backendError('invalid_argument', `dataKeySealSplice: ${detail}`);
}

/** Checks that the byte arguments are Uint8Arrays, as the native export does (`invalid_argument`). */
export function checkSpliceHeads(
  wrapAad: unknown,
  body: unknown,
  heads: { aadHead: unknown; textHead: unknown; header: unknown },
): void {
  const named: [string, unknown][] = [
    ['wrapAad', wrapAad],
    ['body', body],
    ['aadHead', heads.aadHead],
    ['textHead', heads.textHead],
    ['header', heads.header],
  ];
  for (const [name, v] of named) if (!(v instanceof Uint8Array)) invalid(`${name} must be a Uint8Array or Buffer`);
}

/** Checks `spans` and `contexts` against a body of `bodyLength` bytes as the native export does; answers the item count. */
export function checkSpliceSpans(bodyLength: number, spans: Uint32Array, contexts: readonly Uint8Array[]): number {
  const n = checkSpans(bodyLength, spans, 4, invalid);
  // In the native call's order: ranges, contexts, then plaintext sizes.
  checkSpliceContexts(contexts, n, 4, invalid);
  for (let i = 0; i < spans.length; i += 4) {
    if ((spans[i + 3] as number) - (spans[i + 2] as number) > MAX_SPLICE_PLAINTEXT) {
      invalid('a plaintext is longer than 1 MiB');
    }
  }
  return n;
}

/**
 * The item count of `spans` (`width` numbers per item, `width / 2` ranges,
 * the value first), checked as src/splice.rs checked_ranges does: every
 * range inside a body of `bodyLength` bytes, the values ascending and not
 * overlapping, at least one item. `fail` names the call.
 */
export function checkSpans(
  bodyLength: number,
  spans: Uint32Array,
  width: number,
  fail: (detail: string) => never,
): number {
  if (!(spans instanceof Uint32Array)) fail('spans must be a Uint32Array');
  const n = spans.length / width;
  if (n < 1 || !Number.isInteger(n)) fail(`spans must hold ${width} numbers per item, at least one item`);
  let previousEnd = 0;
  for (let i = 0; i < spans.length; i += 2) {
    const start = spans[i] as number;
    const end = spans[i + 1] as number;
    if (start > end || end > bodyLength) fail('a span lies outside the body');
    if (i % width === 0) {
      if (start < previousEnd) fail(`${width === 2 ? 'spans' : 'value spans'} must be in order and must not overlap`);
      previousEnd = end;
    }
  }
  return n;
}

/** An item's AAD as the native calls build it: `aadHead ‖ u32be(len context) ‖ context`. */
export function spliceAad(aadHead: Uint8Array, context: Uint8Array): Buffer {
  const aad = Buffer.allocUnsafe(aadHead.length + 4 + context.length);
  aad.set(aadHead, 0);
  aad.writeUInt32BE(context.length, aadHead.length);
  aad.set(context, aadHead.length + 4);
  return aad;
}

/** `body` with item i's value (`spans[width·i]`..`spans[width·i + 1]`, ascending) replaced by `texts[i]`. */
export function spliceAround(
  body: Uint8Array,
  spans: Uint32Array,
  width: number,
  texts: readonly Uint8Array[],
): Buffer {
  const parts: Uint8Array[] = [];
  let from = 0;
  for (const [i, text] of texts.entries()) {
    parts.push(body.subarray(from, spans[width * i]), text);
    from = spans[width * i + 1] as number;
  }
  parts.push(body.subarray(from));
  return Buffer.concat(parts);
}

/** One context per item, each bytes of at most 4096 (for both splice calls; `fail` names the call). */
export function checkSpliceContexts(
  contexts: readonly Uint8Array[],
  n: number,
  width: number,
  fail: (detail: string) => never,
): void {
  if (!Array.isArray(contexts) || contexts.length !== n) fail(`one context per item (spans.length / ${width})`);
  for (const c of contexts) {
    if (!(c instanceof Uint8Array)) fail('contexts must be Uint8Arrays');
    if (c.length > MAX_SPLICE_CONTEXT) fail('a context is longer than 4096 bytes');
  }
}

/** What a seal batch gets: the plaintexts (views into the body, never copies) and their AADs. */
interface SealPlan {
  plaintexts: Uint8Array[];
  aads: Buffer[];
}

/** Checks every argument (before anything is sealed) and lays out the batch of a splice. */
function sealPlan(
  wrapAad: Uint8Array,
  body: Uint8Array,
  spans: Uint32Array,
  contexts: readonly Uint8Array[],
  heads: SpliceHeads,
): SealPlan {
  checkSpliceHeads(wrapAad, body, heads);
  const n = checkSpliceSpans(body.length, spans, contexts);
  const plaintexts: Uint8Array[] = new Array(n);
  for (let i = 0; i < n; i++) plaintexts[i] = body.subarray(spans[4 * i + 2], spans[4 * i + 3]);
  return { plaintexts, aads: contexts.map((c) => spliceAad(heads.aadHead, c)) };
}

/** The new body, once the batch sealed the plan's items. */
function sealFinish(
  body: Uint8Array,
  spans: Uint32Array,
  heads: SpliceHeads,
  sealedBatch: { wrappedKey: Uint8Array; sealed: readonly Uint8Array[] },
): Buffer {
  const { wrappedKey, sealed } = sealedBatch;
  const texts = sealed.map((s) => {
    const b64 = Buffer.concat([heads.header, wrappedKey, s]).toString('base64url');
    return Buffer.concat([QUOTE, heads.textHead, Buffer.from(b64, 'latin1'), QUOTE]);
  });
  return spliceAround(body, spans, 4, texts);
}

/** The three byte strings every splice call takes besides the body. */
export interface SpliceHeads {
  aadHead: Uint8Array;
  textHead: Uint8Array;
  header: Uint8Array;
}

export function sealSpliceVia(
  sealBatch: SealBatch,
  wrapAad: Uint8Array,
  body: Uint8Array,
  spans: Uint32Array,
  contexts: readonly Uint8Array[],
  aadHead: Uint8Array,
  textHead: Uint8Array,
  header: Uint8Array,
): Buffer {
  const heads = { aadHead, textHead, header };
  const { plaintexts, aads } = sealPlan(wrapAad, body, spans, contexts, heads);
  return sealFinish(body, spans, heads, sealBatch(wrapAad, plaintexts, aads));
}

/** A SealBatch that answers later (an envelope engine off the event loop). */
export type AsyncSealBatch = (...args: Parameters<SealBatch>) => Promise<ReturnType<SealBatch>>;

/** sealSpliceVia through an asynchronous batch: the same checks (thrown before the batch starts) and output. */
export function sealSpliceViaAsync(
  sealBatch: AsyncSealBatch,
  wrapAad: Uint8Array,
  body: Uint8Array,
  spans: Uint32Array,
  contexts: readonly Uint8Array[],
  heads: SpliceHeads,
): Promise<Buffer> {
  const { plaintexts, aads } = sealPlan(wrapAad, body, spans, contexts, heads);
  return sealBatch(wrapAad, plaintexts, aads).then((r) => sealFinish(body, spans, heads, r));
}

const QUOTE = Buffer.from('"');
