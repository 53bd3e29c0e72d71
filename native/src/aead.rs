//! AES-256-GCM: seal/open, batches under one key schedule, key wrapping and
//! envelope (data-key) batches.
//!
//! Formats (SPEC.md §2): sealed blob = nonce (12 bytes, random) ‖ ciphertext
//! (len(plaintext)) ‖ tag (16 bytes); wrapped key = the sealed 32 key bytes
//! (60 bytes). Authentication failures are `Ok(false)`, never errors; `Err`
//! means libcrypto failed or a caller broke a length contract.

use std::cell::RefCell;
use std::ffi::{c_int, c_void};
use std::ptr::{self, NonNull};
use std::sync::OnceLock;

use crate::error::{Error, Result};
use crate::fork;
use crate::key_pool;
use crate::keys::{wipe, Slot, KEY_LEN};
use crate::ossl::{self, random_bytes};

pub const NONCE_LEN: usize = 12;
pub const TAG_LEN: usize = 16;
/// Bytes a sealed blob adds to its plaintext.
pub const OVERHEAD: usize = NONCE_LEN + TAG_LEN;
/// Length of a wrapped key.
pub const WRAPPED_LEN: usize = KEY_LEN + OVERHEAD;

/// Largest piece handed to one `EVP_*Update` call (its lengths are `int`).
const CHUNK: usize = 1 << 30;

type UpdateFn =
    unsafe extern "C" fn(*mut ossl::EVP_CIPHER_CTX, *mut u8, *mut c_int, *const u8, c_int) -> c_int;
type InitFn = unsafe extern "C" fn(
    *mut ossl::EVP_CIPHER_CTX,
    *const ossl::EVP_CIPHER,
    *mut ossl::ENGINE,
    *const u8,
    *const u8,
) -> c_int;
type FinalFn = unsafe extern "C" fn(*mut ossl::EVP_CIPHER_CTX, *mut u8, *mut c_int) -> c_int;

/// AES-256-GCM, fetched once explicitly (avoids OpenSSL 3's implicit fetch
/// on every init); falls back to the legacy `EVP_aes_256_gcm()` object.
fn cipher() -> *const ossl::EVP_CIPHER {
    static CIPHER: OnceLock<usize> = OnceLock::new();
    let addr = *CIPHER.get_or_init(|| {
        // SAFETY: NUL-terminated algorithm name; NULL library context and
        // properties select the defaults. The result is kept for the process.
        let fetched = unsafe {
            ossl::EVP_CIPHER_fetch(ptr::null_mut(), c"AES-256-GCM".as_ptr(), ptr::null())
        };
        if fetched.is_null() {
            ossl::clear_errors();
            // SAFETY: returns a pointer to a static cipher description.
            unsafe { ossl::EVP_aes_256_gcm() as usize }
        } else {
            fetched as usize
        }
    });
    addr as *const ossl::EVP_CIPHER
}

/// Nonces per block of the nonce pool: 341 × 12 = 4092 bytes, one
/// `RAND_bytes` call.
const POOL_NONCES: usize = 341;
const POOL_LEN: usize = POOL_NONCES * NONCE_LEN;

/// Random bytes for nonces, drawn from `RAND_bytes` in blocks of [`POOL_LEN`].
///
/// Why: `RAND_bytes` has a large fixed cost per call and a small cost per
/// byte. Measured on the build VM inside node 20 (OpenSSL 3.0): 2.0 µs for
/// 12 bytes, 2.7 µs for 4092 bytes (in-process loop), and a seal went from
/// 5.1 to 1.6 µs at 0 bytes when its nonce came from this pool — the nonce was
/// the largest fixed cost of a seal, more than AES-GCM of a 1 KB message.
/// From the pool a nonce costs ~0.01 µs.
///
/// Why it is still SP 800-38D §8.2.2 (RBG-based construction): every nonce is
/// 96 bits of output of the approved RBG (OpenSSL's DRBG), drawn for this
/// purpose and used for exactly one invocation of the authenticated
/// encryption function. Drawing the bits ahead of use changes when they are
/// generated, not their distribution or their independence. What must never
/// happen is handing out the same bytes twice, so:
/// - bytes are wiped and the cursor moves past them *before* the caller uses
///   them; a seal that later fails discards its nonce, it is never returned
///   to the pool;
/// - a failed refill leaves the pool empty (the error reaches the caller);
/// - the pool is per thread (`thread_local!`), so two threads never share a
///   block (the JS thread is the only caller today; workers get their own);
/// - after `fork()` the child's copy of the pool is discarded: a block drawn
///   under another [`fork::epoch`] is dropped unused. If forks cannot be
///   tracked, the pool is bypassed (one `RAND_bytes` per request).
///
/// Nonces are public (they head every sealed blob), and GCM needs them
/// unique, not secret, so the pool lives in ordinary memory (no `mlock`).
/// Secret randomness (keys, Shamir coefficients) never comes from here.
struct NoncePool {
    bytes: [u8; POOL_LEN],
    /// Index of the first unused byte; `POOL_LEN` = empty.
    next: usize,
    /// [`fork::epoch`] when `bytes` were drawn.
    epoch: u64,
}

