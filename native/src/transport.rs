//! Key transport into a PKCS#11 token (the gateway's `pkcs11` field backend,
//! gateway/src/hsm/): the data keys reach the token wrapped, never in clear,
//! and never as bytes in JS.
//!
//! - Once per process: a fresh transport key KT is generated here (in a
//!   locked slot) and encrypted with RSA-OAEP under a public key that the
//!   token generated ([`transport_key_generate`]); the token unwraps it with
//!   its private key, which never leaves it.
//! - Per request: a fresh data key L4 is wrapped twice — AES-256-GCM under the
//!   L3 key exactly as [`aead::data_key_seal_batch`] does (the envelope's
//!   wrapped key), and AES Key Wrap (RFC 3394) under KT for the token
//!   ([`data_key_for_transport`]) — then wiped.
//! - To decrypt: wrapped data keys are opened under L3 and re-wrapped under KT
//!   ([`rewrap_for_transport`]); the plain L4 only ever sits in a locked slot.
//!
//! Why AES-KW (RFC 3394, `CKM_AES_KEY_WRAP`) and not GCM for the per-request
//! wrap: it is the key-wrap mechanism PKCS#11 tokens implement for
//! `C_UnwrapKey` (SoftHSM2 has no GCM unwrap), it is deterministic (no nonce
//! budget on KT) and authenticates the key (the 64-bit integrity check
//! value). The `_PAD` variant (RFC 5649) is not used: SoftHSM's differs from
//! RFC 5649 for lengths that are not a multiple of 8, and 32-byte keys need no
//! padding.

use std::ffi::{c_int, c_long};
use std::ptr::{self, NonNull};

use crate::aead::{self, Gcm, WRAPPED_LEN};
use crate::error::{Error, Result};
use crate::keys::{wipe, Slot, KEY_LEN};
use crate::ossl::{self, random_bytes};

/// Length of a 32-byte key wrapped with AES-KW (RFC 3394 adds one 64-bit block).
pub const KW_LEN: usize = KEY_LEN + 8;
/// RSA transport keys accepted: at least 2048 bits (SP 800-131A), at most 8192.
pub const RSA_MIN_BITS: c_int = 2048;
pub const RSA_MAX_BITS: c_int = 8192;
/// Longest SubjectPublicKeyInfo accepted (an 8192-bit key is ~1,060 bytes).
const SPKI_MAX: usize = 4096;

fn check(ret: c_int, what: &str) -> Result<()> {
    if ret == 1 {
        Ok(())
    } else {
        ossl::clear_errors();
        Err(Error::crypto(what))
    }
}

/// An owned `EVP_CIPHER_CTX` (freed, and so cleansed, on drop).
struct CipherCtx(NonNull<ossl::EVP_CIPHER_CTX>);

impl CipherCtx {
    fn new() -> Result<Self> {
        // SAFETY: no preconditions; NULL on allocation failure.
        let raw = unsafe { ossl::EVP_CIPHER_CTX_new() };
        NonNull::new(raw)
            .map(CipherCtx)
            .ok_or_else(|| Error::crypto("EVP_CIPHER_CTX_new"))
    }
}

impl Drop for CipherCtx {
    fn drop(&mut self) {
        // SAFETY: the context came from EVP_CIPHER_CTX_new and is freed once.
        unsafe { ossl::EVP_CIPHER_CTX_free(self.0.as_ptr()) }
    }
}

