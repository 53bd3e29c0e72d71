//! Constant-time arithmetic in GF(2^8) with the AES polynomial
//! x^8 + x^4 + x^3 + x + 1 (0x11B).
//!
//! No table lookups and no branches depend on operand values: multiplication
//! is shift-and-conditional-xor driven by all-ones/all-zeros masks, and the
//! inverse is a^254 by square-and-multiply over a public exponent.

/// Addition (and subtraction) is xor.
#[inline]
pub fn add(a: u8, b: u8) -> u8 {
    a ^ b
}

/// `0xFF` if the low bit of `bit` is set, else `0x00`.
#[inline(always)]
fn mask(bit: u8) -> u8 {
    0u8.wrapping_sub(bit & 1)
}

/// Product of `a` and `b` modulo 0x11B, in constant time.
#[inline]
pub fn mul(a: u8, b: u8) -> u8 {
    let mut a = a;
    let mut b = b;
    let mut p = 0u8;
    for _ in 0..8 {
        p ^= a & mask(b);
        let carry = mask(a >> 7);
        a = (a << 1) ^ (0x1B & carry);
        b >>= 1;
    }
    p
}

/// Multiplicative inverse as a^254 (so `inv(0) == 0`), in constant time.
pub fn inv(a: u8) -> u8 {
    let mut result = 1u8;
    let mut base = a;
    let mut e: u8 = 254;
    for _ in 0..8 {
        let m = mask(e);
        let product = mul(result, base);
        result = (product & m) | (result & !m);
        base = mul(base, base);
        e >>= 1;
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Textbook reference: carry-less product, then long division by 0x11B.
    fn slow_mul(a: u8, b: u8) -> u8 {
        let mut prod: u16 = 0;
        for i in 0..8 {
            if (b >> i) & 1 == 1 {
                prod ^= (a as u16) << i;
            }
        }
        for i in (8..16).rev() {
            if (prod >> i) & 1 == 1 {
                prod ^= 0x11B << (i - 8);
            }
        }
        prod as u8
    }

    #[test]
    fn known_answers() {
        assert_eq!(mul(0x53, 0xCA), 0x01);
        assert_eq!(mul(0x57, 0x83), 0xC1);
        assert_eq!(mul(0x57, 0x13), 0xFE);
        assert_eq!(mul(0x02, 0x80), 0x1B);
        assert_eq!(inv(0x53), 0xCA);
        assert_eq!(inv(0x00), 0x00);
        assert_eq!(inv(0x01), 0x01);
        assert_eq!(add(0x57, 0x83), 0xD4);
    }

    #[test]
    fn inverse_of_every_non_zero_element() {
        for a in 1..=255u8 {
            let i = inv(a);
            assert_eq!(mul(a, i), 1, "a = {a:#04x}");
            assert_eq!(inv(i), a);
        }
    }

    #[test]
    fn mul_matches_reference_for_all_pairs() {
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                assert_eq!(mul(a, b), slow_mul(a, b), "{a:#04x} * {b:#04x}");
            }
        }
    }
}