thread_local! {
    static NONCE_POOL: RefCell<NoncePool> = const {
        RefCell::new(NoncePool { bytes: [0; POOL_LEN], next: POOL_LEN, epoch: 0 })
    };
}

impl NoncePool {
    /// Moves `out.len()` unused bytes into `out`, refilling as needed.
    fn take(&mut self, mut out: &mut [u8], epoch: u64) -> Result<()> {
        if self.epoch != epoch {
            self.discard();
        }
        while !out.is_empty() {
            if self.next >= POOL_LEN {
                self.next = POOL_LEN;
                random_bytes(&mut self.bytes)?;
                self.next = 0;
                self.epoch = epoch;
            }
            let n = (POOL_LEN - self.next).min(out.len());
            let (head, rest) = std::mem::take(&mut out).split_at_mut(n);
            let src = self
                .bytes
                .get_mut(self.next..self.next + n)
                .ok_or_else(|| Error::internal("nonce pool cursor"))?;
            head.copy_from_slice(src);
            wipe(src);
            self.next += n;
            out = rest;
        }
        Ok(())
    }

    fn discard(&mut self) {
        if let Some(unused) = self.bytes.get_mut(self.next..) {
            wipe(unused);
        }
        self.next = POOL_LEN;
    }
}

/// Fills `out` with fresh random bytes for nonces (see [`NoncePool`]).
/// Requests of a whole block or more go straight to `RAND_bytes`.
fn nonce_bytes(out: &mut [u8]) -> Result<()> {
    let epoch = match fork::epoch() {
        Some(epoch) if out.len() < POOL_LEN => epoch,
        _ => return random_bytes(out),
    };
    match NONCE_POOL.try_with(|pool| pool.try_borrow_mut().map(|mut p| p.take(out, epoch))) {
        Ok(Ok(result)) => result,
        // Thread teardown or re-entry (neither happens today): no pool.
        _ => random_bytes(out),
    }
}