/// AES-256 Key Wrap (RFC 3394 §2.2.1, default IV A6A6A6A6A6A6A6A6) of the
/// 32-byte `key` under `kek` into `out` (exactly [`KW_LEN`] = 40 bytes).
pub fn aes_kw_wrap(kek: &[u8; KEY_LEN], key: &[u8; KEY_LEN], out: &mut [u8]) -> Result<()> {
    if out.len() != KW_LEN {
        return Err(Error::internal("AES-KW output length"));
    }
    let ctx = CipherCtx::new()?;
    // SAFETY: `ctx` is a live context; setting a flag has no other effect.
    unsafe { ossl::EVP_CIPHER_CTX_set_flags(ctx.0.as_ptr(), ossl::EVP_CIPHER_CTX_FLAG_WRAP_ALLOW) };
    // SAFETY: live context; the cipher is the static AES-256-WRAP description;
    // `kek` is 32 readable bytes (the cipher's key length); a NULL IV selects
    // RFC 3394's default IV. OpenSSL copies the key.
    let ret = unsafe {
        ossl::EVP_EncryptInit_ex(
            ctx.0.as_ptr(),
            ossl::EVP_aes_256_wrap(),
            ptr::null_mut(),
            kek.as_ptr(),
            ptr::null(),
        )
    };
    check(ret, "EVP_EncryptInit_ex(AES-256-WRAP)")?;
    let mut outl: c_int = 0;
    // SAFETY: wrapping 32 bytes writes exactly 40 bytes to `out`, which is 40
    // bytes long (checked above); `key` is 32 readable bytes; no overlap.
    let ret = unsafe {
        ossl::EVP_EncryptUpdate(
            ctx.0.as_ptr(),
            out.as_mut_ptr(),
            &mut outl,
            key.as_ptr(),
            KEY_LEN as c_int,
        )
    };
    check(ret, "EVP_EncryptUpdate(AES-256-WRAP)")?;
    if usize::try_from(outl).ok() != Some(KW_LEN) {
        wipe(out);
        return Err(Error::internal("AES-KW produced an unexpected length"));
    }
    let mut scratch = [0u8; 16];
    let mut tail: c_int = 0;
    // SAFETY: the wrap mode's final step writes nothing; `scratch` would hold
    // a block anyway.
    let ret = unsafe { ossl::EVP_EncryptFinal_ex(ctx.0.as_ptr(), scratch.as_mut_ptr(), &mut tail) };
    check(ret, "EVP_EncryptFinal_ex(AES-256-WRAP)")
}

/// An owned `EVP_PKEY`.
struct Pkey(NonNull<ossl::EVP_PKEY>);

impl Drop for Pkey {
    fn drop(&mut self) {
        // SAFETY: the key came from d2i_PUBKEY and is freed once.
        unsafe { ossl::EVP_PKEY_free(self.0.as_ptr()) }
    }
}

/// An owned `EVP_PKEY_CTX`.
struct PkeyCtx(NonNull<ossl::EVP_PKEY_CTX>);

impl Drop for PkeyCtx {
    fn drop(&mut self) {
        // SAFETY: the context came from EVP_PKEY_CTX_new and is freed once.
        unsafe { ossl::EVP_PKEY_CTX_free(self.0.as_ptr()) }
    }
}

fn bad_public_key() -> Error {
    Error::arg(format!(
        "publicKey must be the DER SubjectPublicKeyInfo of an RSA key of {RSA_MIN_BITS} to {RSA_MAX_BITS} bits"
    ))
}

/// Parses a DER SubjectPublicKeyInfo that must be exactly one RSA key
/// (rsaEncryption, not RSA-PSS) of [`RSA_MIN_BITS`]..=[`RSA_MAX_BITS`] bits,
/// with no trailing bytes. `[invalid_argument]` otherwise.
fn rsa_public_key(spki: &[u8]) -> Result<Pkey> {
    if spki.is_empty() || spki.len() > SPKI_MAX {
        return Err(bad_public_key());
    }
    let len = c_long::try_from(spki.len()).map_err(|_| bad_public_key())?;
    let mut cursor = spki.as_ptr();
    // SAFETY: `cursor` points at `len` readable bytes; d2i_PUBKEY reads at
    // most that many and advances `cursor` past what it parsed; a NULL first
    // argument makes it allocate a new key (or return NULL).
    let raw = unsafe { ossl::d2i_PUBKEY(ptr::null_mut(), &mut cursor, len) };
    let Some(key) = NonNull::new(raw).map(Pkey) else {
        ossl::clear_errors();
        return Err(bad_public_key());
    };
    let consumed = (cursor as usize).wrapping_sub(spki.as_ptr() as usize);
    // SAFETY: `key` is a live EVP_PKEY.
    let (id, bits) = unsafe {
        (
            ossl::EVP_PKEY_get_base_id(key.0.as_ptr()),
            ossl::EVP_PKEY_get_bits(key.0.as_ptr()),
        )
    };
    if consumed != spki.len()
        || id != ossl::EVP_PKEY_RSA
        || !(RSA_MIN_BITS..=RSA_MAX_BITS).contains(&bits)
    {
        return Err(bad_public_key());
    }
    Ok(key)
}

