//! Shamir secret sharing of a 32-byte key over GF(2^8) (see [`crate::gf256`]).
//!
//! Share format: x (1 byte, 1..=255) ‖ y (32 bytes), y[j] = P_j(x) where P_j
//! is a random polynomial of degree m−1 whose constant term is secret byte j.

use crate::error::{code, Error, Result};
use crate::gf256::{inv, mul};
use crate::keys::{wipe, KEY_LEN};

/// Length of one share: x ‖ y.
pub const SHARE_LEN: usize = 1 + KEY_LEN;

/// Validates JS numbers `m`, `n`: integers with 2 ≤ m ≤ n ≤ 255.
pub fn check_params(m: f64, n: f64) -> Result<(u8, u8)> {
    let ok = m.fract() == 0.0
        && n.fract() == 0.0
        && (2.0..=255.0).contains(&m)
        && (2.0..=255.0).contains(&n)
        && m <= n;
    if ok {
        Ok((m as u8, n as u8))
    } else {
        Err(Error::new(
            code::INVALID_SHAMIR_PARAMETERS,
            format!("need integers 2 <= m <= n <= 255, got m={m}, n={n}"),
        ))
    }
}

/// Splits `secret` into `shares.len()` (= n) shares, any `m` of which rebuild
/// it; share i (0-based) gets x = i + 1. Each `shares[i]` must be 33 bytes.
/// `rand` fills a buffer with uniformly random bytes. Coefficients are wiped;
/// on error the shares are wiped too.
pub fn split(
    secret: &[u8; KEY_LEN],
    m: u8,
    shares: &mut [&mut [u8]],
    rand: &mut dyn FnMut(&mut [u8]) -> Result<()>,
) -> Result<()> {
    let n = shares.len();
    if m < 2 || n < m as usize || n > 255 || shares.iter().any(|s| s.len() != SHARE_LEN) {
        return Err(Error::internal("shamir split: bad parameters"));
    }
    // coeffs[k] is the coefficient of x^(k+1); there are m−1 of them.
    let mut coeffs = [0u8; 254];
    let result = split_inner(secret, m as usize - 1, shares, &mut coeffs, rand);
    wipe(&mut coeffs);
    if result.is_err() {
        for s in shares.iter_mut() {
            wipe(s);
        }
    }
    result
}

fn split_inner(
    secret: &[u8; KEY_LEN],
    degree: usize,
    shares: &mut [&mut [u8]],
    coeffs: &mut [u8; 254],
    rand: &mut dyn FnMut(&mut [u8]) -> Result<()>,
) -> Result<()> {
    let coeffs = coeffs
        .get_mut(..degree)
        .ok_or_else(|| Error::internal("shamir degree"))?;
    for (i, share) in shares.iter_mut().enumerate() {
        if let Some(x) = share.first_mut() {
            *x = (i + 1) as u8;
        }
    }
    for (j, &s) in secret.iter().enumerate() {
        rand(coeffs)?;
        for share in shares.iter_mut() {
            let x = share.first().copied().unwrap_or(0);
            // Horner: ((c[d-1]·x + c[d-2])·x + … + c[0])·x + s.
            let mut y = 0u8;
            for &c in coeffs.iter().rev() {
                y = mul(y, x) ^ c;
            }
            y = mul(y, x) ^ s;
            if let Some(slot) = share.get_mut(1 + j) {
                *slot = y;
            }
        }
    }
    Ok(())
}

