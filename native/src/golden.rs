//! Golden vectors of the field ciphertext envelope (SPEC.md §5, §8), read by a
//! second implementation written from SPEC.md alone, independent of the
//! TypeScript codec in `common/src/format/`.
//!
//! Test-only: a strict base64url decoder (§5.1), the envelope parser in the
//! §5.4 order, the associated data of §3/§4/§5.3, a reader of the `.vec` text
//! format (§8), and the test that runs every record through [`aead::open`].

use std::collections::BTreeMap;

use crate::aead;

/// §5.1: longest envelope string, checked before decoding.
const MAX_ENVELOPE_CHARS: usize = 1_398_374;
/// §5.2: alg + T + 1 + K + 1 + version + wrapped key + nonce + tag.
const MIN_BODY: usize = 97;
const TENANT_MAX: usize = 40;
const KEY_ID_MAX: usize = 64;
const WRAPPED_LEN: usize = 60;
/// Nonce (12) and tag (16) of a sealed blob (§1).
const OVERHEAD: usize = 28;
const MAX_PLAINTEXT: usize = 1 << 20;
const MAX_CONTEXT: usize = 4096;

/// The `format_*` codes of SPEC.md §5.4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FormatError {
    Prefix,
    Version,
    Encoding,
    Header,
    Length,
}

/// RFC 4648 §5: the base64url alphabet, by value.
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Strict canonical unpadded base64url (§5.1): only the url alphabet (no `=`,
/// no white space), length mod 4 ≠ 1, and the unused low bits of the last
/// character zero. Any violation is `format_encoding`.
fn decode_base64url(text: &str) -> Result<Vec<u8>, FormatError> {
    let chars = text.as_bytes();
    if chars.len() % 4 == 1 {
        return Err(FormatError::Encoding);
    }
    let mut out = Vec::with_capacity(chars.len() / 4 * 3 + 2);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &c in chars {
        let value = ALPHABET
            .iter()
            .position(|&a| a == c)
            .ok_or(FormatError::Encoding)?;
        acc = (acc << 6) | value as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    // `acc` now holds the 0, 2 or 4 unused bits of the last character.
    if acc != 0 {
        return Err(FormatError::Encoding);
    }
    Ok(out)
}

/// [`decode_base64url`] for the production decoder's tests (base64url.rs).
pub(crate) fn decode_base64url_for_tests(text: &str) -> Option<Vec<u8>> {
    decode_base64url(text).ok()
}

/// §2: 1..=`max` characters of `A-Z a-z 0-9 - . _ ~`.
fn is_id(s: &[u8], max: usize) -> bool {
    let allowed = |c: &u8| c.is_ascii_alphanumeric() || b"-._~".contains(c);
    (1..=max).contains(&s.len()) && s.iter().all(allowed)
}

/// A key reference (§3): kind (1 master, 2 IVK, 3 tenant, 4 service, 5 data),
/// tenant id, key id, version.
#[derive(Debug, Clone, Copy)]
struct KeyRef<'a>(u8, &'a [u8], &'a [u8], u32);

const KIND_SERVICE: u8 = 4;
const KIND_DATA: u8 = 5;

impl KeyRef<'_> {
    /// `kind ‖ T ‖ tenant ‖ K ‖ key id ‖ u32 version`, after checking the §3
    /// rules for its kind (`format_header` otherwise).
    fn encode(&self) -> Result<Vec<u8>, FormatError> {
        let KeyRef(kind, tenant, key_id, version) = *self;
        let tenant_ok = match kind {
            1 | 2 => tenant.is_empty(),
            3..=5 => is_id(tenant, TENANT_MAX),
            _ => false,
        };
        let rest_ok = if kind == KIND_DATA {
            key_id.is_empty() && version == 0
        } else {
            is_id(key_id, KEY_ID_MAX) && version >= 1
        };
        if !(tenant_ok && rest_ok) {
            return Err(FormatError::Header);
        }
        let (t, k) = ([tenant.len() as u8], [key_id.len() as u8]);
        Ok([&[kind], &t, tenant, &k, key_id, &version.to_be_bytes()].concat())
    }
}

/// §4: `"okcm/wrap/v1" ‖ 00 ‖ 01 ‖ KeyRef(wrapping) ‖ KeyRef(wrapped)`.
fn wrap_aad(wrapping: &KeyRef<'_>, wrapped: &KeyRef<'_>) -> Result<Vec<u8>, FormatError> {
    let (wrapping, wrapped) = (wrapping.encode()?, wrapped.encode()?);
    Ok([b"okcm/wrap/v1\x00\x01".as_slice(), &wrapping, &wrapped].concat())
}

/// §5.3: the AAD of the L4 data key wrapped under the L3 key it names.
fn data_key_aad(tenant: &[u8], key_id: &[u8], version: u32) -> Result<Vec<u8>, FormatError> {
    let l3 = KeyRef(KIND_SERVICE, tenant, key_id, version);
    wrap_aad(&l3, &KeyRef(KIND_DATA, tenant, b"", 0))
}

/// §5.3: `"okcm/field/v1" ‖ 00 ‖ header ‖ uint32(len(context)) ‖ context`;
/// `None` for a context over 4,096 bytes.
fn field_aad(header: &[u8], context: &[u8]) -> Option<Vec<u8>> {
    if context.len() > MAX_CONTEXT {
        return None;
    }
    let len = (context.len() as u32).to_be_bytes();
    Some([b"okcm/field/v1\x00".as_slice(), header, &len, context].concat())
}

/// The parts of a decoded envelope body (§5.2), borrowed from it.
struct Envelope<'a> {
    /// alg ‖ T ‖ tenant ‖ K ‖ key id ‖ key version: bytes `[0, 7+T+K)`.
    header: &'a [u8],
    tenant: &'a [u8],
    key_id: &'a [u8],
    key_version: u32,
    wrapped_key: &'a [u8],
    /// `nonce ‖ ciphertext ‖ tag` of the field.
    sealed: &'a [u8],
}