/// RSA-OAEP encryption of `secret` under the RSA key in `spki` (see
/// [`rsa_public_key`]); the result has the modulus length.
///
/// OAEP with SHA-1 and MGF1-SHA-1 (RFC 8017 §7.1, the PKCS#11 default
/// `CKM_RSA_PKCS_OAEP` parameters): SoftHSM2 (2.6) accepts no other hash for
/// `C_UnwrapKey` (CKR_ARGUMENTS_BAD for SHA-256), and many HSMs share that
/// limit. SHA-1's collision weakness does not touch OAEP, whose security
/// rests on the hash as a random oracle / mask generator, not on collision
/// resistance (SP 800-56B Rev. 2 still lists SHA-1 for RSA-OAEP key
/// transport); the key is used once, for one fresh 32-byte secret.
pub fn rsa_oaep_sha1_encrypt(spki: &[u8], secret: &[u8]) -> Result<Vec<u8>> {
    let key = rsa_public_key(spki)?;
    // SAFETY: `key` is a live EVP_PKEY; the context takes its own reference.
    let raw = unsafe { ossl::EVP_PKEY_CTX_new(key.0.as_ptr(), ptr::null_mut()) };
    let ctx = NonNull::new(raw)
        .map(PkeyCtx)
        .ok_or_else(|| Error::crypto("EVP_PKEY_CTX_new"))?;
    let c = ctx.0.as_ptr();
    // SAFETY: `c` is a live EVP_PKEY_CTX of an RSA key.
    let init = unsafe { ossl::EVP_PKEY_encrypt_init(c) };
    check(init, "EVP_PKEY_encrypt_init")?;
    // SAFETY: as above, after encrypt_init (required before the RSA controls).
    let pad = unsafe { ossl::EVP_PKEY_CTX_set_rsa_padding(c, ossl::RSA_PKCS1_OAEP_PADDING) };
    check(pad, "EVP_PKEY_CTX_set_rsa_padding")?;
    // SAFETY: as above; EVP_sha1 returns a static digest description.
    let md = unsafe { ossl::EVP_PKEY_CTX_set_rsa_oaep_md(c, ossl::EVP_sha1()) };
    check(md, "EVP_PKEY_CTX_set_rsa_oaep_md")?;
    // SAFETY: as above.
    let mgf = unsafe { ossl::EVP_PKEY_CTX_set_rsa_mgf1_md(c, ossl::EVP_sha1()) };
    check(mgf, "EVP_PKEY_CTX_set_rsa_mgf1_md")?;
    let mut len = 0usize;
    // SAFETY: with a NULL output, EVP_PKEY_encrypt only stores the output size
    // in `len`; `secret` is `secret.len()` readable bytes.
    let ret = unsafe {
        ossl::EVP_PKEY_encrypt(c, ptr::null_mut(), &mut len, secret.as_ptr(), secret.len())
    };
    check(ret, "EVP_PKEY_encrypt(size)")?;
    let mut out = vec![0u8; len];
    // SAFETY: `out` has `len` writable bytes, the size OpenSSL asked for;
    // `len` is updated to the bytes written (at most that).
    let ret = unsafe {
        ossl::EVP_PKEY_encrypt(c, out.as_mut_ptr(), &mut len, secret.as_ptr(), secret.len())
    };
    check(ret, "EVP_PKEY_encrypt")?;
    out.truncate(len);
    Ok(out)
}

