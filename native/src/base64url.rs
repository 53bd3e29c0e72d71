//! RFC 4648 §5 base64url without padding, as envelopes spell it (SPEC §5.1):
//! encoding, and strict canonical decoding (only the url alphabet, length
//! mod 4 ≠ 1, the unused low bits of the last character zero). The
//! test-only parser in `golden.rs` decodes on its own, and the tests below
//! hold the two to the same answers.

use crate::error::{Error, Result};

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Value of each byte in the alphabet, 0xff for every other byte.
const VALUES: [u8; 256] = {
    let mut t = [0xffu8; 256];
    let mut i = 0;
    while i < 64 {
        t[ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    t
};

/// Length of the text of `n` bytes.
pub fn encoded_len(n: usize) -> usize {
    n / 3 * 4 + [0, 2, 3][n % 3]
}

/// Writes the text of `src` into `dst`, which must be exactly
/// [`encoded_len`]`(src.len())` bytes.
pub fn encode_into(src: &[u8], dst: &mut [u8]) -> Result<()> {
    if dst.len() != encoded_len(src.len()) {
        return Err(Error::internal("base64url: output length"));
    }
    let sym = |v: u32| ALPHABET[(v & 63) as usize];
    let mut chunks = src.chunks_exact(3);
    let mut out = dst.chunks_mut(4);
    for (c, o) in (&mut chunks).zip(&mut out) {
        let v = u32::from(c[0]) << 16 | u32::from(c[1]) << 8 | u32::from(c[2]);
        o.copy_from_slice(&[sym(v >> 18), sym(v >> 12), sym(v >> 6), sym(v)]);
    }
    match (chunks.remainder(), out.next()) {
        ([], None) => {}
        ([a], Some(o)) => {
            let v = u32::from(*a) << 16;
            o.copy_from_slice(&[sym(v >> 18), sym(v >> 12)]);
        }
        ([a, b], Some(o)) => {
            let v = u32::from(*a) << 16 | u32::from(*b) << 8;
            o.copy_from_slice(&[sym(v >> 18), sym(v >> 12), sym(v >> 6)]);
        }
        _ => return Err(Error::internal("base64url: output length")),
    }
    Ok(())
}

/// Length of the bytes of a canonical text of `n` characters, or None when
/// no text has that length (n mod 4 = 1).
pub fn decoded_len(n: usize) -> Option<usize> {
    match n % 4 {
        1 => None,
        r => Some(n / 4 * 3 + [0, 0, 1, 2][r]),
    }
}

/// Decodes canonical `text` into `dst` ([`decoded_len`] bytes); false (with
/// `dst` partly written) when `text` is not canonical base64url.
pub fn decode_into(text: &[u8], dst: &mut [u8]) -> bool {
    if decoded_len(text.len()) != Some(dst.len()) {
        return false;
    }
    let mut bad = 0u8;
    let mut val = |c: u8| {
        let v = VALUES[c as usize];
        bad |= v;
        u32::from(v & 63)
    };
    let mut chunks = text.chunks_exact(4);
    let mut out = dst.chunks_mut(3);
    for (c, o) in (&mut chunks).zip(&mut out) {
        let v = val(c[0]) << 18 | val(c[1]) << 12 | val(c[2]) << 6 | val(c[3]);
        o.copy_from_slice(&[(v >> 16) as u8, (v >> 8) as u8, v as u8]);
    }
    let tail_ok = match (chunks.remainder(), out.next()) {
        ([], None) => true,
        ([a, b], Some(o)) => {
            let v = val(*a) << 18 | val(*b) << 12;
            o.copy_from_slice(&[(v >> 16) as u8]);
            v & 0xffff == 0
        }
        ([a, b, c], Some(o)) => {
            let v = val(*a) << 18 | val(*b) << 12 | val(*c) << 6;
            o.copy_from_slice(&[(v >> 16) as u8, (v >> 8) as u8]);
            v & 0xff == 0
        }
        _ => false,
    };
    // Any byte outside the alphabet set the 0x80 bit of `bad` (0xff).
    tail_ok && bad & 0x80 == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(text: &[u8]) -> Option<Vec<u8>> {
        let mut out = vec![0u8; decoded_len(text.len())?];
        decode_into(text, &mut out).then_some(out)
    }

    #[test]
    fn rfc4648_vectors_both_ways() {
        for (src, want) in [
            (&b""[..], ""),
            (b"f", "Zg"),
            (b"fo", "Zm8"),
            (b"foo", "Zm9v"),
            (b"foob", "Zm9vYg"),
            (b"fooba", "Zm9vYmE"),
            (b"foobar", "Zm9vYmFy"),
            (&[0xfb, 0xff, 0xbf], "-_-_"),
        ] {
            let mut dst = vec![0u8; encoded_len(src.len())];
            encode_into(src, &mut dst).unwrap();
            assert_eq!(std::str::from_utf8(&dst).unwrap(), want);
            assert_eq!(decode(want.as_bytes()).unwrap(), src);
        }
        assert!(encode_into(b"ab", &mut [0u8; 4]).is_err());
    }

    #[test]
    fn refuses_what_is_not_canonical() {
        for bad in [
            &b"Z"[..],   // length mod 4 = 1
            b"Zh",       // unused bits set (Zg is canonical)
            b"Zm9",      // unused bits set (Zm8)
            b"Zm9v=",    // padding
            b"Zm9vYg==", // padding
            b"Zm+v",     // base64, not base64url
            b"Zm/v",
            b"Zm9 v",
            b"Zm9\xc3\xa9",
        ] {
            assert_eq!(decode(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn agrees_with_the_golden_decoder_on_every_short_text() {
        // Every text of up to 3 characters over a mixed alphabet, and random longer ones.
        let chars = b"AZaz09-_gQ+/=. \x00\xff";
        let mut texts: Vec<Vec<u8>> = vec![Vec::new()];
        for len in 1..=3 {
            let mut idx = vec![0usize; len];
            loop {
                texts.push(idx.iter().map(|&i| chars[i]).collect());
                let mut k = 0;
                while k < len {
                    idx[k] += 1;
                    if idx[k] < chars.len() {
                        break;
                    }
                    idx[k] = 0;
                    k += 1;
                }
                if k == len {
                    break;
                }
            }
        }
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..2000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 40) as usize;
            texts.push(
                (0..len)
                    .map(|i| ALPHABET[((seed >> (i % 58)) % 64) as usize])
                    .collect(),
            );
        }
        for t in texts {
            let golden = std::str::from_utf8(&t)
                .ok()
                .and_then(crate::golden::decode_base64url_for_tests);
            assert_eq!(decode(&t), golden, "{:?}", String::from_utf8_lossy(&t));
        }
    }
}