fn check(ret: c_int, what: &str) -> Result<()> {
    if ret == 1 {
        Ok(())
    } else {
        ossl::clear_errors();
        Err(Error::crypto(what))
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Dir {
    Encrypt,
    Decrypt,
}

/// One `EVP_CIPHER_CTX` holding an AES-256-GCM key schedule for one direction.
///
/// The key is set once; each seal/open only resets the IV
/// (`EVP_*Init_ex(ctx, NULL, NULL, NULL, iv)`). Freeing the context makes
/// OpenSSL cleanse the key schedule.
pub struct Gcm {
    ctx: NonNull<ossl::EVP_CIPHER_CTX>,
    dir: Dir,
}

impl Gcm {
    /// A context that seals under `key`.
    pub fn encryptor(key: &[u8; KEY_LEN]) -> Result<Self> {
        Gcm::new(key, Dir::Encrypt)
    }

    /// A context that opens under `key`.
    pub fn decryptor(key: &[u8; KEY_LEN]) -> Result<Self> {
        Gcm::new(key, Dir::Decrypt)
    }

    fn new(key: &[u8; KEY_LEN], dir: Dir) -> Result<Self> {
        // SAFETY: no preconditions; NULL on allocation failure.
        let raw = unsafe { ossl::EVP_CIPHER_CTX_new() };
        let ctx = NonNull::new(raw).ok_or_else(|| Error::crypto("EVP_CIPHER_CTX_new"))?;
        // From here on, Drop frees the context on every path.
        let mut gcm = Gcm { ctx, dir };
        gcm.init(cipher(), key.as_ptr(), ptr::null())?;
        Ok(gcm)
    }

    /// Replaces the key schedule (same direction).
    pub fn set_key(&mut self, key: &[u8; KEY_LEN]) -> Result<()> {
        self.init(ptr::null(), key.as_ptr(), ptr::null())
    }

    fn init(
        &mut self,
        cipher: *const ossl::EVP_CIPHER,
        key: *const u8,
        iv: *const u8,
    ) -> Result<()> {
        let f: InitFn = match self.dir {
            Dir::Encrypt => ossl::EVP_EncryptInit_ex,
            Dir::Decrypt => ossl::EVP_DecryptInit_ex,
        };
        // SAFETY: `ctx` is a live context owned by `self`; `cipher` is NULL or
        // AES-256-GCM; `key` is NULL or 32 readable bytes (callers pass a
        // `&[u8; 32]`); `iv` is NULL or 12 readable bytes, the GCM default IV
        // length. OpenSSL copies key and IV.
        check(
            unsafe { f(self.ctx.as_ptr(), cipher, ptr::null_mut(), key, iv) },
            "EVP_CipherInit_ex",
        )
    }

    fn update_fn(&self) -> UpdateFn {
        match self.dir {
            Dir::Encrypt => ossl::EVP_EncryptUpdate,
            Dir::Decrypt => ossl::EVP_DecryptUpdate,
        }
    }

    fn aad(&mut self, aad: &[u8]) -> Result<()> {
        let f = self.update_fn();
        for chunk in aad.chunks(CHUNK) {
            let mut outl: c_int = 0;
            // SAFETY: with out = NULL the call only reads `chunk.len()` (<= 2^30)
            // bytes of AAD from `chunk`.
            let ret = unsafe {
                f(
                    self.ctx.as_ptr(),
                    ptr::null_mut(),
                    &mut outl,
                    chunk.as_ptr(),
                    chunk.len() as c_int,
                )
            };
            check(ret, "EVP_CipherUpdate(aad)")?;
        }
        Ok(())
    }

    fn crypt(&mut self, input: &[u8], out: &mut [u8]) -> Result<()> {
        if input.len() != out.len() {
            return Err(Error::internal("AES-GCM output length mismatch"));
        }
        let f = self.update_fn();
        for (i, o) in input.chunks(CHUNK).zip(out.chunks_mut(CHUNK)) {
            let mut outl: c_int = 0;
            // SAFETY: GCM is a stream mode, so OpenSSL writes exactly `i.len()`
            // bytes to `o`, which has the same length; `i` and `o` are distinct
            // borrows and do not overlap.
            let ret = unsafe {
                f(
                    self.ctx.as_ptr(),
                    o.as_mut_ptr(),
                    &mut outl,
                    i.as_ptr(),
                    i.len() as c_int,
                )
            };
            check(ret, "EVP_CipherUpdate")?;
            if usize::try_from(outl).ok() != Some(i.len()) {
                return Err(Error::internal("AES-GCM produced an unexpected length"));
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> c_int {
        let f: FinalFn = match self.dir {
            Dir::Encrypt => ossl::EVP_EncryptFinal_ex,
            Dir::Decrypt => ossl::EVP_DecryptFinal_ex,
        };
        let mut scratch = [0u8; TAG_LEN];
        let mut outl: c_int = 0;
        // SAFETY: GCM's final step writes no output bytes; `scratch` would
        // hold a block anyway.
        unsafe { f(self.ctx.as_ptr(), scratch.as_mut_ptr(), &mut outl) }
    }

    /// Seals `plaintext` with the given `nonce` into `out`
    /// (`out.len() == plaintext.len() + 28`). Crate-internal: callers other
    /// than tests must use [`Gcm::seal`], which draws a random nonce.
    pub(crate) fn seal_with_nonce(
        &mut self,
        nonce: &[u8; NONCE_LEN],
        plaintext: &[u8],
        aad: &[u8],
        out: &mut [u8],
    ) -> Result<()> {
        if self.dir != Dir::Encrypt || Some(out.len()) != plaintext.len().checked_add(OVERHEAD) {
            return Err(Error::internal("seal: bad context or output length"));
        }
        let (nonce_out, rest) = out.split_at_mut(NONCE_LEN);
        let (ct_out, tag_out) = rest.split_at_mut(plaintext.len());
        nonce_out.copy_from_slice(nonce);
        self.init(ptr::null(), ptr::null(), nonce.as_ptr())?;
        self.aad(aad)?;
        self.crypt(plaintext, ct_out)?;
        check(self.finish(), "EVP_EncryptFinal_ex")?;
        // SAFETY: GET_TAG writes exactly TAG_LEN (16) bytes to `tag_out`,
        // which is 16 bytes long.
        let ret = unsafe {
            ossl::EVP_CIPHER_CTX_ctrl(
                self.ctx.as_ptr(),
                ossl::EVP_CTRL_AEAD_GET_TAG,
                TAG_LEN as c_int,
                tag_out.as_mut_ptr().cast::<c_void>(),
            )
        };
        check(ret, "EVP_CIPHER_CTX_ctrl(GET_TAG)")
    }

    /// Seals with a fresh random nonce: `out` = nonce ‖ ct ‖ tag, of length
    /// `plaintext.len() + 28`.
    pub fn seal(&mut self, plaintext: &[u8], aad: &[u8], out: &mut [u8]) -> Result<()> {
        let mut nonce = [0u8; NONCE_LEN];
        nonce_bytes(&mut nonce)?;
        self.seal_with_nonce(&nonce, plaintext, aad, out)
    }

    /// Opens `sealed` into `out` (`out.len() == sealed.len() - 28`).
    /// `Ok(false)` when `sealed` is shorter than 28 bytes or fails
    /// authentication; `out` is then wiped.
    pub fn open(&mut self, sealed: &[u8], aad: &[u8], out: &mut [u8]) -> Result<bool> {
        if sealed.len() < OVERHEAD {
            return Ok(false);
        }
        if self.dir != Dir::Decrypt || out.len() != sealed.len() - OVERHEAD {
            return Err(Error::internal("open: bad context or output length"));
        }
        let (nonce, rest) = sealed.split_at(NONCE_LEN);
        let (ct, tag) = rest.split_at(rest.len() - TAG_LEN);
        let result = self.open_parts(nonce, ct, tag, aad, out);
        if !matches!(result, Ok(true)) {
            wipe(out);
        }
        result
    }

    fn open_parts(
        &mut self,
        nonce: &[u8],
        ct: &[u8],
        tag: &[u8],
        aad: &[u8],
        out: &mut [u8],
    ) -> Result<bool> {
        self.init(ptr::null(), ptr::null(), nonce.as_ptr())?;
        self.aad(aad)?;
        self.crypt(ct, out)?;
        // SAFETY: SET_TAG copies TAG_LEN (16) bytes from `tag` (16 bytes);
        // OpenSSL does not write through the pointer despite its type.
        let ret = unsafe {
            ossl::EVP_CIPHER_CTX_ctrl(
                self.ctx.as_ptr(),
                ossl::EVP_CTRL_AEAD_SET_TAG,
                TAG_LEN as c_int,
                tag.as_ptr().cast_mut().cast::<c_void>(),
            )
        };
        check(ret, "EVP_CIPHER_CTX_ctrl(SET_TAG)")?;
        if self.finish() == 1 {
            Ok(true)
        } else {
            ossl::clear_errors();
            Ok(false)
        }
    }
}

impl Drop for Gcm {
    fn drop(&mut self) {
        // SAFETY: `ctx` came from EVP_CIPHER_CTX_new and is freed exactly once;
        // freeing cleanses the key schedule.
        unsafe { ossl::EVP_CIPHER_CTX_free(self.ctx.as_ptr()) }
    }
}

/// Seals one item under `key` with a random nonce (see [`Gcm::seal`]).
pub fn seal(key: &[u8; KEY_LEN], plaintext: &[u8], aad: &[u8], out: &mut [u8]) -> Result<()> {
    Gcm::encryptor(key)?.seal(plaintext, aad, out)
}

/// Opens one item under `key` (see [`Gcm::open`]).
pub fn open(key: &[u8; KEY_LEN], sealed: &[u8], aad: &[u8], out: &mut [u8]) -> Result<bool> {
    if sealed.len() < OVERHEAD {
        return Ok(false);
    }
    Gcm::decryptor(key)?.open(sealed, aad, out)
}

fn same_lengths(a: usize, b: usize, c: usize) -> Result<()> {
    if a == b && b == c {
        Ok(())
    } else {
        Err(Error::internal("batch slices differ in length"))
    }
}

/// Seals item i = (`plaintexts[i]`, `aads[i]`) into `outs[i]`
/// (`plaintexts[i].len() + 28` bytes) with one context and one key schedule.
pub fn seal_batch(
    key: &[u8; KEY_LEN],
    plaintexts: &[&[u8]],
    aads: &[&[u8]],
    outs: &mut [&mut [u8]],
) -> Result<()> {
    same_lengths(plaintexts.len(), aads.len(), outs.len())?;
    if plaintexts.is_empty() {
        return Ok(());
    }
    let mut gcm = Gcm::encryptor(key)?;
    let mut nonces = vec![0u8; NONCE_LEN * plaintexts.len()];
    nonce_bytes(&mut nonces)?;
    for (((pt, aad), out), nonce) in plaintexts
        .iter()
        .zip(aads)
        .zip(outs.iter_mut())
        .zip(nonces.chunks_exact(NONCE_LEN))
    {
        let nonce: &[u8; NONCE_LEN] = nonce
            .try_into()
            .map_err(|_| Error::internal("nonce length"))?;
        gcm.seal_with_nonce(nonce, pt, aad, out)?;
    }
    Ok(())
}

/// Opens item i into `outs[i]` (`sealed[i].len() - 28` bytes, or empty when
/// shorter than 28) with one context; entry i of the result is false when
/// item i fails authentication.
pub fn open_batch(
    key: &[u8; KEY_LEN],
    sealed: &[&[u8]],
    aads: &[&[u8]],
    outs: &mut [&mut [u8]],
) -> Result<Vec<bool>> {
    same_lengths(sealed.len(), aads.len(), outs.len())?;
    if sealed.is_empty() {
        return Ok(Vec::new());
    }
    let mut gcm = Gcm::decryptor(key)?;
    sealed
        .iter()
        .zip(aads)
        .zip(outs.iter_mut())
        .map(|((s, a), o)| gcm.open(s, a, o))
        .collect()
}

/// Wraps `target` under `kek`: 60 bytes into `out`.
pub fn wrap(kek: &[u8; KEY_LEN], target: &[u8; KEY_LEN], aad: &[u8], out: &mut [u8]) -> Result<()> {
    seal(kek, target, aad, out)
}

/// Unwraps a 60-byte `wrapped` key straight into `out` (normally a [`Slot`]);
/// `Ok(false)` (and `out` wiped) on a wrong length or failed authentication.
pub fn unwrap(
    kek: &[u8; KEY_LEN],
    wrapped: &[u8],
    aad: &[u8],
    out: &mut [u8; KEY_LEN],
) -> Result<bool> {
    if wrapped.len() != WRAPPED_LEN {
        return Ok(false);
    }
    open(kek, wrapped, aad, out)
}

/// Envelope sealing: a fresh random data key (from [`key_pool`]) in a locked slot, wrapped under
/// `kek` with `wrap_aad` into `wrapped_out` (60 bytes), then every item sealed
/// under it with one context (as [`seal_batch`]). The data key is wiped.
pub fn data_key_seal_batch(
    kek: &[u8; KEY_LEN],
    wrap_aad: &[u8],
    plaintexts: &[&[u8]],
    aads: &[&[u8]],
    wrapped_out: &mut [u8],
    outs: &mut [&mut [u8]],
) -> Result<()> {
    let mut data_key = Slot::alloc()?;
    key_pool::fresh_data_key(data_key.bytes_mut())?;
    wrap(kek, data_key.bytes(), wrap_aad, wrapped_out)?;
    seal_batch(data_key.bytes(), plaintexts, aads, outs)
    // `data_key` drops here: wiped and freed.
}

/// One item of [`data_key_open_batch`].
#[derive(Clone, Copy)]
pub struct EnvelopeItem<'a> {
    pub wrapped_key: &'a [u8],
    pub wrap_aad: &'a [u8],
    pub sealed: &'a [u8],
    pub aad: &'a [u8],
}

/// Envelope opening: item i is opened into `outs[i]` with the data key
/// unwrapped (under `kek`) from its wrapped key; a data key is unwrapped only
/// when (wrapped key, wrap AAD) differs from the previous item's. Entry i is
/// false when its data key or its ciphertext fails authentication. Data keys
/// live in a locked slot and are wiped.
pub fn data_key_open_batch(
    kek: &[u8; KEY_LEN],
    items: &[EnvelopeItem<'_>],
    outs: &mut [&mut [u8]],
) -> Result<Vec<bool>> {
    same_lengths(items.len(), outs.len(), outs.len())?;
    if items.is_empty() {
        return Ok(Vec::new());
    }
    let mut kek_ctx = Gcm::decryptor(kek)?;
    let mut data_key = Slot::alloc()?;
    let mut data_ctx: Option<Gcm> = None;
    let mut previous: Option<(&[u8], &[u8])> = None;
    let mut key_ok = false;
    let mut results = Vec::with_capacity(items.len());
    for (item, out) in items.iter().zip(outs.iter_mut()) {
        let current = (item.wrapped_key, item.wrap_aad);
        if previous != Some(current) {
            previous = Some(current);
            key_ok = item.wrapped_key.len() == WRAPPED_LEN
                && kek_ctx.open(item.wrapped_key, item.wrap_aad, data_key.bytes_mut())?;
            if key_ok {
                match data_ctx.as_mut() {
                    Some(ctx) => ctx.set_key(data_key.bytes())?,
                    None => data_ctx = Some(Gcm::decryptor(data_key.bytes())?),
                }
            }
        }
        let opened = match (key_ok, data_ctx.as_mut()) {
            (true, Some(ctx)) => ctx.open(item.sealed, item.aad, out)?,
            _ => false,
        };
        results.push(opened);
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::hex;

    fn key(b: u8) -> [u8; 32] {
        [b; 32]
    }

    fn seal_vec(k: &[u8; 32], pt: &[u8], aad: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; pt.len() + OVERHEAD];
        seal(k, pt, aad, &mut out).unwrap();
        out
    }

    fn open_vec(k: &[u8; 32], sealed: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
        let mut out = vec![0u8; sealed.len().saturating_sub(OVERHEAD)];
        open(k, sealed, aad, &mut out).unwrap().then_some(out)
    }

    /// GCM spec (McGrew & Viega) test case 16: 256-bit key, 96-bit IV, AAD.
    #[test]
    fn gcm_spec_test_case_16() {
        let k: [u8; 32] = hex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308")
            .try_into()
            .unwrap();
        let iv: [u8; 12] = hex("cafebabefacedbaddecaf888").try_into().unwrap();
        let pt = hex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39");
        let aad = hex("feedfacedeadbeeffeedfacedeadbeefabaddad2");
        let ct = hex("522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662");
        let tag = hex("76fc6ece0f4e1768cddf8853bb2d551b");
        let mut out = vec![0u8; pt.len() + OVERHEAD];
        Gcm::encryptor(&k)
            .unwrap()
            .seal_with_nonce(&iv, &pt, &aad, &mut out)
            .unwrap();
        assert_eq!(&out[..12], &iv);
        assert_eq!(&out[12..12 + pt.len()], &ct[..]);
        assert_eq!(&out[12 + pt.len()..], &tag[..]);
        assert_eq!(open_vec(&k, &out, &aad).unwrap(), pt);
    }

    /// GCM spec test cases 13 (empty plaintext, no AAD) and 14.
    #[test]
    fn gcm_spec_test_cases_13_14() {
        let k = [0u8; 32];
        let iv = [0u8; 12];
        let mut out = vec![0u8; OVERHEAD];
        Gcm::encryptor(&k)
            .unwrap()
            .seal_with_nonce(&iv, &[], &[], &mut out)
            .unwrap();
        assert_eq!(&out[12..], &hex("530f8afbc74536b9a963b4f1c4cb738b")[..]);
        let mut out = vec![0u8; 16 + OVERHEAD];
        Gcm::encryptor(&k)
            .unwrap()
            .seal_with_nonce(&iv, &[0u8; 16], &[], &mut out)
            .unwrap();
        assert_eq!(&out[12..28], &hex("cea7403d4d606b6e074ec5d3baf39d18")[..]);
        assert_eq!(&out[28..], &hex("d0d1c8a799996bf0265b98b5d48ab919")[..]);
    }

    #[test]
    fn roundtrip_sizes_and_fresh_nonces() {
        let k = key(1);
        for len in [0usize, 1, 15, 16, 17, 64, 1000, 70_000] {
            let pt: Vec<u8> = (0..len).map(|i| i as u8).collect();
            for aad in [&b""[..], b"context"] {
                let s1 = seal_vec(&k, &pt, aad);
                let s2 = seal_vec(&k, &pt, aad);
                assert_ne!(s1[..12], s2[..12]);
                assert_eq!(open_vec(&k, &s1, aad).unwrap(), pt);
            }
        }
    }

    #[test]
    fn any_flipped_byte_fails() {
        let k = key(2);
        let sealed = seal_vec(&k, b"attack at dawn", b"aad");
        for i in 0..sealed.len() {
            for bit in [0x01u8, 0x80] {
                let mut bad = sealed.clone();
                bad[i] ^= bit;
                assert!(open_vec(&k, &bad, b"aad").is_none(), "byte {i}");
            }
        }
        assert!(open_vec(&k, &sealed, b"aaD").is_none());
        assert!(open_vec(&key(3), &sealed, b"aad").is_none());
        assert!(open_vec(&k, &sealed[..sealed.len() - 1], b"aad").is_none());
        assert!(open_vec(&k, &sealed[..27], b"aad").is_none());
        assert!(open_vec(&k, &[], b"aad").is_none());
    }

    #[test]
    fn batches() {
        let k = key(4);
        let pts: Vec<Vec<u8>> = (0..16).map(|i| vec![i as u8; i * 5]).collect();
        let aads: Vec<Vec<u8>> = (0..16).map(|i| vec![0xA0 ^ i as u8; i % 3]).collect();
        let pt_refs: Vec<&[u8]> = pts.iter().map(Vec::as_slice).collect();
        let aad_refs: Vec<&[u8]> = aads.iter().map(Vec::as_slice).collect();
        let mut sealed: Vec<Vec<u8>> = pts.iter().map(|p| vec![0u8; p.len() + OVERHEAD]).collect();
        let mut outs: Vec<&mut [u8]> = sealed.iter_mut().map(Vec::as_mut_slice).collect();
        seal_batch(&k, &pt_refs, &aad_refs, &mut outs).unwrap();
        // Each item also opens on its own.
        for (i, s) in sealed.iter().enumerate() {
            assert_eq!(open_vec(&k, s, &aads[i]).unwrap(), pts[i]);
        }
        sealed[5][20] ^= 1;
        sealed[9].truncate(10);
        let sealed_refs: Vec<&[u8]> = sealed.iter().map(Vec::as_slice).collect();
        let mut opened: Vec<Vec<u8>> = sealed
            .iter()
            .map(|s| vec![0u8; s.len().saturating_sub(OVERHEAD)])
            .collect();
        let mut outs: Vec<&mut [u8]> = opened.iter_mut().map(Vec::as_mut_slice).collect();
        let ok = open_batch(&k, &sealed_refs, &aad_refs, &mut outs).unwrap();
        for i in 0..16 {
            assert_eq!(ok[i], i != 5 && i != 9, "item {i}");
            if ok[i] {
                assert_eq!(opened[i], pts[i]);
            }
        }
        assert!(seal_batch(&k, &pt_refs[..2], &aad_refs[..1], &mut []).is_err());
    }

    #[test]
    fn wrap_unwrap() {
        let kek = key(5);
        let target = key(6);
        let mut wrapped = [0u8; WRAPPED_LEN];
        wrap(&kek, &target, b"label", &mut wrapped).unwrap();
        let mut out = [0u8; 32];
        assert!(unwrap(&kek, &wrapped, b"label", &mut out).unwrap());
        assert_eq!(out, target);
        assert!(!unwrap(&kek, &wrapped, b"other", &mut out).unwrap());
        assert_eq!(out, [0u8; 32]);
        assert!(!unwrap(&kek, &wrapped[..59], b"label", &mut out).unwrap());
    }

    #[test]
    fn envelope_batches() {
        let kek = key(7);
        let pts: Vec<Vec<u8>> = (0..5).map(|i| vec![i as u8; 10 + i]).collect();
        let pt_refs: Vec<&[u8]> = pts.iter().map(Vec::as_slice).collect();
        let aads: Vec<&[u8]> = vec![b"a", b"b", b"", b"d", b"e"];
        let mut wrapped = [0u8; WRAPPED_LEN];
        let mut sealed: Vec<Vec<u8>> = pts.iter().map(|p| vec![0u8; p.len() + OVERHEAD]).collect();
        let mut outs: Vec<&mut [u8]> = sealed.iter_mut().map(Vec::as_mut_slice).collect();
        data_key_seal_batch(&kek, b"wrap", &pt_refs, &aads, &mut wrapped, &mut outs).unwrap();

        // A second envelope, to interleave data keys.
        let mut wrapped2 = [0u8; WRAPPED_LEN];
        let mut sealed2 = [vec![0u8; 3 + OVERHEAD]];
        let mut outs2: Vec<&mut [u8]> = sealed2.iter_mut().map(Vec::as_mut_slice).collect();
        data_key_seal_batch(&kek, b"wrap2", &[b"xyz"], &[b""], &mut wrapped2, &mut outs2).unwrap();

        let mut bad_wrapped = wrapped;
        bad_wrapped[30] ^= 1;
        let items = vec![
            EnvelopeItem {
                wrapped_key: &wrapped,
                wrap_aad: b"wrap",
                sealed: &sealed[0],
                aad: b"a",
            },
            EnvelopeItem {
                wrapped_key: &wrapped,
                wrap_aad: b"wrap",
                sealed: &sealed[1],
                aad: b"b",
            },
            EnvelopeItem {
                wrapped_key: &wrapped2,
                wrap_aad: b"wrap2",
                sealed: &sealed2[0],
                aad: b"",
            },
            EnvelopeItem {
                wrapped_key: &wrapped,
                wrap_aad: b"wrap",
                sealed: &sealed[2],
                aad: b"",
            },
            EnvelopeItem {
                wrapped_key: &bad_wrapped,
                wrap_aad: b"wrap",
                sealed: &sealed[3],
                aad: b"d",
            },
            EnvelopeItem {
                wrapped_key: &wrapped,
                wrap_aad: b"nope",
                sealed: &sealed[4],
                aad: b"e",
            },
            EnvelopeItem {
                wrapped_key: &wrapped,
                wrap_aad: b"wrap",
                sealed: &sealed[4],
                aad: b"x",
            },
            EnvelopeItem {
                wrapped_key: &wrapped,
                wrap_aad: b"wrap",
                sealed: &sealed[4],
                aad: b"e",
            },
        ];
        let mut opened: Vec<Vec<u8>> = items
            .iter()
            .map(|it| vec![0u8; it.sealed.len() - OVERHEAD])
            .collect();
        let mut outs: Vec<&mut [u8]> = opened.iter_mut().map(Vec::as_mut_slice).collect();
        let ok = data_key_open_batch(&kek, &items, &mut outs).unwrap();
        drop(outs);
        assert_eq!(ok, vec![true, true, true, true, false, false, false, true]);
        assert_eq!(opened[0], pts[0]);
        assert_eq!(opened[2], b"xyz");
        assert_eq!(opened[3], pts[2]);
        assert_eq!(opened[7], pts[4]);
        let mut scratch = vec![0u8; items[0].sealed.len() - OVERHEAD];
        assert_eq!(
            data_key_open_batch(&key(8), &items[..1], &mut [scratch.as_mut_slice()]).unwrap(),
            vec![false]
        );
    }

    #[test]
    fn nonce_pool_hands_out_each_byte_once() {
        let _epochs = fork::TEST_EPOCH_LOCK
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        use std::collections::HashSet;
        // Several refills' worth, in odd-sized requests that straddle blocks.
        let mut seen = HashSet::new();
        let mut buf = [0u8; 5 * NONCE_LEN];
        for _ in 0..(3 * POOL_NONCES / 5 + 7) {
            nonce_bytes(&mut buf).unwrap();
            for n in buf.chunks_exact(NONCE_LEN) {
                assert!(seen.insert(n.to_vec()), "nonce handed out twice");
            }
        }
        // Whatever the pool has handed out is wiped there.
        NONCE_POOL.with(|p| {
            let p = p.borrow();
            assert!(p.next > 0 && p.next <= POOL_LEN);
            assert!(p.bytes[..p.next].iter().all(|&b| b == 0));
        });
        // Requests of a whole block or more bypass the pool.
        let mut big = vec![0u8; POOL_LEN];
        nonce_bytes(&mut big).unwrap();
        assert!(big.iter().any(|&b| b != 0));
    }

    #[test]
    fn nonce_pool_discards_its_block_after_fork() {
        let _epochs = fork::TEST_EPOCH_LOCK
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let mut n = [0u8; NONCE_LEN];
        nonce_bytes(&mut n).unwrap();
        let (next, upcoming) = NONCE_POOL.with(|p| {
            let p = p.borrow();
            (p.next, p.bytes[p.next..p.next + NONCE_LEN].to_vec())
        });
        assert!(next < POOL_LEN - NONCE_LEN);
        // What the child handler of pthread_atfork does in a forked child.
        fork::bump_fork_epoch();
        nonce_bytes(&mut n).unwrap();
        assert_ne!(n.to_vec(), upcoming, "pre-fork block reused");
        NONCE_POOL.with(|p| {
            let p = p.borrow();
            assert_eq!(p.next, NONCE_LEN, "a fresh block was drawn");
            assert_eq!(Some(p.epoch), fork::epoch());
        });
    }
}
