//! HMAC-SHA-256 (OpenSSL one-shot `HMAC`) and HKDF-SHA-256 (RFC 5869) with L = 32.

use std::ffi::{c_int, c_uint};

use crate::error::{Error, Result};
use crate::keys::wipe;
use crate::ossl;

pub const MAC_LEN: usize = 32;

/// HMAC-SHA-256 of `data` under `key` (any length) into `out`.
pub fn hmac_sha256(key: &[u8], data: &[u8], out: &mut [u8; MAC_LEN]) -> Result<()> {
    let key_len = c_int::try_from(key.len()).map_err(|_| Error::arg("HMAC key is too long"))?;
    let mut len: c_uint = 0;
    // SAFETY: `key` and `data` are readable for their lengths; `out` has room
    // for the 32-byte SHA-256 output; EVP_sha256 returns a static digest.
    let ret = unsafe {
        ossl::HMAC(
            ossl::EVP_sha256(),
            key.as_ptr().cast(),
            key_len,
            data.as_ptr(),
            data.len(),
            out.as_mut_ptr(),
            &mut len,
        )
    };
    if ret.is_null() || len as usize != MAC_LEN {
        ossl::clear_errors();
        wipe(out);
        return Err(Error::crypto("HMAC"));
    }
    Ok(())
}

/// HKDF-SHA-256 (RFC 5869): PRK = HMAC(salt, ikm), OKM = T(1) = HMAC(PRK, info ‖ 0x01),
/// written to `out` (L = 32). An empty `salt` means 32 zero bytes. The PRK is wiped.
pub fn hkdf_sha256(ikm: &[u8], salt: &[u8], info: &[u8], out: &mut [u8; MAC_LEN]) -> Result<()> {
    let zeros = [0u8; MAC_LEN];
    let salt = if salt.is_empty() { &zeros[..] } else { salt };
    let mut prk = [0u8; MAC_LEN];
    let result = hmac_sha256(salt, ikm, &mut prk).and_then(|()| {
        // `info` is public; only the counter byte is appended.
        let mut block = Vec::with_capacity(info.len() + 1);
        block.extend_from_slice(info);
        block.push(1);
        hmac_sha256(&prk, &block, out)
    });
    wipe(&mut prk);
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::hex;

    fn hkdf(ikm: &[u8], salt: &[u8], info: &[u8]) -> Vec<u8> {
        let mut out = [0u8; 32];
        hkdf_sha256(ikm, salt, info, &mut out).unwrap();
        out.to_vec()
    }

    /// RFC 4231 test case 2 (key "Jefe").
    #[test]
    fn hmac_rfc4231_case_2() {
        let mut out = [0u8; 32];
        hmac_sha256(b"Jefe", b"what do ya want for nothing?", &mut out).unwrap();
        assert_eq!(
            out.to_vec(),
            hex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        );
    }

    /// RFC 4231 test case 1 (20 bytes of 0x0b, "Hi There").
    #[test]
    fn hmac_rfc4231_case_1() {
        let mut out = [0u8; 32];
        hmac_sha256(&[0x0b; 20], b"Hi There", &mut out).unwrap();
        assert_eq!(
            out.to_vec(),
            hex("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
        );
    }

    /// RFC 5869 test case 1, first 32 bytes of OKM.
    #[test]
    fn hkdf_rfc5869_case_1_prefix() {
        let okm = hkdf(
            &[0x0b; 22],
            &hex("000102030405060708090a0b0c"),
            &hex("f0f1f2f3f4f5f6f7f8f9"),
        );
        assert_eq!(
            okm,
            hex("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf")
        );
    }

    /// 32-byte IKM vectors computed with
    /// `openssl kdf -keylen 32 -kdfopt digest:SHA256 -kdfopt hexkey:0b×32 … HKDF`.
    #[test]
    fn hkdf_32_byte_ikm_against_openssl_cli() {
        let ikm = [0x0b; 32];
        assert_eq!(
            hkdf(
                &ikm,
                &hex("000102030405060708090a0b0c"),
                &hex("f0f1f2f3f4f5f6f7f8f9")
            ),
            hex("d4100799f26a09615a72af3e58fa3841a2ff20d5ace3fb392e562e207fe6b718")
        );
        // Empty salt and info (salt = 32 zero bytes per RFC 5869).
        let expected = hex("27488977d7c845fa17e618b4e225651a0a417521175396f455da2c465679eea8");
        assert_eq!(hkdf(&ikm, &[], &[]), expected);
        assert_eq!(hkdf(&ikm, &[0u8; 32], &[]), expected);
    }
}
