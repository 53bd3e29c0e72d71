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
  if (!(spans instanceof Uint32Array)) invalid('spans must be a Uint32Array');
  const n = spans.length / 4;
  if (n < 1 || !Number.isInteger(n)) invalid('spans must hold 4 numbers per item, at least one item');
  let previousEnd = 0;
  for (let i = 0; i < spans.length; i += 4) {
    const vs = spans[i] as number;
    const ve = spans[i + 1] as number;
    const ps = spans[i + 2] as number;
    const pe = spans[i + 3] as number;
    if (!(vs <= ve && ve <= bodyLength && ps <= pe && pe <= bodyLength)) invalid('a span lies outside the body');
    if (vs < previousEnd) invalid('value spans must be in order and must not overlap');
    if (pe - ps > MAX_SPLICE_PLAINTEXT) invalid('a plaintext is longer than 1 MiB');
    previousEnd = ve;
  }
  checkSpliceContexts(contexts, n, 4, invalid);
  return n;
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
  checkSpliceHeads(wrapAad, body, { aadHead, textHead, header });
  const n = checkSpliceSpans(body.length, spans, contexts);
  const plaintexts: Uint8Array[] = new Array(n);
  const aads: Buffer[] = new Array(n);
  for (let i = 0; i < n; i++) {
    plaintexts[i] = body.subarray(spans[4 * i + 2], spans[4 * i + 3]);
    const c = contexts[i] as Uint8Array;
    const aad = Buffer.allocUnsafe(aadHead.length + 4 + c.length);
    aad.set(aadHead, 0);
    aad.writeUInt32BE(c.length, aadHead.length);
    aad.set(c, aadHead.length + 4);
    aads[i] = aad;
  }
  const { wrappedKey, sealed } = sealBatch(wrapAad, plaintexts, aads);
  const parts: Uint8Array[] = [];
  let from = 0;
  for (let i = 0; i < n; i++) {
    parts.push(body.subarray(from, spans[4 * i]));
    const text = Buffer.concat([header, wrappedKey, sealed[i] as Uint8Array]).toString('base64url');
    parts.push(Buffer.from('"'), textHead, Buffer.from(text, 'latin1'), Buffer.from('"'));
    from = spans[4 * i + 1] as number;
  }
  parts.push(body.subarray(from));
  return Buffer.concat(parts);
}
