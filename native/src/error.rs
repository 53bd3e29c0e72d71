//! The error type shared by all modules: a stable code plus a human message.
//!
//! At the JS boundary an [`Error`] becomes `napi_throw_error(code, "[code] message")`.
//! Messages never contain key bytes.

/// Stable error codes (the part in brackets of a JS error message).
pub mod code {
    /// Wrong argument count or type, or mismatched batch lengths.
    pub const INVALID_ARGUMENT: &str = "invalid_argument";
    /// The value passed as a key is not a key handle of this module.
    pub const INVALID_KEY: &str = "invalid_key";
    /// The key handle was destroyed.
    pub const KEY_DESTROYED: &str = "key_destroyed";
    /// `insecureExportKey` outside a process started with KCM_INSECURE_KEY_EXPORT=tests.
    pub const INSECURE_EXPORT_DISABLED: &str = "insecure_export_disabled";
    /// Imported key material is not exactly 32 bytes.
    pub const INVALID_KEY_LENGTH: &str = "invalid_key_length";
    /// Shamir `m`/`n` outside `2 ≤ m ≤ n ≤ 255`.
    pub const INVALID_SHAMIR_PARAMETERS: &str = "invalid_shamir_parameters";
    /// A Shamir share is malformed (length, x = 0, not bytes).
    pub const INVALID_SHARE: &str = "invalid_share";
    /// Fewer than two shares given.
    pub const NOT_ENOUGH_SHARES: &str = "not_enough_shares";
    /// Two shares with the same x.
    pub const DUPLICATE_SHARE: &str = "duplicate_share";
    /// Key memory could not be mapped.
    pub const KEY_MEMORY: &str = "key_memory_unavailable";
    /// libcrypto reported a failure (not an authentication failure).
    pub const CRYPTO: &str = "crypto_failure";
    /// A Node-API call failed or an internal invariant did not hold.
    pub const INTERNAL: &str = "internal_error";
}

/// An error with a stable `code` (see [`code`]) and a message without secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub code: &'static str,
    pub message: String,
}

impl Error {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Error {
            code,
            message: message.into(),
        }
    }

    /// `[invalid_argument] message`.
    pub fn arg(message: impl Into<String>) -> Self {
        Error::new(code::INVALID_ARGUMENT, message)
    }

    /// A libcrypto call named `what` failed.
    pub fn crypto(what: &str) -> Self {
        Error::new(code::CRYPTO, format!("OpenSSL {what} failed"))
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Error::new(code::INTERNAL, message)
    }
}

pub type Result<T> = std::result::Result<T, Error>;