/// Steps 1–5 of §5.4: from the envelope string to its body bytes.
fn decode_envelope(text: &str) -> Result<Vec<u8>, FormatError> {
    // 1. Length cap, in characters (the byte length bounds it from above).
    if text.len() > MAX_ENVELOPE_CHARS && text.chars().count() > MAX_ENVELOPE_CHARS {
        return Err(FormatError::Encoding);
    }
    // 2. Prefix.
    let rest = text.strip_prefix("okcm:").ok_or(FormatError::Prefix)?;
    // 3. Version, then ':'. Malformed (not 1–3 digits, leading zero) and
    //    well-formed but unsupported are both `format_version`: only "1" passes.
    let (digits, b64) = rest.split_once(':').ok_or(FormatError::Version)?;
    if digits != "1" {
        return Err(FormatError::Version);
    }
    // 4. Canonical base64url; 5. minimum body.
    let body = decode_base64url(b64)?;
    if body.len() < MIN_BODY {
        return Err(FormatError::Length);
    }
    Ok(body)
}

/// Reads `n` bytes at `*pos` (`format_header` past the end) and advances.
fn take<'a>(body: &'a [u8], pos: &mut usize, n: usize) -> Result<&'a [u8], FormatError> {
    let part = body.get(*pos..*pos + n).ok_or(FormatError::Header)?;
    *pos += n;
    Ok(part)
}

/// Reads a length byte and an id of 1–`max` characters (§2) → `format_header`.
fn take_id<'a>(body: &'a [u8], pos: &mut usize, max: usize) -> Result<&'a [u8], FormatError> {
    let len = usize::from(take(body, pos, 1)?[0]);
    let id = take(body, pos, len)?;
    is_id(id, max).then_some(id).ok_or(FormatError::Header)
}

/// Steps 6–7 of §5.4: the header fields, each checked as read, then the
/// wrapped key and `nonce ‖ ciphertext (≤ 1 MiB, §5.2) ‖ tag`.
fn parse_body(body: &[u8]) -> Result<Envelope<'_>, FormatError> {
    let mut pos = 0;
    if take(body, &mut pos, 1)? != [1] {
        return Err(FormatError::Header);
    }
    let tenant = take_id(body, &mut pos, TENANT_MAX)?;
    let key_id = take_id(body, &mut pos, KEY_ID_MAX)?;
    let v = take(body, &mut pos, 4)?;
    let key_version = u32::from_be_bytes([v[0], v[1], v[2], v[3]]);
    if key_version == 0 {
        return Err(FormatError::Header);
    }
    let header = &body[..pos];
    let wrapped_key = take(body, &mut pos, WRAPPED_LEN)?;
    let sealed = &body[pos..];
    if !(OVERHEAD..=OVERHEAD + MAX_PLAINTEXT).contains(&sealed.len()) {
        return Err(FormatError::Length);
    }
    Ok(Envelope {
        header,
        tenant,
        key_id,
        key_version,
        wrapped_key,
        sealed,
    })
}

