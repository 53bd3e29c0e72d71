//! OpenKCM native crypto backend: a zero-dependency Node-API module.
//!
//! The JS surface (see `native/ts/backend.ts`) is defined in [`exports`]; the
//! Node-API glue ([`napi`], [`exports`]) is left out of `cargo test` builds,
//! and out of builds without the default `node` feature (bench/native-floor
//! uses the crate as a library), so those need no Node-API symbols.
//! Everything else is plain Rust over libcrypto ([`ossl`]) and libc ([`sys`]).

#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

#[cfg(not(any(target_os = "linux")))]
compile_error!("openkcm-native targets Linux (mmap/mlock/madvise constants are Linux values)");

pub mod aead;
pub mod base64url;
pub mod error;
pub mod front;
mod fork;
pub mod gf256;
pub mod http1_answer;
pub mod http1_request;
#[cfg(test)]
mod golden;
pub mod json_targets;
pub mod kdf;
pub mod key_pool;
pub mod keys;
pub mod open_splice;
pub mod ossl;
pub mod seal_splice;
pub mod shamir;
pub mod splice;
pub mod sys;
pub mod transport;

/// Helpers shared by the unit tests.
#[cfg(test)]
mod test_util {
    /// Bytes of a hex string (test vectors; panics on bad hex, which is a broken test).
    pub fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }
}

#[cfg(all(not(test), feature = "node"))]
mod exports;
#[cfg(all(not(test), feature = "node"))]
mod exports_front;
#[cfg(all(not(test), feature = "node"))]
mod napi;
