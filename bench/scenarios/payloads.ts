/**
 * The request bodies of the scenarios: fixed bytes, built once, identical for
 * the gateway and its baselines. Plaintexts are pseudo-random (a fixed seed)
 * so no compression or caching anywhere can favour one side.
 */

/** Deterministic bytes (xorshift32), so every run sends the same bodies. */
export function fixedBytes(n: number, seed = 0x9e3779b9): Buffer {
  const b = Buffer.alloc(n);
  let x = seed >>> 0;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
}

/** 32 bytes of context (AAD), base64, the same in every scenario. */
export const CONTEXT_B64 = fixedBytes(32, 7).toString('base64');

/** `{ plaintext, context }` for a single-item encrypt of `size` bytes. */
export function encryptBody(size: number): string {
  return JSON.stringify({ plaintext: fixedBytes(size, size).toString('base64'), context: CONTEXT_B64 });
}

/** A batch of `n` items of `size` bytes each, with references. */
export function batchEncryptBody(n: number, size: number): string {
  const batch = Array.from({ length: n }, (_, i) => ({
    plaintext: fixedBytes(size, 1000 + i).toString('base64'),
    context: CONTEXT_B64,
    reference: `f${i}`,
  }));
  return JSON.stringify({ batch });
}

/** `{ ciphertext, context }` for a decrypt of a ciphertext the same server made. */
export function decryptBody(ciphertext: string): string {
  return JSON.stringify({ ciphertext, context: CONTEXT_B64 });
}

/** Data-key creation body. */
export const DATAKEY_BODY = JSON.stringify({ context: CONTEXT_B64, bits: 256 });

/** The five fields a proxy policy encrypts in {@link sampleOrder}. */
export const ORDER_FIELDS = [
  '$.card.number',
  '$.card.cvv',
  '$.customer.email',
  '$.customer.phone',
  '$.customer.taxId',
] as const;

/** A ~2 KB order JSON with the five string fields of {@link ORDER_FIELDS} and unselected filler (also used by bench/gateway/transform.ts). */
export function sampleOrder(id = 'ord_01HZX3K9Q4'): Record<string, unknown> {
  const doc = {
    id,
    status: 'pending',
    card: { number: '4111 1111 1111 1111', cvv: '737', expiry: '12/29', brand: 'visa' },
    customer: {
      name: 'Ada Lovelace',
      email: 'ada.lovelace@example.com',
      phone: '+44 20 7946 0958',
      taxId: 'GB123456789',
      address: { line1: '12 Analytical Engine Way', city: 'London', postcode: 'N1 9GU', country: 'GB' },
    },
    items: [] as { sku: string; name: string; qty: number; price: number; tags: string[] }[],
    notes: '',
  };
  let i = 0;
  while (JSON.stringify(doc).length < 1900) {
    doc.items.push({
      sku: `SKU-${1000 + i}`,
      name: `Item number ${i}`,
      qty: (i % 4) + 1,
      price: 9.99 + i,
      tags: ['a'],
    });
    i++;
  }
  doc.notes = 'n'.repeat(Math.max(0, 2048 - JSON.stringify(doc).length));
  return doc;
}