/// A fresh transport key into `slot` and its RSA-OAEP-SHA-1 encryption under
/// `spki` (see [`rsa_oaep_sha1_encrypt`]). The public key is checked before
/// any key is made; on an error the slot is wiped.
pub fn transport_key_generate(spki: &[u8], slot: &mut Slot) -> Result<Vec<u8>> {
    rsa_public_key(spki)?;
    random_bytes(slot.bytes_mut())?;
    let out = rsa_oaep_sha1_encrypt(spki, slot.bytes());
    if out.is_err() {
        wipe(slot.bytes_mut());
    }
    out
}

/// A fresh data key, wrapped with AES-256-GCM under `kek` with `wrap_aad`
/// into `wrapped_out` (60 bytes: the envelope's wrapped key, byte for byte
/// what [`aead::data_key_seal_batch`] makes) and with AES-KW under
/// `transport` into `kw_out` (40 bytes). The data key lives in a locked slot
/// and is wiped before returning.
pub fn data_key_for_transport(
    kek: &[u8; KEY_LEN],
    transport: &[u8; KEY_LEN],
    wrap_aad: &[u8],
    wrapped_out: &mut [u8],
    kw_out: &mut [u8],
) -> Result<()> {
    let mut data_key = Slot::alloc()?;
    random_bytes(data_key.bytes_mut())?;
    aead::wrap(kek, data_key.bytes(), wrap_aad, wrapped_out)?;
    aes_kw_wrap(transport, data_key.bytes(), kw_out)
    // `data_key` drops here: wiped and freed.
}

