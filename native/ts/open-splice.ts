/**
 * `dataKeyOpenSplice` built from a `dataKeyOpenBatch`: what the node backend
 * runs, and what a KeyHandle with an envelope engine runs. Same contract and
 * output as the native export (src/open_splice.rs): every value span
 * (`spans`: start, end per item) must be exactly `"` ‖ textHead ‖ canonical
 * base64url(header ‖ wrapped data key (60) ‖ nonce ‖ ct ‖ tag) ‖ `"` with at
 * most 1 MiB of plaintext, must open (data key under `kek` with `wrapAad`,
 * item AAD `aadHead ‖ u32be(len context) ‖ context`), and its plaintext must
 * be UTF-8; then the body comes back with each value replaced by its
 * plaintext's JSON string (json-string.ts). When any item falls short the
 * answer is null and nothing says why: the caller opens the items with
 * dataKeyOpenBatch to learn that. Plaintexts are zeroed once written. Throws
 * `invalid_argument` (backendError) for bad spans or contexts.
 */
import { isUtf8 } from 'node:buffer';
import { backendError } from './backend-error.ts';
import { jsonStringBytes } from './json-string.ts';
import {
  checkSpans,
  checkSpliceContexts,
  checkSpliceHeads,
  MAX_SPLICE_PLAINTEXT,
  type SpliceHeads,
  spliceAad,
  spliceAround,
} from './seal-splice.ts';

const WRAPPED = 60;
const OVERHEAD = 28;
const BASE64URL = /^[A-Za-z0-9_-]*$/;

export type OpenBatch = (
  wrappedKeys: readonly Uint8Array[],
  wrapAads: readonly Uint8Array[],
  sealed: readonly Uint8Array[],
  aads: readonly Uint8Array[],
) => (Buffer | null)[];

function invalid(detail: string): never {
  throw backendError('invalid_argument', `dataKeyOpenSplice: ${detail}`);
}

/** Checks `spans` (2 per item) and `contexts` as the native export does; answers the item count. */
export function checkOpenSpans(bodyLength: number, spans: Uint32Array, contexts: readonly Uint8Array[]): number {
  const n = checkSpans(bodyLength, spans, 2, invalid);
  checkSpliceContexts(contexts, n, 2, invalid);
  return n;
}

/** The envelope bytes of a value span of the required shape, or undefined. */
function envelopeOf(value: Uint8Array, textHead: Uint8Array, header: Uint8Array): Buffer | undefined {
  const h = textHead.length;
  if (value.length < 2 + h || value[0] !== 0x22 || value[value.length - 1] !== 0x22) return undefined;
  if (!Buffer.from(value.buffer, value.byteOffset + 1, h).equals(textHead)) return undefined;
  const text = Buffer.from(value.buffer, value.byteOffset + 1 + h, value.length - 2 - h).toString('latin1');
  if (!BASE64URL.test(text)) return undefined;
  const bytes = Buffer.from(text, 'base64url');
  if (bytes.toString('base64url') !== text) return undefined; // not canonical
  const min = header.length + WRAPPED + OVERHEAD;
  if (bytes.length < min || bytes.length > min + MAX_SPLICE_PLAINTEXT) return undefined;
  return bytes.subarray(0, header.length).equals(header) ? bytes : undefined;
}

/** What an open batch gets, per item. */
type OpenPlan = Parameters<OpenBatch>;

/** Checks every argument and lays out the batch of a splice; null when an item is not an envelope of the shape. */
function openPlan(
  wrapAad: Uint8Array,
  body: Uint8Array,
  spans: Uint32Array,
  contexts: readonly Uint8Array[],
  heads: SpliceHeads,
): OpenPlan | null {
  const { aadHead, textHead, header } = heads;
  checkSpliceHeads(wrapAad, body, heads);
  const n = checkOpenSpans(body.length, spans, contexts);
  const envelopes: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    const env = envelopeOf(body.subarray(spans[2 * i], spans[2 * i + 1]), textHead, header);
    if (env === undefined) return null;
    envelopes.push(env);
  }
  const h = header.length;
  return [
    envelopes.map((e) => e.subarray(h, h + WRAPPED)),
    envelopes.map(() => wrapAad),
    envelopes.map((e) => e.subarray(h + WRAPPED)),
    contexts.map((c) => spliceAad(aadHead, c)),
  ];
}

/** The new body once the batch opened the items, or null; every plaintext is zeroed either way. */
function openFinish(body: Uint8Array, spans: Uint32Array, plaintexts: readonly (Buffer | null)[]): Buffer | null {
  const strings: Buffer[] = [];
  try {
    for (const p of plaintexts) {
      if (p === null || !isUtf8(p)) return null;
      strings.push(jsonStringBytes(p));
    }
    return spliceAround(body, spans, 2, strings);
  } finally {
    for (const p of plaintexts) p?.fill(0);
    for (const s of strings) s.fill(0);
  }
}

export function openSpliceVia(
  openBatch: OpenBatch,
  wrapAad: Uint8Array,
  body: Uint8Array,
  spans: Uint32Array,
  contexts: readonly Uint8Array[],
  aadHead: Uint8Array,
  textHead: Uint8Array,
  header: Uint8Array,
): Buffer | null {
  const plan = openPlan(wrapAad, body, spans, contexts, { aadHead, textHead, header });
  return plan && openFinish(body, spans, openBatch(...plan));
}

/** An OpenBatch that answers later (an envelope engine off the event loop). */
export type AsyncOpenBatch = (...args: Parameters<OpenBatch>) => Promise<ReturnType<OpenBatch>>;

/** openSpliceVia through an asynchronous batch: the same checks (thrown before the batch starts) and output. */
export function openSpliceViaAsync(
  openBatch: AsyncOpenBatch,
  wrapAad: Uint8Array,
  body: Uint8Array,
  spans: Uint32Array,
  contexts: readonly Uint8Array[],
  heads: SpliceHeads,
): Promise<Buffer | null> {
  const plan = openPlan(wrapAad, body, spans, contexts, heads);
  return plan ? openBatch(...plan).then((p) => openFinish(body, spans, p)) : Promise.resolve(null);
}
