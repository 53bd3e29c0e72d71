/**
 * GF(2^8) arithmetic over the AES polynomial x^8 + x^4 + x^3 + x + 1 (0x11B),
 * the field of the Shamir module in native/src/gf256.rs. Written without
 * secret-indexed tables or secret-dependent branches (masks only); JavaScript
 * gives no hard constant-time guarantee, which is one more reason the native
 * backend is preferred.
 */

/** a·b in GF(2^8): shift-and-add with the reduction chosen by a mask. */
export function gfMul(a: number, b: number): number {
  let product = 0;
  let x = a & 0xff;
  let y = b & 0xff;
  for (let i = 0; i < 8; i++) {
    product ^= -(y & 1) & x;
    const carry = -((x >> 7) & 1) & 0x1b;
    x = ((x << 1) & 0xff) ^ carry;
    y >>= 1;
  }
  return product & 0xff;
}

/** a^-1 = a^254 (square-and-multiply over a public exponent); 0 maps to 0. */
export function gfInv(a: number): number {
  let result = 1;
  let base = a & 0xff;
  for (let e = 254; e > 0; e >>= 1) {
    if (e & 1) result = gfMul(result, base);
    base = gfMul(base, base);
  }
  return result;
}

/** Evaluates c0 + c1·x + … at x (Horner). */
export function gfPolyEval(coeffs: Uint8Array, x: number): number {
  let acc = 0;
  for (let i = coeffs.length - 1; i >= 0; i--) acc = gfMul(acc, x) ^ (coeffs[i] as number);
  return acc;
}

/** Lagrange interpolation at 0 of the points (xs[i], ys[i]); xs distinct and non-zero (checked by the caller). */
export function gfInterpolateAtZero(xs: readonly number[], ys: Uint8Array): number {
  let acc = 0;
  for (let i = 0; i < xs.length; i++) {
    const xi = xs[i] as number;
    let num = 1;
    let den = 1;
    for (let j = 0; j < xs.length; j++) {
      if (j === i) continue;
      const xj = xs[j] as number;
      num = gfMul(num, xj);
      den = gfMul(den, xj ^ xi);
    }
    acc ^= gfMul(ys[i] as number, gfMul(num, gfInv(den)));
  }
  return acc;
}