/// Why a field did not decrypt (§5.4; never `unknown_key`: the vectors'
/// resolver has a key for every version).
enum Failure {
    Format(FormatError),
    WrongTenant,
    AuthFailed,
    /// Not a decryption outcome: a caller error or a libcrypto failure.
    Other(String),
}

/// Decrypts `text` for a caller of `tenant` whose L3 key (any version) is `l3`.
fn decrypt(text: &str, tenant: &[u8], l3: &[u8; 32], context: &[u8]) -> Result<Vec<u8>, Failure> {
    let body = decode_envelope(text).map_err(Failure::Format)?;
    let env = parse_body(&body).map_err(Failure::Format)?;
    // 8. Tenant, before any key is touched.
    if env.tenant != tenant {
        return Err(Failure::WrongTenant);
    }
    // 10. Unwrap L4 with dataKeyAad, open the field with fieldAad.
    let key_aad = data_key_aad(env.tenant, env.key_id, env.key_version).map_err(Failure::Format)?;
    let aad = field_aad(env.header, context).ok_or(Failure::Other("context > 4096 B".into()))?;
    let crypto = |e: crate::error::Error| Failure::Other(format!("{}: {}", e.code, e.message));
    let mut data_key = [0u8; 32];
    if !aead::open(l3, env.wrapped_key, &key_aad, &mut data_key).map_err(crypto)? {
        return Err(Failure::AuthFailed);
    }
    let mut plaintext = vec![0u8; env.sealed.len() - OVERHEAD];
    let opened = aead::open(&data_key, env.sealed, &aad, &mut plaintext);
    crate::keys::wipe(&mut data_key);
    opened
        .map_err(crypto)?
        .then_some(plaintext)
        .ok_or(Failure::AuthFailed)
}

/// The outcome names of SPEC.md §8.
#[rustfmt::skip]
const OUTCOMES: [&str; 6] =
    ["success", "auth_failure", "header_failure", "wrong_tenant", "wrong_context", "unsupported_version"];

/// Maps a failure to a vector outcome as `golden-vectors.test.ts` does: an
/// authentication failure is `wrong_context` when the record expects it.
fn outcome_of(failure: &Failure, expects_wrong_context: bool) -> String {
    match failure {
        Failure::Format(FormatError::Version) => "unsupported_version".into(),
        Failure::Format(_) => "header_failure".into(),
        Failure::WrongTenant => "wrong_tenant".into(),
        Failure::AuthFailed if expects_wrong_context => "wrong_context".into(),
        Failure::AuthFailed => "auth_failure".into(),
        Failure::Other(message) => format!("error ({message})"),
    }
}

/// One record of the `.vec` file: field name → value.
type Record = BTreeMap<String, String>;
/// The fields every record has; successes also have `plaintext`.
#[rustfmt::skip]
const REQUIRED: [&str; 6] = ["name", "l3_key", "tenant", "context", "ciphertext", "expect"];

/// Reads records of `key: value` lines separated by blank lines (§8); `#`
/// lines are comments and `key:` alone is an empty value. Unknown, repeated
/// or missing fields are errors.
fn parse_vectors(text: &str) -> Result<Vec<Record>, String> {
    let mut records = Vec::new();
    let mut rec = Record::new();
    for (line_no, line) in (1..).zip(text.lines().chain([""])) {
        if line.starts_with('#') {
            continue;
        }
        if line.trim().is_empty() {
            if !rec.is_empty() {
                if let Some(f) = REQUIRED.iter().find(|f| !rec.contains_key(**f)) {
                    return Err(format!("record before line {line_no}: no {f}"));
                }
                records.push(std::mem::take(&mut rec));
            }
            continue;
        }
        let (key, value) = line.split_once(": ").unwrap_or((line, ""));
        let key = key.strip_suffix(':').unwrap_or(key);
        if !REQUIRED.contains(&key) && key != "plaintext" {
            return Err(format!("line {line_no}: unknown field {key}"));
        }
        if rec.insert(key.to_owned(), value.to_owned()).is_some() {
            return Err(format!("line {line_no}: repeated {key}"));
        }
    }
    Ok(records)
}