/// Rebuilds the secret from ≥ 2 shares of 33 bytes with distinct non-zero x
/// by Lagrange interpolation at 0, writing it to `out`. Using more shares than
/// the threshold is fine; using fewer yields an unrelated value.
pub fn combine(shares: &[&[u8]], out: &mut [u8; KEY_LEN]) -> Result<()> {
    if shares.len() < 2 {
        return Err(Error::new(
            code::NOT_ENOUGH_SHARES,
            format!("need at least 2 shares, got {}", shares.len()),
        ));
    }
    let mut seen = [false; 256];
    let mut xs = Vec::with_capacity(shares.len());
    for (i, share) in shares.iter().enumerate() {
        if share.len() != SHARE_LEN {
            return Err(Error::new(
                code::INVALID_SHARE,
                format!("share {i} must be {SHARE_LEN} bytes, got {}", share.len()),
            ));
        }
        let x = share.first().copied().unwrap_or(0);
        if x == 0 {
            return Err(Error::new(
                code::INVALID_SHARE,
                format!("share {i} has x = 0"),
            ));
        }
        if seen[x as usize] {
            return Err(Error::new(
                code::DUPLICATE_SHARE,
                format!("share {i} repeats x = {x}"),
            ));
        }
        seen[x as usize] = true;
        xs.push(x);
    }
    // Lagrange basis at 0: l_i = Π_{j≠i} x_j / (x_i + x_j) (char 2: − is +).
    let basis: Vec<u8> = xs
        .iter()
        .enumerate()
        .map(|(i, &xi)| {
            let (mut num, mut den) = (1u8, 1u8);
            for (j, &xj) in xs.iter().enumerate() {
                if i != j {
                    num = mul(num, xj);
                    den = mul(den, xi ^ xj);
                }
            }
            mul(num, inv(den))
        })
        .collect();
    for (b, byte) in out.iter_mut().enumerate() {
        let mut acc = 0u8;
        for (share, &l) in shares.iter().zip(&basis) {
            acc ^= mul(share.get(1 + b).copied().unwrap_or(0), l);
        }
        *byte = acc;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ossl::random_bytes;

    fn split_vec(secret: &[u8; 32], m: u8, n: usize) -> Vec<Vec<u8>> {
        let mut shares = vec![vec![0u8; SHARE_LEN]; n];
        let mut refs: Vec<&mut [u8]> = shares.iter_mut().map(Vec::as_mut_slice).collect();
        split(secret, m, &mut refs, &mut random_bytes).unwrap();
        shares
    }

    fn combine_vec(shares: &[&Vec<u8>]) -> Result<[u8; 32]> {
        let refs: Vec<&[u8]> = shares.iter().map(|s| s.as_slice()).collect();
        let mut out = [0u8; 32];
        combine(&refs, &mut out).map(|()| out)
    }

    fn subsets(n: usize, k: usize) -> Vec<Vec<usize>> {
        (0u32..1 << n)
            .filter(|b| b.count_ones() as usize == k)
            .map(|b| (0..n).filter(|i| b >> i & 1 == 1).collect())
            .collect()
    }

    fn check_threshold(m: u8, n: usize) {
        let mut secret = [0u8; 32];
        random_bytes(&mut secret).unwrap();
        let shares = split_vec(&secret, m, n);
        for (i, s) in shares.iter().enumerate() {
            assert_eq!(s[0] as usize, i + 1);
        }
        let all = subsets(n, m as usize);
        assert!(!all.is_empty());
        for subset in &all {
            let picked: Vec<&Vec<u8>> = subset.iter().map(|&i| &shares[i]).collect();
            assert_eq!(combine_vec(&picked).unwrap(), secret, "subset {subset:?}");
        }
        // More than m shares also work.
        let every: Vec<&Vec<u8>> = shares.iter().collect();
        assert_eq!(combine_vec(&every).unwrap(), secret);
        // m−1 shares give something else (fails with probability 2^-256).
        for subset in subsets(n, m as usize - 1).iter().filter(|s| s.len() >= 2) {
            let picked: Vec<&Vec<u8>> = subset.iter().map(|&i| &shares[i]).collect();
            assert_ne!(combine_vec(&picked).unwrap(), secret);
        }
    }

    #[test]
    fn three_of_five_every_subset() {
        check_threshold(3, 5);
    }

    #[test]
    fn five_of_nine_every_subset() {
        check_threshold(5, 9);
    }

    #[test]
    fn two_of_two_and_max() {
        check_threshold(2, 2);
        let secret = [0x5a; 32];
        let shares = split_vec(&secret, 255, 255);
        let every: Vec<&Vec<u8>> = shares.iter().collect();
        assert_eq!(combine_vec(&every).unwrap(), secret);
        assert_ne!(combine_vec(&every[..254]).unwrap(), secret);
    }

    #[test]
    fn parameter_table() {
        let bad: &[(f64, f64)] = &[
            (0.0, 0.0),
            (1.0, 1.0),
            (1.0, 5.0),
            (2.0, 1.0),
            (6.0, 5.0),
            (2.0, 256.0),
            (256.0, 256.0),
            (-2.0, 3.0),
            (2.5, 3.0),
            (2.0, 3.5),
            (f64::NAN, 3.0),
            (2.0, f64::INFINITY),
        ];
        for &(m, n) in bad {
            let e = check_params(m, n).unwrap_err();
            assert_eq!(e.code, code::INVALID_SHAMIR_PARAMETERS, "({m}, {n})");
            assert!(e.message.contains(&format!("m={m}")) && e.message.contains(&format!("n={n}")));
        }
        for &(m, n) in &[(2.0, 2.0), (2.0, 255.0), (255.0, 255.0), (3.0, 5.0)] {
            assert_eq!(check_params(m, n).unwrap(), (m as u8, n as u8));
        }
    }

    #[test]
    fn combine_rejects_bad_shares() {
        let shares = split_vec(&[1; 32], 2, 3);
        assert_eq!(
            combine_vec(&[&shares[0]]).unwrap_err().code,
            code::NOT_ENOUGH_SHARES
        );
        assert_eq!(combine_vec(&[]).unwrap_err().code, code::NOT_ENOUGH_SHARES);
        assert_eq!(
            combine_vec(&[&shares[0], &shares[0]]).unwrap_err().code,
            code::DUPLICATE_SHARE
        );
        let short = shares[1][..32].to_vec();
        assert_eq!(
            combine_vec(&[&shares[0], &short]).unwrap_err().code,
            code::INVALID_SHARE
        );
        let mut zero_x = shares[1].clone();
        zero_x[0] = 0;
        assert_eq!(
            combine_vec(&[&shares[0], &zero_x]).unwrap_err().code,
            code::INVALID_SHARE
        );
    }
}