/// Item i: the data key in `items[i].0` (60 bytes, AES-256-GCM under `kek`,
/// AAD `items[i].1`) re-wrapped with AES-KW under `transport` into `outs[i]`
/// (40 bytes). Entry i of the result is false (and `outs[i]` untouched) when
/// the wrapped key has the wrong length or fails authentication. The data
/// keys pass through one locked slot, wiped after each item.
pub fn rewrap_for_transport(
    kek: &[u8; KEY_LEN],
    transport: &[u8; KEY_LEN],
    items: &[(&[u8], &[u8])],
    outs: &mut [&mut [u8]],
) -> Result<Vec<bool>> {
    if items.len() != outs.len() {
        return Err(Error::internal("rewrap: slices differ in length"));
    }
    let mut results = Vec::with_capacity(items.len());
    if items.is_empty() {
        return Ok(results);
    }
    let mut gcm = Gcm::decryptor(kek)?;
    let mut data_key = Slot::alloc()?;
    for (&(wrapped, aad), out) in items.iter().zip(outs.iter_mut()) {
        let opened =
            wrapped.len() == WRAPPED_LEN && gcm.open(wrapped, aad, data_key.bytes_mut())?;
        if opened {
            let wrapped_ok = aes_kw_wrap(transport, data_key.bytes(), out);
            wipe(data_key.bytes_mut());
            wrapped_ok?;
        }
        results.push(opened);
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::hex;
    use std::ffi::c_char;

    extern "C" {
        fn EVP_PKEY_Q_keygen(
            ctx: *mut ossl::OSSL_LIB_CTX,
            propq: *const c_char,
            type_: *const c_char,
            ...
        ) -> *mut ossl::EVP_PKEY;
        fn i2d_PUBKEY(a: *const ossl::EVP_PKEY, pp: *mut *mut u8) -> c_int;
        fn EVP_PKEY_decrypt_init(ctx: *mut ossl::EVP_PKEY_CTX) -> c_int;
        fn EVP_PKEY_decrypt(
            ctx: *mut ossl::EVP_PKEY_CTX,
            out: *mut u8,
            outlen: *mut usize,
            input: *const u8,
            inlen: usize,
        ) -> c_int;
        fn EVP_DecryptInit_ex(
            ctx: *mut ossl::EVP_CIPHER_CTX,
            cipher: *const ossl::EVP_CIPHER,
            engine: *mut ossl::ENGINE,
            key: *const u8,
            iv: *const u8,
        ) -> c_int;
        fn EVP_DecryptUpdate(
            ctx: *mut ossl::EVP_CIPHER_CTX,
            out: *mut u8,
            outl: *mut c_int,
            input: *const u8,
            inl: c_int,
        ) -> c_int;
    }

    /// AES-KW unwrap (tests only: production never unwraps under KT here).
    fn kw_unwrap(kek: &[u8; 32], wrapped: &[u8]) -> Option<[u8; 32]> {
        let ctx = CipherCtx::new().unwrap();
        let mut out = [0u8; 40];
        let mut outl: c_int = 0;
        // SAFETY: test FFI on a live context with 32-byte key, 40-byte input
        // and a 40-byte output (unwrap writes 32).
        let ok = unsafe {
            ossl::EVP_CIPHER_CTX_set_flags(ctx.0.as_ptr(), ossl::EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
            EVP_DecryptInit_ex(
                ctx.0.as_ptr(),
                ossl::EVP_aes_256_wrap(),
                ptr::null_mut(),
                kek.as_ptr(),
                ptr::null(),
            ) == 1
                && EVP_DecryptUpdate(
                    ctx.0.as_ptr(),
                    out.as_mut_ptr(),
                    &mut outl,
                    wrapped.as_ptr(),
                    wrapped.len() as c_int,
                ) == 1
        };
        ossl::clear_errors();
        (ok && outl == 32).then(|| out[..32].try_into().unwrap())
    }

    /// A fresh RSA key pair of `bits` and its public key as SPKI DER.
    fn rsa_pair(bits: usize) -> (Pkey, Vec<u8>) {
        // SAFETY: test FFI: EVP_PKEY_Q_keygen("RSA", size_t bits) makes a key pair.
        let raw = unsafe { EVP_PKEY_Q_keygen(ptr::null_mut(), ptr::null(), c"RSA".as_ptr(), bits) };
        let key = Pkey(NonNull::new(raw).unwrap());
        // SAFETY: i2d_PUBKEY with NULL returns the DER length; then writes it
        // into `der` (advancing a copy of the pointer).
        let der = unsafe {
            let len = i2d_PUBKEY(key.0.as_ptr(), ptr::null_mut());
            let mut der = vec![0u8; len as usize];
            let mut p = der.as_mut_ptr();
            assert_eq!(i2d_PUBKEY(key.0.as_ptr(), &mut p), len);
            der
        };
        (key, der)
    }

    fn oaep_sha1_decrypt(key: &Pkey, blob: &[u8]) -> Vec<u8> {
        // SAFETY: test FFI on a live private key; the output buffer has the
        // size OpenSSL reports.
        unsafe {
            let ctx = PkeyCtx(
                NonNull::new(ossl::EVP_PKEY_CTX_new(key.0.as_ptr(), ptr::null_mut())).unwrap(),
            );
            let c = ctx.0.as_ptr();
            assert_eq!(EVP_PKEY_decrypt_init(c), 1);
            assert_eq!(
                ossl::EVP_PKEY_CTX_set_rsa_padding(c, ossl::RSA_PKCS1_OAEP_PADDING),
                1
            );
            assert_eq!(ossl::EVP_PKEY_CTX_set_rsa_oaep_md(c, ossl::EVP_sha1()), 1);
            assert_eq!(ossl::EVP_PKEY_CTX_set_rsa_mgf1_md(c, ossl::EVP_sha1()), 1);
            let mut len = 0usize;
            assert_eq!(
                EVP_PKEY_decrypt(c, ptr::null_mut(), &mut len, blob.as_ptr(), blob.len()),
                1
            );
            let mut out = vec![0u8; len];
            assert_eq!(
                EVP_PKEY_decrypt(c, out.as_mut_ptr(), &mut len, blob.as_ptr(), blob.len()),
                1
            );
            out.truncate(len);
            out
        }
    }

    /// RFC 3394 §4.6: wrap 256 bits of key data with a 256-bit KEK.
    #[test]
    fn rfc3394_4_6_vector() {
        let kek: [u8; 32] = hex("000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F")
            .try_into()
            .unwrap();
        let key: [u8; 32] = hex("00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F")
            .try_into()
            .unwrap();
        let mut out = [0u8; KW_LEN];
        aes_kw_wrap(&kek, &key, &mut out).unwrap();
        assert_eq!(
            out.to_vec(),
            hex("28C9F404C4B810F4CBCCB35CFB87F8263F5786E2D80ED326CBC7F0E71A99F43BFB988B9B7A02DD21")
        );
        assert_eq!(kw_unwrap(&kek, &out), Some(key));
        let mut bad = out;
        bad[5] ^= 1;
        assert_eq!(kw_unwrap(&kek, &bad), None);
        assert!(aes_kw_wrap(&kek, &key, &mut [0u8; 39]).is_err());
    }

    #[test]
    fn data_key_wrapped_for_both_keys() {
        let (kek, kt) = ([1u8; 32], [2u8; 32]);
        let mut wrapped = [0u8; WRAPPED_LEN];
        let mut kw = [0u8; KW_LEN];
        data_key_for_transport(&kek, &kt, b"aad", &mut wrapped, &mut kw).unwrap();
        let mut l4 = [0u8; 32];
        assert!(aead::unwrap(&kek, &wrapped, b"aad", &mut l4).unwrap());
        assert_eq!(kw_unwrap(&kt, &kw), Some(l4));
        // A second call makes another data key.
        let mut kw2 = [0u8; KW_LEN];
        data_key_for_transport(&kek, &kt, b"aad", &mut wrapped, &mut kw2).unwrap();
        assert_ne!(kw, kw2);
    }

    #[test]
    fn rewrap_per_item_results() {
        let (kek, kt) = ([3u8; 32], [4u8; 32]);
        let mut wrapped = [0u8; WRAPPED_LEN];
        let mut kw = [0u8; KW_LEN];
        data_key_for_transport(&kek, &kt, b"w", &mut wrapped, &mut kw).unwrap();
        let mut tampered = wrapped;
        tampered[20] ^= 1;
        let items: Vec<(&[u8], &[u8])> = vec![
            (&wrapped, b"w"),
            (&wrapped, b"other aad"),
            (&tampered, b"w"),
            (&wrapped[..59], b"w"),
        ];
        let mut bufs = vec![[0u8; KW_LEN]; items.len()];
        let mut outs: Vec<&mut [u8]> = bufs.iter_mut().map(|b| b.as_mut_slice()).collect();
        let ok = rewrap_for_transport(&kek, &kt, &items, &mut outs).unwrap();
        assert_eq!(ok, vec![true, false, false, false]);
        // AES-KW is deterministic: the same data key re-wraps to the same 40 bytes.
        assert_eq!(bufs[0], kw);
        assert_eq!(bufs[1], [0u8; KW_LEN]);
        assert!(rewrap_for_transport(&kek, &kt, &items, &mut []).is_err());
    }

    #[test]
    fn rsa_oaep_sha1_round_trip_and_key_checks() {
        let (private, spki) = rsa_pair(2048);
        let mut slot = Slot::alloc().unwrap();
        let blob = transport_key_generate(&spki, &mut slot).unwrap();
        assert_eq!(blob.len(), 256);
        assert_ne!(slot.bytes(), &[0u8; 32]);
        assert_eq!(oaep_sha1_decrypt(&private, &blob), slot.bytes().to_vec());
        // OAEP is randomised.
        assert_ne!(
            rsa_oaep_sha1_encrypt(&spki, b"x").unwrap(),
            rsa_oaep_sha1_encrypt(&spki, b"x").unwrap()
        );

        let (_, small) = rsa_pair(1024);
        let mut with_trailer = spki.clone();
        with_trailer.push(0);
        for bad in [
            &small[..],
            &with_trailer[..],
            &spki[..spki.len() - 1],
            &[][..],
            &[0x30, 0x00][..],
        ] {
            let mut s = Slot::alloc().unwrap();
            let err = transport_key_generate(bad, &mut s).unwrap_err();
            assert_eq!(err.code, crate::error::code::INVALID_ARGUMENT);
            assert_eq!(s.bytes(), &[0u8; 32], "no key made for a bad public key");
        }
    }
}