/// Hex (either case) to bytes.
fn hex(s: &str) -> Result<Vec<u8>, String> {
    if s.len() % 2 != 0 || !s.bytes().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!("bad hex {s:?}"));
    }
    let digit = |i: usize| u8::from_str_radix(&s[i..i + 2], 16).map_err(|e| e.to_string());
    (0..s.len()).step_by(2).map(digit).collect()
}

/// The outcome of one record; `Err` when a success has the wrong plaintext.
fn run(v: &Record) -> Result<String, String> {
    let key: [u8; 32] = hex(&v["l3_key"])?.try_into().map_err(|_| "bad l3_key")?;
    let context = hex(&v["context"])?;
    match decrypt(&v["ciphertext"], v["tenant"].as_bytes(), &key, &context) {
        Ok(plaintext) => {
            let want = hex(v.get("plaintext").map_or("", String::as_str))?;
            if v["expect"] == "success" && plaintext != want {
                return Err(format!("plaintext {plaintext:02x?}, expected {want:02x?}"));
            }
            Ok("success".into())
        }
        Err(f) => Ok(outcome_of(&f, v["expect"] == "wrong_context")),
    }
}

/// Short name for the unit tests below.
type E = FormatError;

#[test]
fn golden_vectors() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../test/vectors/envelope-v1.vec"
    );
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let vectors = parse_vectors(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert!(vectors.len() >= 30, "only {} vectors", vectors.len());
    for o in OUTCOMES {
        assert!(vectors.iter().any(|v| v["expect"] == o), "no {o} vector");
    }
    let mut failed = Vec::new();
    for v in &vectors {
        let (name, expect) = (&v["name"], &v["expect"]);
        match run(v) {
            Ok(got) if got == *expect => {}
            Ok(got) => failed.push(format!("vector {name}: got {got}, expected {expect}")),
            Err(e) => failed.push(format!("vector {name}: {e}")),
        }
    }
    assert!(failed.is_empty(), "failed:\n{}", failed.join("\n"));
}

#[test]
fn base64url_is_strict_and_canonical() {
    assert_eq!(decode_base64url(""), Ok(vec![]));
    assert_eq!(decode_base64url("Zm9v"), Ok(b"foo".to_vec()));
    assert_eq!(decode_base64url("-_8"), Ok(vec![0xfb, 0xff]));
    assert_eq!(decode_base64url("AA"), Ok(vec![0]));
    // Padding, '+', '/', space, non-zero unused bits, length % 4 == 1.
    for bad in ["AA==", "+_8", "/_8", "Zm 9", "AB", "AAB", "-_9", "A"] {
        assert_eq!(decode_base64url(bad), Err(E::Encoding), "{bad:?}");
    }
}

#[test]
fn key_ref_and_aad_encoding() {
    let l3 = b"\x04\x04acme\x08payments\x00\x00\x00\x01";
    let got = KeyRef(KIND_SERVICE, b"acme", b"payments", 1).encode();
    assert_eq!(got, Ok(l3.to_vec()));
    let l4 = b"\x05\x04acme\x00\x00\x00\x00\x00";
    let want = [&b"okcm/wrap/v1\x00\x01"[..], l3, l4].concat();
    assert_eq!(data_key_aad(b"acme", b"payments", 1), Ok(want));
    let field = b"okcm/field/v1\x00H\x00\x00\x00\x03ctx".to_vec();
    assert_eq!(field_aad(b"H", b"ctx"), Some(field));
    assert_eq!(field_aad(b"H", &[0; MAX_CONTEXT + 1]), None);
    let bad = [
        KeyRef(1, b"acme", b"m", 1),
        KeyRef(KIND_DATA, b"acme", b"k", 0),
        KeyRef(KIND_SERVICE, b"acme", b"k", 0),
        KeyRef(KIND_SERVICE, b"ac me", b"k", 1),
        KeyRef(6, b"acme", b"k", 1),
    ];
    for r in bad {
        assert_eq!(r.encode(), Err(E::Header), "{r:?}");
    }
}

#[test]
fn envelope_steps_1_to_5() {
    let long = format!("okcm:1:{}", "A".repeat(MAX_ENVELOPE_CHARS));
    let cases = [
        (long.as_str(), E::Encoding),
        ("okcm", E::Prefix),
        ("okcm:1", E::Version),
        ("okcm:01:", E::Version),
        ("okcm:1000:", E::Version),
        ("okcm:1:A", E::Encoding),
        ("okcm:1:AA", E::Length),
    ];
    for (text, want) in cases {
        assert_eq!(decode_envelope(text).err(), Some(want), "{:.20}", text);
    }
}
