//! libcrypto (OpenSSL 3) declarations.
//!
//! Inside `node` these symbols bind to Node's bundled OpenSSL; in `cargo test`
//! binaries to the system `libcrypto.so.3` (see `build.rs`).

#![allow(non_camel_case_types)]

use std::ffi::{c_char, c_int, c_long, c_uint, c_void};
use std::marker::{PhantomData, PhantomPinned};

use crate::error::{Error, Result};

macro_rules! opaque {
    ($($name:ident),*) => {$(
        #[repr(C)]
        pub struct $name {
            _private: [u8; 0],
            _marker: PhantomData<(*mut u8, PhantomPinned)>,
        }
    )*};
}
opaque!(
    EVP_CIPHER_CTX,
    EVP_CIPHER,
    EVP_MD,
    ENGINE,
    OSSL_LIB_CTX,
    EVP_PKEY,
    EVP_PKEY_CTX
);

pub const EVP_CTRL_AEAD_GET_TAG: c_int = 0x10;
pub const EVP_CTRL_AEAD_SET_TAG: c_int = 0x11;
/// Lets a cipher context use a key-wrap mode (`EVP_aes_256_wrap`).
pub const EVP_CIPHER_CTX_FLAG_WRAP_ALLOW: c_int = 0x1;
/// `RSA_PKCS1_OAEP_PADDING` (rsa.h).
pub const RSA_PKCS1_OAEP_PADDING: c_int = 4;
/// `EVP_PKEY_RSA` = `NID_rsaEncryption` (plain RSA, not RSA-PSS).
pub const EVP_PKEY_RSA: c_int = 6;

extern "C" {
    pub fn EVP_CIPHER_fetch(
        ctx: *mut OSSL_LIB_CTX,
        algorithm: *const c_char,
        properties: *const c_char,
    ) -> *mut EVP_CIPHER;
    pub fn EVP_aes_256_gcm() -> *const EVP_CIPHER;
    pub fn EVP_CIPHER_CTX_new() -> *mut EVP_CIPHER_CTX;
    pub fn EVP_CIPHER_CTX_free(ctx: *mut EVP_CIPHER_CTX);
    pub fn EVP_CIPHER_CTX_ctrl(
        ctx: *mut EVP_CIPHER_CTX,
        type_: c_int,
        arg: c_int,
        ptr: *mut c_void,
    ) -> c_int;
    pub fn EVP_EncryptInit_ex(
        ctx: *mut EVP_CIPHER_CTX,
        cipher: *const EVP_CIPHER,
        engine: *mut ENGINE,
        key: *const u8,
        iv: *const u8,
    ) -> c_int;
    pub fn EVP_EncryptUpdate(
        ctx: *mut EVP_CIPHER_CTX,
        out: *mut u8,
        outl: *mut c_int,
        input: *const u8,
        inl: c_int,
    ) -> c_int;
    pub fn EVP_EncryptFinal_ex(ctx: *mut EVP_CIPHER_CTX, out: *mut u8, outl: *mut c_int) -> c_int;
    pub fn EVP_DecryptInit_ex(
        ctx: *mut EVP_CIPHER_CTX,
        cipher: *const EVP_CIPHER,
        engine: *mut ENGINE,
        key: *const u8,
        iv: *const u8,
    ) -> c_int;
    pub fn EVP_DecryptUpdate(
        ctx: *mut EVP_CIPHER_CTX,
        out: *mut u8,
        outl: *mut c_int,
        input: *const u8,
        inl: c_int,
    ) -> c_int;
    pub fn EVP_DecryptFinal_ex(ctx: *mut EVP_CIPHER_CTX, out: *mut u8, outl: *mut c_int) -> c_int;

    pub fn EVP_sha256() -> *const EVP_MD;
    pub fn HMAC(
        md: *const EVP_MD,
        key: *const c_void,
        key_len: c_int,
        data: *const u8,
        data_len: usize,
        md_out: *mut u8,
        md_len: *mut c_uint,
    ) -> *mut u8;

    pub fn EVP_aes_256_wrap() -> *const EVP_CIPHER;
    pub fn EVP_CIPHER_CTX_set_flags(ctx: *mut EVP_CIPHER_CTX, flags: c_int);

    pub fn EVP_sha1() -> *const EVP_MD;
    pub fn d2i_PUBKEY(a: *mut *mut EVP_PKEY, pp: *mut *const u8, length: c_long) -> *mut EVP_PKEY;
    pub fn EVP_PKEY_free(pkey: *mut EVP_PKEY);
    pub fn EVP_PKEY_get_base_id(pkey: *const EVP_PKEY) -> c_int;
    pub fn EVP_PKEY_get_bits(pkey: *const EVP_PKEY) -> c_int;
    pub fn EVP_PKEY_CTX_new(pkey: *mut EVP_PKEY, engine: *mut ENGINE) -> *mut EVP_PKEY_CTX;
    pub fn EVP_PKEY_CTX_free(ctx: *mut EVP_PKEY_CTX);
    pub fn EVP_PKEY_encrypt_init(ctx: *mut EVP_PKEY_CTX) -> c_int;
    pub fn EVP_PKEY_CTX_set_rsa_padding(ctx: *mut EVP_PKEY_CTX, pad_mode: c_int) -> c_int;
    pub fn EVP_PKEY_CTX_set_rsa_oaep_md(ctx: *mut EVP_PKEY_CTX, md: *const EVP_MD) -> c_int;
    pub fn EVP_PKEY_CTX_set_rsa_mgf1_md(ctx: *mut EVP_PKEY_CTX, md: *const EVP_MD) -> c_int;
    pub fn EVP_PKEY_encrypt(
        ctx: *mut EVP_PKEY_CTX,
        out: *mut u8,
        outlen: *mut usize,
        input: *const u8,
        inlen: usize,
    ) -> c_int;

    pub fn RAND_bytes(buf: *mut u8, num: c_int) -> c_int;
    pub fn RAND_priv_bytes(buf: *mut u8, num: c_int) -> c_int;
    pub fn ERR_clear_error();
}

/// Drops whatever a failed libcrypto call left on this thread's error queue,
/// so it cannot confuse later callers (e.g. `node:crypto`).
pub fn clear_errors() {
    // SAFETY: no preconditions; only touches the calling thread's error queue.
    unsafe { ERR_clear_error() }
}

/// Fills `buf` from OpenSSL's CSPRNG (`RAND_bytes`).
pub fn random_bytes(buf: &mut [u8]) -> Result<()> {
    fill(buf, RAND_bytes, "RAND_bytes")
}

/// Fills `buf` from OpenSSL's private DRBG (`RAND_priv_bytes`), the one
/// OpenSSL reserves for secret values such as keys.
pub fn private_random_bytes(buf: &mut [u8]) -> Result<()> {
    fill(buf, RAND_priv_bytes, "RAND_priv_bytes")
}

fn fill(
    buf: &mut [u8],
    draw: unsafe extern "C" fn(*mut u8, c_int) -> c_int,
    what: &str,
) -> Result<()> {
    for chunk in buf.chunks_mut(1 << 30) {
        // chunk.len() <= 2^30 always fits in c_int.
        let len =
            c_int::try_from(chunk.len()).map_err(|_| Error::internal("random chunk too large"))?;
        // SAFETY: `chunk` is a valid writable region of exactly `len` bytes.
        if unsafe { draw(chunk.as_mut_ptr(), len) } != 1 {
            clear_errors();
            return Err(Error::crypto(what));
        }
    }
    Ok(())
}
