/**
 * Reader and writer of the golden-vector text format (SPEC.md §8): records of
 * `key: value` lines separated by blank lines, `#` comments. Chosen over JSON
 * so the Rust tests can read the same file without a parser dependency.
 */

export type Outcome = 'success' | 'auth_failure' | 'header_failure' | 'wrong_tenant' | 'wrong_context' | 'unsupported_version';
export const OUTCOMES: readonly Outcome[] = [
  'success',
  'auth_failure',
  'header_failure',
  'wrong_tenant',
  'wrong_context',
  'unsupported_version',
];

export interface EnvelopeVector {
  name: string;
  /** Hex of the 32-byte L3 key the resolver hands out for whatever version the ciphertext names. */
  l3_key: string;
  /** The tenant the decrypting caller belongs to. */
  tenant: string;
  /** Hex of the context supplied at decryption. */
  context: string;
  ciphertext: string;
  expect: Outcome;
  /** Hex of the expected plaintext (success only). */
  plaintext?: string;
}

const FIELDS = ['name', 'l3_key', 'tenant', 'context', 'ciphertext', 'expect', 'plaintext'] as const;

export function formatVectors(header: string, vectors: readonly EnvelopeVector[]): string {
  const lines = header.split('\n').map((l) => `# ${l}`.trimEnd());
  for (const v of vectors) {
    lines.push('');
    for (const f of FIELDS) if (v[f] !== undefined) lines.push(v[f] === "" ? `${f}:` : `${f}: ${v[f]}`);
  }
  return `${lines.join('\n')}\n`;
}

export function parseVectors(text: string): EnvelopeVector[] {
  const out: EnvelopeVector[] = [];
  for (const block of text.split(/\n\s*\n/)) {
    const rec: Record<string, string> = {};
    for (const line of block.split('\n')) {
      if (line.startsWith('#') || line.trim() === '') continue;
      const colon = line.indexOf(': ');
      const key = colon < 0 ? line.replace(/:$/, '') : line.slice(0, colon);
      rec[key] = colon < 0 ? '' : line.slice(colon + 2);
    }
    if (Object.keys(rec).length === 0) continue;
    for (const f of ['name', 'l3_key', 'tenant', 'context', 'ciphertext', 'expect']) {
      if (rec[f] === undefined) throw new Error(`vector ${rec.name ?? '?'}: missing ${f}`);
    }
    if (!OUTCOMES.includes(rec.expect as Outcome)) throw new Error(`vector ${rec.name}: bad expect ${rec.expect}`);
    out.push(rec as unknown as EnvelopeVector);
  }
  return out;
}
