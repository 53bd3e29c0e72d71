//! The N-API functions: the JS surface described by `native/ts/backend.ts`,
//! plus `processHarden()` and a `name` property (`"native"`).
//!
//! Keys cross into JS only as tagged externals wrapping a [`KeyHandle`];
//! anything else passed as a key throws `[invalid_key]`, a destroyed key
//! throws `[key_destroyed]` (except in `keyInfo` and `keyDestroy`). Misuse
//! throws `Error("[code] …")` with `error.code = code`; authentication
//! failures return `null` (or a `null` item in batches).
//!
//! Sealed blobs (`seal`, `sealBatch`, `dataKeySealBatch`) are Buffers that may
//! share a zero-filled backing store with other sealed blobs (public data;
//! see the output pool in [`napi`]); plaintexts, keys, MACs and shares always
//! get a backing store of their own. `wrapKey` also keeps its own, since
//! wrapped keys are the blobs most likely to be kept for long.

use std::ffi::CStr;

use crate::aead::{self, EnvelopeItem, OVERHEAD, WRAPPED_LEN};
use crate::exports_front::{
    front_drain, front_forget, front_key, front_key_demand, front_start, front_stats, front_stop, front_table,
};
use crate::error::{code, Error, Result};
use crate::http1_answer::{AnswerLimits, AnswerParser, Failure};
use crate::http1_request::{self, Parsed, RequestLimits};
use crate::json_targets;
use crate::kdf;
use crate::keys::{self, KeyHandle, Slot, KEY_LEN};
use crate::napi::{self, Env, RawCallback, RawEnv, RawInfo, RawValue, Tagged, TypeTag};
use crate::open_splice;
use crate::ossl::random_bytes;
use crate::seal_splice;
use crate::shamir::{self, SHARE_LEN};
use crate::splice;
use crate::sys;
use crate::transport;

// SAFETY: this tag is used for no other type; it marks externals whose data
// is a Box<KeyHandle> (see `Env::new_external`).
unsafe impl Tagged for KeyHandle {
    const TAG: TypeTag = TypeTag {
        lower: 0x6f70_656e_6b63_6d5f,
        upper: 0x9d2c_5e71_a4b3_0f58,
    };
}

fn key<'cb>(env: &Env<'cb>, value: RawValue, what: &str) -> Result<&'cb KeyHandle> {
    env.external::<KeyHandle>(value, code::INVALID_KEY, what)
}

/// Like [`key`], and `[key_destroyed]` if the key was destroyed. Checked
/// before the other arguments, as the node backend does. A transport key is
/// `[invalid_key]` here: it serves only the `…ForTransport` exports (see
/// [`KeyHandle`]).
fn live_key<'cb>(env: &Env<'cb>, value: RawValue, what: &str) -> Result<&'cb KeyHandle> {
    let handle = key(env, value, what)?;
    if handle.is_transport() {
        return Err(Error::new(
            code::INVALID_KEY,
            format!("{what} is a transport key (it only wraps data keys for the token)"),
        ));
    }
    handle.ensure_live()?;
    Ok(handle)
}

/// A live transport key (from `transportKeyGenerate`); any other key is `[invalid_key]`.
fn transport_key<'cb>(env: &Env<'cb>, value: RawValue, what: &str) -> Result<&'cb KeyHandle> {
    let handle = key(env, value, what)?;
    if !handle.is_transport() {
        return Err(Error::new(
            code::INVALID_KEY,
            format!("{what} is not a transport key"),
        ));
    }
    handle.ensure_live()?;
    Ok(handle)
}

fn new_key(env: &Env<'_>, slot: Slot) -> Result<RawValue> {
    env.new_external(Box::new(KeyHandle::new(slot)))
}

fn sealed_len(plaintext_len: usize) -> Result<usize> {
    plaintext_len
        .checked_add(OVERHEAD)
        .ok_or_else(|| Error::arg("plaintext is too large"))
}

fn same_length(fn_name: &str, names: &[&str], lens: &[usize]) -> Result<()> {
    if lens.windows(2).all(|w| w[0] == w[1]) {
        Ok(())
    } else {
        let detail: Vec<String> = names
            .iter()
            .zip(lens)
            .map(|(n, l)| format!("{n}.length={l}"))
            .collect();
        Err(Error::arg(format!(
            "{fn_name}: arrays must have equal length ({})",
            detail.join(", ")
        )))
    }
}

fn key_info_object(env: &Env<'_>, info: keys::KeyInfo) -> Result<RawValue> {
    env.object(&[
        (c"id", env.number(info.id as f64)?),
        (c"locked", env.boolean(info.locked)?),
        (c"destroyed", env.boolean(info.destroyed)?),
        (c"encryptions", env.number(info.encryptions as f64)?),
    ])
}

/// `status()` → `{name: 'native', liveKeys, memoryLockable, memoryLockError?}`.
fn status(env: Env<'_>, _args: &[RawValue]) -> Result<RawValue> {
    let s = keys::memory_status();
    let mut props = vec![
        (c"name", env.string("native")?),
        (c"liveKeys", env.number(s.live_keys as f64)?),
        (c"memoryLockable", env.boolean(s.lockable)?),
    ];
    if let Some(err) = &s.lock_error {
        props.push((c"memoryLockError", env.string(err)?));
    }
    env.object(&props)
}

/// `keyGenerate()` → key: 32 bytes from RAND_bytes written straight into a slot.
fn key_generate(env: Env<'_>, _args: &[RawValue]) -> Result<RawValue> {
    let mut slot = Slot::alloc()?;
    random_bytes(slot.bytes_mut())?;
    new_key(&env, slot)
}

/// `keyImport(bytes)` → key: copies exactly 32 bytes, then zero-fills `bytes`.
fn key_import(env: Env<'_>, args: &[RawValue]) -> Result<RawValue> {
    let [bytes] = *args else {
        return Err(Error::arg("keyImport(bytes)"));
    };
    let src = env.bytes(bytes, "keyImport: bytes")?;
    if src.len() != KEY_LEN {
        return Err(Error::new(
            code::INVALID_KEY_LENGTH,
            format!(
                "keyImport: key must be exactly {KEY_LEN} bytes, got {}",
                src.len()
            ),
        ));
    }
    let mut slot = Slot::alloc()?;
    slot.bytes_mut().copy_from_slice(src);
    let handle = new_key(&env, slot)?;
    env.zero_fill(bytes, "keyImport: bytes")?;
    Ok(handle)
}

/// `keyDestroy(key)`: wipes the key; idempotent.
fn key_destroy(env: Env<'_>, args: &[RawValue]) -> Result<RawValue> {
    let [k] = *args else {
        return Err(Error::arg("keyDestroy(key)"));
    };
    key(&env, k, "keyDestroy: key")?.destroy()?;
    env.undefined()
}

/// `keyLive(key)` → false once the key is destroyed (`keyInfo`'s `destroyed`, no object built).
fn key_live(env: Env<'_>, args: &[RawValue]) -> Result<RawValue> {
    let [k] = *args else {
        return Err(Error::arg("keyLive(key)"));
    };
    let live = !key(&env, k, "keyLive: key")?.info().destroyed;
    env.boolean(live)
}

/// `keyInfo(key)` → `{id, locked, destroyed, encryptions}` (also for destroyed keys).
fn key_info(env: Env<'_>, args: &[RawValue]) -> Result<RawValue> {
    let [k] = *args else {
        return Err(Error::arg("keyInfo(key)"));
    };
    let info = key(&env, k, "keyInfo: key")?.info();
    key_info_object(&env, info)
}

/// `seal(key, plaintext, aad)` → nonce ‖ ct ‖ tag (a Buffer that may share
/// its backing store with other sealed blobs, see `napi::Env::public_buffer_array`).
fn seal(env: Env<'_>, args: &[RawValue]) -> Result<RawValue> {
    let [k, pt, aad] = *args else {
        return Err(Error::arg("seal(key, plaintext, aad)"));
    };
    let k = live_key(&env, k, "seal: key")?;
    let pt = env.bytes(pt, "seal: plaintext")?;
    let aad = env.bytes(aad, "seal: aad")?;
    env.public_buffer(sealed_len(pt.len())?, &[pt, aad], |out| {
        k.count_encryptions(1);
        k.with_key(|kb| aead::seal(kb, pt, aad, out))
    })
}

/// `sealInto(key, plaintext, aad, out, offset)` → bytes written (plaintext
/// length + 28): seals into the caller's Uint8Array at `offset`, so a caller
/// that reuses its output memory allocates nothing per call. `out` must not
/// overlap `plaintext` or `aad` and must have room, else `[invalid_argument]`.
fn seal_into(env: Env<'_>, args: &[RawValue]) -> Result<RawValue> {
    let [k, pt, aad, out, offset] = *args else {
        return Err(Error::arg("sealInto(key, plaintext, aad, out, offset)"));
    };
    let k = live_key(&env, k, "sealInto: key")?;
    let pt = env.bytes(pt, "sealInto: plaintext")?;
    let aad = env.bytes(aad, "sealInto: aad")?;
    let (data, len) = env.bytes_out(out, "sealInto: out")?;
    let offset = env.number_or_nan(offset)?;
    if !(offset >= 0.0 && offset.fract() == 0.0 && offset <= len as f64) {
        return Err(Error::arg("sealInto: offset must be an integer within out"));
    }
    let offset = offset as usize;
    let need = sealed_len(pt.len())?;
    if len - offset < need {
        return Err(Error::arg(format!(
            "sealInto: out has {} bytes after offset, needs {need}",
            len - offset
        )));
    }
    // SAFETY: offset + need <= len, so the range lies inside `out`'s backing store.
    let start = unsafe { data.add(offset) };
    if napi::ranges_overlap(start, need, pt.as_ptr(), pt.len())
        || napi::ranges_overlap(start, need, aad.as_ptr(), aad.len())
    {
        return Err(Error::arg("sealInto: out overlaps plaintext or aad"));
    }
    // SAFETY: `start..start+need` is inside `out` (checked above), is live for
    // this callback (see `Env::bytes`), and shares no byte with `pt` or `aad`,
    // so this is the only reference to it.
    let dst = unsafe { std::slice::from_raw_parts_mut(start, need) };
    k.count_encryptions(1);
    k.with_key(|kb| aead::seal(kb, pt, aad, dst))?;
    env.number(need as f64)
}

/// Whether `insecureExportKey` works: decided once, when the module registers (see
/// `napi_register_module_v1`), from KCM_INSECURE_KEY_EXPORT=tests.
fn export_enabled() -> bool {
    static ENABLED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ENABLED.get_or_init(|| std::env::var("KCM_INSECURE_KEY_EXPORT").is_ok_and(|v| v == "tests"))
}

/// `insecureExportKey(key)` → the 32 key bytes. TEST-ONLY: `[insecure_export_disabled]`
/// unless the process started with KCM_INSECURE_KEY_EXPORT=tests (see native/ts/insecure-export.ts).
fn insecure_export_key(env: Env<'_>, args: &[RawValue]) -> Result<RawValue> {
    let [k] = *args else {
        return Err(Error::arg("insecureExportKey(key)"));
    };
    if !export_enabled() {
        return Err(Error::new(
            code::INSECURE_EXPORT_DISABLED,
            "key export is for tests only (KCM_INSECURE_KEY_EXPORT=tests)".to_owned(),
        ));
    }
    // Transport keys too: tests check what the token receives.
    let k = key(&env, k, "insecureExportKey: key")?;
    k.ensure_live()?;
    let (value, out) = env.new_buffer(KEY_LEN)?;
    k.with_key(|kb| {
        out.copy_from_slice(kb);
        Ok(())
    })?;
    Ok(value)
}

/// `open(key, sealed, aad)` → plaintext, or null on authentication failure /
/// input shorter than 28 bytes.
fn open(env: Env<'_>, args: &[RawValue]) -> Result<RawValue> {
    let [k, sealed, aad] = *args else {
        return Err(Error::arg("open(key, sealed, aad)"));
    };
    let k = live_key(&env, k, "open: key")?;
    let sealed = env.bytes(sealed, "open: sealed")?;
    let aad = env.bytes(aad, "open: aad")?;
    if sealed.len() < OVERHEAD {
        return env.null();
    }
    let (value, out) = env.new_buffer(sealed.len() - OVERHEAD)?;
    if k.with_key(|kb| aead::open(kb, sealed, aad, out))? {
        Ok(value)
    } else {
        env.null()
    }
}

/// `sealBatch(key, plaintexts[], aads[])` → sealed[]: one context, one key
/// schedule; outputs as in [`seal`].
fn seal_batch(env: Env<'_>, args: &[RawValue]) -> Result<RawValue> {
    let [k, pts, aads] = *args else {
        return Err(Error::arg("sealBatch(key, plaintexts, aads)"));
    };
    let k = live_key(&env, k, "sealBatch: key")?;
    let pt_items = env.array_items(pts, "sealBatch: plaintexts", code::INVALID_ARGUMENT)?;
    let aad_items = env.array_items(aads, "sealBatch: aads", code::INVALID_ARGUMENT)?;
    same_length(
        "sealBatch",
        &["plaintexts", "aads"],
        &[pt_items.len(), aad_items.len()],
    )?;
    let pts = env.bytes_list(&pt_items, "sealBatch: plaintexts")?;
    let aads = env.bytes_list(&aad_items, "sealBatch: aads")?;
    let lens = pts
        .iter()
        .map(|p| sealed_len(p.len()))
        .collect::<Result<Vec<_>>>()?;
    let inputs: Vec<&[u8]> = pts.iter().chain(aads.iter()).copied().collect();
    env.public_buffer_array(&lens, &inputs, |outs| {
        k.count_encryptions(pts.len() as u64);
        k.with_key(|kb| aead::seal_batch(kb, &pts, &aads, outs))
    })
}

/// `openBatch(key, sealed[], aads[])` → (Buffer | null)[].
fn open_batch(env: Env<'_>, args: &[RawValue]) -> Result<RawValue> {
    let [k, sealed, aads] = *args else {
        return Err(Error::arg("openBatch(key, sealed, aads)"));
    };
    let k = live_key(&env, k, "openBatch: key")?;
    let sealed_items = env.array_items(sealed, "openBatch: sealed", code::INVALID_ARGUMENT)?;
    let aad_items = env.array_items(aads, "openBatch: aads", code::INVALID_ARGUMENT)?;
    same_length(
        "openBatch",
        &["sealed", "aads"],
        &[sealed_items.len(), aad_items.len()],
    )?;
    let sealed = env.bytes_list(&sealed_items, "openBatch: sealed")?;
    let aads = env.bytes_list(&aad_items, "openBatch: aads")?;
    let lens: Vec<usize> = sealed
        .iter()
        .map(|s| s.len().saturating_sub(OVERHEAD))
        .collect();
    env.secret_buffer_array(&lens, |outs| {
        k.with_key(|kb| aead::open_batch(kb, &sealed, &aads, outs))
    })
}

/// `wrapKey(kek, target, aad)` → 60 bytes.
fn wrap_key(env: Env<'_>, args: &[RawValue]) -> Result<RawValue> {
    let [kek, target, aad] = *args else {
        return Err(Error::arg("wrapKey(kek, target, aad)"));
    };
    let kek = live_key(&env, kek, "wrapKey: kek")?;
    let target = live_key(&env, target, "wrapKey: target")?;
    let aad = env.bytes(aad, "wrapKey: aad")?;
    let (value, out) = env.new_buffer(WRAPPED_LEN)?;
    kek.count_encryptions(1);
    kek.with_key(|k| target.with_key(|t| aead::wrap(k, t, aad, out)))?;
    Ok(value)
}

/// `unwrapKey(kek, wrapped, aad)` → new key (unwrapped straight into a
/// locked slot), or null on authentication failure or a length other than 60.
fn unwrap_key(env: Env<'_>, args: &[RawValue]) -> Result<RawValue> {
    let [kek, wrapped, aad] = *args else {
        return Err(Error::arg("unwrapKey(kek, wrapped, aad)"));
    };
    let kek = live_key(&env, kek, "unwrapKey: kek")?;
    let wrapped = env.bytes(wrapped, "unwrapKey: wrapped")?;
    let aad = env.bytes(aad, "unwrapKey: aad")?;
    if wrapped.len() != WRAPPED_LEN {
        return env.null();
    }
    let mut slot = Slot::alloc()?;
    if kek.with_key(|k| aead::unwrap(k, wrapped, aad, slot.bytes_mut()))? {
        new_key(&env, slot)
    } else {
        env.null()
    }
}

/// `dataKeySealBatch(kek, wrapAad, plaintexts[], aads[])` → [wrapped, sealed_0, …]
/// (all public outputs, as in [`seal`]).
fn data_key_seal_batch(env: Env<'_>, args: &[RawValue]) -> Result<RawValue> {
    let [kek, wrap_aad, pts, aads] = *args else {
        return Err(Error::arg(
            "dataKeySealBatch(kek, wrapAad, plaintexts, aads)",
        ));
    };
    let kek = live_key(&env, kek, "dataKeySealBatch: kek")?;
    let pt_items = env.array_items(pts, "dataKeySealBatch: plaintexts", code::INVALID_ARGUMENT)?;
    let aad_items = env.array_items(aads, "dataKeySealBatch: aads", code::INVALID_ARGUMENT)?;
    same_length(
        "dataKeySealBatch",
        &["plaintexts", "aads"],
        &[pt_items.len(), aad_items.len()],
    )?;
    let wrap_aad = env.bytes(wrap_aad, "dataKeySealBatch: wrapAad")?;
    let pts = env.bytes_list(&pt_items, "dataKeySealBatch: plaintexts")?;
    let aads = env.bytes_list(&aad_items, "dataKeySealBatch: aads")?;
    // Output 0 is the wrapped data key, then one sealed blob per item.
    let lens = std::iter::once(Ok(WRAPPED_LEN))
        .chain(pts.iter().map(|p| sealed_len(p.len())))
        .collect::<Result<Vec<_>>>()?;
    let inputs: Vec<&[u8]> = pts
        .iter()
        .chain(aads.iter())
        .chain([&wrap_aad])
        .copied()
        .collect();
    env.public_buffer_array(&lens, &inputs, |outs| match outs.split_first_mut() {
        Some((wrapped_out, outs)) => {
            kek.count_encryptions(1);
            kek.with_key(|k| aead::data_key_seal_batch(k, wrap_aad, &pts, &aads, wrapped_out, outs))
        }
        None => Err(Error::internal("dataKeySealBatch: output count")),
    })
}

/// Argument names of one splice export, for its messages (static: nothing is formatted per call).
struct SpliceNames {
    signature: &'static str,
    kek: &'static str,
    contexts: &'static str,
    wrap_aad: &'static str,
    body: &'static str,
    spans: &'static str,
    aad_head: &'static str,
    text_head: &'static str,
    header: &'static str,
}

/// The arguments both splice exports take.
struct SpliceArgs<'cb> {
    kek: &'cb KeyHandle,
    wrap_aad: &'cb [u8],
    body: &'cb [u8],
    spans: Vec<u32>,
    contexts: Vec<&'cb [u8]>,
    heads: splice::SpliceHeads<'cb>,
}

/// Reads `(kek, wrapAad, body, spans, contexts[], aadHead, textHead, header)`
/// in the one safe order: the key (checked first, as everywhere), then
/// `contexts`, whose element getters may run JS and detach or resize
/// `body`, then every byte slice.
fn splice_args<'cb>(env: &Env<'cb>, args: &[RawValue], n: &SpliceNames) -> Result<SpliceArgs<'cb>> {
    let [kek, wrap_aad, body, spans, contexts, aad_head, text_head, header] = *args else {
        return Err(Error::arg(n.signature));
    };
    let kek = live_key(env, kek, n.kek)?;
    let ctx_items = env.array_items(contexts, n.contexts, code::INVALID_ARGUMENT)?;
    Ok(SpliceArgs {
        kek,
        wrap_aad: env.bytes(wrap_aad, n.wrap_aad)?,
        body: env.bytes(body, n.body)?,
        spans: env.u32s(spans, n.spans)?,
        contexts: env.bytes_list(&ctx_items, n.contexts)?,
        heads: splice::SpliceHeads {
            aad_head: env.bytes(aad_head, n.aad_head)?,
            text_head: env.bytes(text_head, n.text_head)?,
            header: env.bytes(header, n.header)?,
        },
    })
}

const SEAL_SPLICE: SpliceNames = SpliceNames {
    signature: "dataKeySealSplice(kek, wrapAad, body, spans, contexts, aadHead, textHead, header)",
    kek: "dataKeySealSplice: kek",
    contexts: "dataKeySealSplice: contexts",
    wrap_aad: "dataKeySealSplice: wrapAad",
    body: "dataKeySealSplice: body",
    spans: "dataKeySealSplice: spans",
    aad_head: "dataKeySealSplice: aadHead",
    text_head: "dataKeySealSplice: textHead",
    header: "dataKeySealSplice: header",
};

const OPEN_SPLICE: SpliceNames = SpliceNames {
    signature: "dataKeyOpenSplice(kek, wrapAad, body, spans, contexts, aadHead, textHead, header)",
    kek: "dataKeyOpenSplice: kek",
    contexts: "dataKeyOpenSplice: contexts",
    wrap_aad: "dataKeyOpenSplice: wrapAad",
    body: "dataKeyOpenSplice: body",
    spans: "dataKeyOpenSplice: spans",
    aad_head: "dataKeyOpenSplice: aadHead",
    text_head: "dataKeyOpenSplice: textHead",
    header: "dataKeyOpenSplice: header",
};

/// `dataKeySealSplice(kek, wrapAad, body, spans, contexts[], aadHead, textHead, header)` → Buffer:
/// the body with each span's value replaced by its envelope text (see [`seal_splice`]).
/// The output has a backing store of its own: it holds the body's other bytes.
fn data_key_seal_splice(env: Env<'_>, args: &[RawValue]) -> Result<RawValue> {
    let a = splice_args(&env, args, &SEAL_SPLICE)?;
    let items = seal_splice::items_from_spans(&a.spans, a.body.len())?;
    let len = seal_splice::output_len(a.body.len(), &items, &a.heads)?;
    let (value, out) = env.new_buffer(len)?;
    a.kek.count_encryptions(1);
    a.kek.with_key(|k| {
        seal_splice::seal_splice(k, a.wrap_aad, a.body, &items, &a.contexts, &a.heads, out)
    })?;
    Ok(value)
}

/// `dataKeyOpenSplice(kek, wrapAad, body, spans, contexts[], aadHead, textHead, header)` →
/// Buffer | null: the body with each value span replaced by its plaintext's JSON
/// string, or null when any item falls short (see [`open_splice`]). The output has
/// a backing store of its own; the plaintexts' scratch is wiped.
fn data_key_open_splice(env: Env<'_>, args: &[RawValue]) -> Result<RawValue> {
    let a = splice_args(&env, args, &OPEN_SPLICE)?;
    let values = open_splice::values_from_spans(&a.spans, a.body.len())?;
    let Some(opened) = a.kek.with_key(|k| {
        open_splice::open_items(k, a.wrap_aad, a.body, &values, &a.contexts, &a.heads)
    })?
    else {
        return env.null();
    };
    let (value, out) = env.new_buffer(opened.out_len(a.body.len(), &values)?)?;
    opened.write(a.body, &values, out)?;
    Ok(value)
}

/// A count argument: an integer in 1..=`max`, else `[invalid_argument]`.
fn count_arg(env: &Env<'_>, value: RawValue, max: f64, what: &str) -> Result<usize> {
    let n = env.number_or_nan(value)?;
    if n.fract() == 0.0 && (1.0..=max).contains(&n) {
        Ok(n as usize)
    } else {
        Err(Error::arg(format!(
            "{what} must be an integer from 1 to {max}"
        )))
    }
}

// SAFETY: this tag is used for no other type; it marks externals whose data
// is a Box<CompiledRules> (see `Env::new_external`).
unsafe impl Tagged for json_targets::CompiledRules {
    const TAG: TypeTag = TypeTag {
        lower: 0x6a73_6f6e_7275_6c65,
        upper: 0x41c3_77e0_5d19_b82a,
    };
}

/// `jsonTargetsRules(encoded)` → an opaque handle on the decoded, compiled
/// rules (see [`json_targets`]), made once per rule list.
fn json_targets_rules(env: Env<'_>, args: &[RawValue]) -> Result<RawValue> {
    let [encoded] = *args else {
        return Err(Error::arg("jsonTargetsRules(encoded)"));
    };
    let compiled = json_targets::compile_rules(env.bytes(encoded, "jsonTargetsRules: encoded")?)?;
    env.new_external(Box::new(compiled))
}

/// `jsonTargets(body, rules, maxDepth, maxFields)` → Buffer | null: the values
/// the compiled `rules` (from `jsonTargetsRules`) select in the JSON `body`
/// (valid UTF-8), 4 native-endian u32 per target, or null when the pass
/// declines (see [`json_targets`]).
fn json_targets_export(env: Env<'_>, args: &[RawValue]) -> Result<RawValue> {
    let [body, rules, max_depth, max_fields] = *args else {
        return Err(Error::arg("jsonTargets(body, rules, maxDepth, maxFields)"));
    };
    let rules = env.external::<json_targets::CompiledRules>(
        rules,
        code::INVALID_ARGUMENT,
        "jsonTargets: rules (from jsonTargetsRules)",
    )?;
    let max_depth = count_arg(&env, max_depth, 4096.0, "jsonTargets: maxDepth")?;
    let max_fields = count_arg(&env, max_fields, 1e7, "jsonTargets: maxFields")?;
    let body = env.bytes(body, "jsonTargets: body")?;
    let Some(targets) = json_targets::json_targets(body, rules, max_depth, max_fields)? else {
        return env.null();
    };
    let (value, out) = env.new_buffer(targets.len() * 4)?;
    for (dst, t) in out.chunks_exact_mut(4).zip(&targets) {
        dst.copy_from_slice(&t.to_ne_bytes());
    }
    Ok(value)
}

/// A Latin-1 JS string of `bytes` (each byte one code point, as the gateway reads header bytes).
fn latin1(env: &Env<'_>, bytes: &[u8]) -> Result<RawValue> {
    env.string(&bytes.iter().map(|&c| char::from(c)).collect::<String>())
}

/// `http1Answer(chunks[], flags, maxHead, maxBody)` → what [`http1_answer`]
/// reads from one upstream answer fed as `chunks` (flags: 1 the request was
/// HEAD, 2 the connection ended after the last chunk): `{ outcome: "done" |
/// "partial" | "failed", started, status, headers: [name, value, …] (Latin-1
/// strings), body, keepAlive, failure: "bad_response" | "too_large" |
/// "unavailable" | null, what }`. Feeding stops at the first failure. The
/// test surface of the parser (test/native/http1-answer.test.ts compares it
/// with the gateway's TypeScript parser); a native front calls it directly.
fn http1_answer_export(env: Env<'_>, args: &[RawValue]) -> Result<RawValue> {
    let [chunks, flags, max_head, max_body] = *args else {
        return Err(Error::arg("http1Answer(chunks, flags, maxHead, maxBody)"));
    };
    let items = env.array_items(chunks, "http1Answer: chunks", code::INVALID_ARGUMENT)?;
    let chunks = env.bytes_list(&items, "http1Answer: chunks")?;
    let flags = env.number_or_nan(flags)?;
    if !(flags.fract() == 0.0 && (0.0..=3.0).contains(&flags)) {
        return Err(Error::arg("http1Answer: flags must be an integer from 0 to 3"));
    }
    let flags = flags as u8;
    let limits = AnswerLimits {
        max_head: count_arg(&env, max_head, 1e9, "http1Answer: maxHead")?,
        max_body: count_arg(&env, max_body, 1e12, "http1Answer: maxBody")?,
    };
    let mut parser = AnswerParser::new(limits, flags & 1 != 0);
    let mut outcome = Ok(false);
    for chunk in chunks {
        match parser.feed(chunk) {
            // Once complete, an empty chunk after it changes nothing (more bytes are an error).
            Ok(false) => {}
            done @ Ok(true) => outcome = done,
            failed @ Err(_) => {
                outcome = failed;
                break;
            }
        }
    }
    if flags & 2 != 0 && outcome == Ok(false) {
        outcome = parser.end().map(|()| true);
    }
    let (name, failure, what) = match outcome {
        Ok(true) => ("done", None, None),
        Ok(false) => ("partial", None, None),
        Err(Failure::BadResponse(what)) => ("failed", Some("bad_response"), Some(what)),
        Err(Failure::TooLarge) => ("failed", Some("too_large"), None),
        Err(Failure::Unavailable) => ("failed", Some("unavailable"), None),
    };
    let mut headers = Vec::new();
    for (n, v) in parser.headers() {
        headers.push(latin1(&env, n)?);
        headers.push(latin1(&env, v)?);
    }
    let (body, out) = env.new_buffer(parser.body().len())?;
    out.copy_from_slice(parser.body());
    let text = |s: Option<&str>| s.map_or_else(|| env.null(), |s| env.string(s));
    env.object(&[
        (c"outcome", env.string(name)?),
        (c"started", env.boolean(parser.started())?),
        (c"status", env.number(f64::from(parser.status()))?),
        (c"headers", env.array(&headers)?),
        (c"body", body),
        (c"keepAlive", env.boolean(parser.keep_alive())?),
        (c"failure", text(failure)?),
        (c"what", text(what)?),
    ])
}

/// `http1RequestHead(bytes, maxHead, maxHeaders)` → what [`http1_request`]
/// reads at the start of `bytes`: null while the head is incomplete,
/// `{ decline: reason }`, or `{ len, method, target, headers: [name, value,
/// …], contentLength, close }`. The test surface of the parser
/// (test/native/http1-request.test.ts holds it to a running uWS server); a
/// native front calls it directly.
fn http1_request_export(env: Env<'_>, args: &[RawValue]) -> Result<RawValue> {
    let [bytes, max_head, max_headers] = *args else {
        return Err(Error::arg("http1RequestHead(bytes, maxHead, maxHeaders)"));
    };
    let b = env.bytes(bytes, "http1RequestHead: bytes")?;
    let limits = RequestLimits {
        max_head: count_arg(&env, max_head, 1e9, "http1RequestHead: maxHead")?,
        max_headers: count_arg(&env, max_headers, 1e6, "http1RequestHead: maxHeaders")?,
    };
    let head = match http1_request::parse_request_head(b, limits) {
        Parsed::Partial => return env.null(),
        Parsed::Decline(why) => return env.object(&[(c"decline", env.string(why)?)]),
        Parsed::Head(head) => head,
    };
    let mut headers = Vec::with_capacity(2 * head.headers.len());
    for ((ns, ne), (vs, ve)) in &head.headers {
        headers.push(latin1(&env, &b[*ns..*ne])?);
        headers.push(latin1(&env, &b[*vs..*ve])?);
    }
    env.object(&[
        (c"len", env.number(head.len as f64)?),
        (c"method", latin1(&env, &b[head.method.0..head.method.1])?),
        (c"target", latin1(&env, &b[head.target.0..head.target.1])?),
        (c"headers", env.array(&headers)?),
        (c"contentLength", env.number(head.content_length as f64)?),
        (c"close", env.boolean(head.close)?),
    ])
}

/// `dataKeyOpenBatch(kek, wrappedKeys[], wrapAads[], sealed[], aads[])` → (Buffer | null)[].
fn data_key_open_batch(env: Env<'_>, args: &[RawValue]) -> Result<RawValue> {
    let [kek, wrapped, wrap_aads, sealed, aads] = *args else {
        return Err(Error::arg(
            "dataKeyOpenBatch(kek, wrappedKeys, wrapAads, sealed, aads)",
        ));
    };
    let kek = live_key(&env, kek, "dataKeyOpenBatch: kek")?;
    let names = ["wrappedKeys", "wrapAads", "sealed", "aads"];
    // Argument names for errors, spelled out: no string is built per call.
    let whats = [
        "dataKeyOpenBatch: wrappedKeys",
        "dataKeyOpenBatch: wrapAads",
        "dataKeyOpenBatch: sealed",
        "dataKeyOpenBatch: aads",
    ];
    let items = [wrapped, wrap_aads, sealed, aads]
        .iter()
        .zip(whats)
        .map(|(&v, what)| env.array_items(v, what, code::INVALID_ARGUMENT))
        .collect::<Result<Vec<_>>>()?;
    let lens: Vec<usize> = items.iter().map(Vec::len).collect();
    same_length("dataKeyOpenBatch", &names, &lens)?;
    let lists = items
        .iter()
        .zip(whats)
        .map(|(v, what)| env.bytes_list(v, what))
        .collect::<Result<Vec<_>>>()?;
    let [wrapped, wrap_aads, sealed, aads] = lists.as_slice() else {
        return Err(Error::internal("dataKeyOpenBatch: list count"));
    };
    let envelope: Vec<EnvelopeItem<'_>> = wrapped
        .iter()
        .zip(wrap_aads)
        .zip(sealed)
        .zip(aads)
        .map(
            |(((&wrapped_key, &wrap_aad), &sealed), &aad)| EnvelopeItem {
                wrapped_key,
                wrap_aad,
                sealed,
                aad,
            },
        )
        .collect();
    let lens: Vec<usize> = sealed
        .iter()
        .map(|s| s.len().saturating_sub(OVERHEAD))
        .collect();
    env.secret_buffer_array(&lens, |outs| {
        kek.with_key(|k| aead::data_key_open_batch(k, &envelope, outs))
    })
}

/// `transportKeyGenerate(publicKey)` → `[transportKey, wrapped]`: a fresh
/// 32-byte key in a locked slot, and its RSA-OAEP-SHA-1 encryption under
/// `publicKey` (DER SubjectPublicKeyInfo, RSA 2048–8192 bits, else
/// `[invalid_argument]`), modulus-length bytes. See transport.rs.
fn transport_key_generate(env: Env<'_>, args: &[RawValue]) -> Result<RawValue> {
    let [spki] = *args else {
        return Err(Error::arg("transportKeyGenerate(publicKey)"));
    };
    let spki = env.bytes(spki, "transportKeyGenerate: publicKey")?;
    let mut slot = Slot::alloc()?;
    let blob = transport::transport_key_generate(spki, &mut slot)?;
    let key = env.new_external(Box::new(KeyHandle::new_transport(slot)))?;
    let (value, out) = env.new_buffer(blob.len())?;
    out.copy_from_slice(&blob);
    env.array(&[key, value])
}

/// `dataKeyForTransport(kek, transport, wrapAad)` → `[wrappedKey (60), transportWrapped (40)]`:
/// one fresh data key, AES-256-GCM-wrapped under `kek` (as `dataKeySealBatch`)
/// and AES-KW-wrapped (RFC 3394) under the transport key, then wiped.
fn data_key_for_transport(env: Env<'_>, args: &[RawValue]) -> Result<RawValue> {
    let [kek, transport, wrap_aad] = *args else {
        return Err(Error::arg("dataKeyForTransport(kek, transport, wrapAad)"));
    };
    let kek = live_key(&env, kek, "dataKeyForTransport: kek")?;
    let transport = transport_key(&env, transport, "dataKeyForTransport: transport")?;
    let wrap_aad = env.bytes(wrap_aad, "dataKeyForTransport: wrapAad")?;
    env.public_buffer_array(
        &[WRAPPED_LEN, transport::KW_LEN],
        &[wrap_aad],
        |outs| match outs {
            [wrapped_out, kw_out] => {
                kek.count_encryptions(1);
                kek.with_key(|k| {
                    transport.with_key(|t| {
                        transport::data_key_for_transport(k, t, wrap_aad, wrapped_out, kw_out)
                    })
                })
            }
            _ => Err(Error::internal("dataKeyForTransport: output count")),
        },
    )
}

/// `dataKeyRewrapForTransport(kek, transport, wrappedKeys[], wrapAads[])` →
/// `(Buffer (40) | null)[]`: each wrapped data key opened under `kek` and
/// AES-KW-wrapped under the transport key; null when it fails authentication
/// or is not 60 bytes.
fn data_key_rewrap_for_transport(env: Env<'_>, args: &[RawValue]) -> Result<RawValue> {
    let [kek, transport, wrapped, wrap_aads] = *args else {
        return Err(Error::arg(
            "dataKeyRewrapForTransport(kek, transport, wrappedKeys, wrapAads)",
        ));
    };
    let kek = live_key(&env, kek, "dataKeyRewrapForTransport: kek")?;
    let transport = transport_key(&env, transport, "dataKeyRewrapForTransport: transport")?;
    let w_items = env.array_items(
        wrapped,
        "dataKeyRewrapForTransport: wrappedKeys",
        code::INVALID_ARGUMENT,
    )?;
    let a_items = env.array_items(
        wrap_aads,
        "dataKeyRewrapForTransport: wrapAads",
        code::INVALID_ARGUMENT,
    )?;
    same_length(
        "dataKeyRewrapForTransport",
        &["wrappedKeys", "wrapAads"],
        &[w_items.len(), a_items.len()],
    )?;
    let wrapped = env.bytes_list(&w_items, "dataKeyRewrapForTransport: wrappedKeys")?;
    let aads = env.bytes_list(&a_items, "dataKeyRewrapForTransport: wrapAads")?;
    let items: Vec<(&[u8], &[u8])> = wrapped.iter().copied().zip(aads.iter().copied()).collect();
    let (values, mut outs) =
        env.new_buffers(std::iter::repeat_n(transport::KW_LEN, items.len()))?;
    let ok = kek.with_key(|k| {
        transport.with_key(|t| transport::rewrap_for_transport(k, t, &items, &mut outs))
    })?;
    env.values_or_null(&values, &ok)
}

/// `hmacSha256(key, data)` → 32 bytes.
fn hmac_sha256(env: Env<'_>, args: &[RawValue]) -> Result<RawValue> {
    let [k, data] = *args else {
        return Err(Error::arg("hmacSha256(key, data)"));
    };
    let k = live_key(&env, k, "hmacSha256: key")?;
    let data = env.bytes(data, "hmacSha256: data")?;
    let (value, out) = env.new_buffer(kdf::MAC_LEN)?;
    let out: &mut [u8; kdf::MAC_LEN] = out
        .try_into()
        .map_err(|_| Error::internal("hmac output length"))?;
    k.with_key(|kb| kdf::hmac_sha256(kb, data, out))?;
    Ok(value)
}

/// `deriveKey(key, salt, info)` → new key: HKDF-SHA-256, L = 32, output
/// written straight into a slot.
fn derive_key(env: Env<'_>, args: &[RawValue]) -> Result<RawValue> {
    let [k, salt, info] = *args else {
        return Err(Error::arg("deriveKey(key, salt, info)"));
    };
    let k = live_key(&env, k, "deriveKey: key")?;
    let salt = env.bytes(salt, "deriveKey: salt")?;
    let info = env.bytes(info, "deriveKey: info")?;
    let mut slot = Slot::alloc()?;
    k.with_key(|ikm| kdf::hkdf_sha256(ikm, salt, info, slot.bytes_mut()))?;
    new_key(&env, slot)
}

/// `shamirSplit(key, m, n)` → n shares of 33 bytes (x ‖ y), x = 1..n.
fn shamir_split(env: Env<'_>, args: &[RawValue]) -> Result<RawValue> {
    let [k, m, n] = *args else {
        return Err(Error::arg("shamirSplit(key, m, n)"));
    };
    let k = live_key(&env, k, "shamirSplit: key")?;
    // A non-number is reported like any other bad value (as the node backend does).
    let m = env.number_or_nan(m)?;
    let n = env.number_or_nan(n)?;
    let (m, n) = shamir::check_params(m, n)?;
    let (values, mut outs) = env.new_buffers(std::iter::repeat_n(SHARE_LEN, n as usize))?;
    k.with_key(|kb| shamir::split(kb, m, &mut outs, &mut random_bytes))?;
    env.array(&values)
}

/// `shamirCombine(shares[])` → new key, rebuilt straight into a slot.
/// Not an array: `[invalid_argument]`; fewer than 2 items: `[not_enough_shares]`;
/// an item that is not 33 bytes or has x = 0: `[invalid_share]`; a repeated x:
/// `[duplicate_share]`.
fn shamir_combine(env: Env<'_>, args: &[RawValue]) -> Result<RawValue> {
    let [shares] = *args else {
        return Err(Error::arg("shamirCombine(shares)"));
    };
    let len = env.array_len(shares, "shamirCombine: shares")?;
    if len < 2 {
        return Err(Error::new(
            code::NOT_ENOUGH_SHARES,
            format!("need at least 2 shares, got {len}"),
        ));
    }
    if len > 255 {
        return Err(Error::new(
            code::DUPLICATE_SHARE,
            format!("at most 255 shares have distinct x, got {len}"),
        ));
    }
    let items = env.array_items(shares, "shamirCombine: shares", code::INVALID_SHARE)?;
    let shares = env.bytes_list(&items, "shamirCombine: shares")?;
    let mut slot = Slot::alloc()?;
    shamir::combine(&shares, slot.bytes_mut())?;
    new_key(&env, slot)
}

/// `processHarden()` → `{coreDumpsDisabled}`: sets RLIMIT_CORE to 0/0.
fn process_harden(env: Env<'_>, _args: &[RawValue]) -> Result<RawValue> {
    let disabled = sys::disable_core_dumps().is_ok();
    env.object(&[(c"coreDumpsDisabled", env.boolean(disabled)?)])
}

macro_rules! exports {
    ($( $js:literal => $entry:ident ( $argc:expr ) = $body:ident ),* $(,)?) => {
        $(
            unsafe extern "C" fn $entry(env: RawEnv, info: RawInfo) -> RawValue {
                // SAFETY: Node-API invokes this callback with its own env and
                // callback info, on the JS thread.
                unsafe { napi::callback(env, info, $js, $argc, $body) }
            }
        )*
        const FUNCTIONS: &[(&CStr, RawCallback)] = &[ $( ($js, $entry as RawCallback) ),* ];
    };
}

exports! {
    c"status" => js_status(0) = status,
    c"keyGenerate" => js_key_generate(0) = key_generate,
    c"keyImport" => js_key_import(1) = key_import,
    c"keyDestroy" => js_key_destroy(1) = key_destroy,
    c"keyInfo" => js_key_info(1) = key_info,
    c"keyLive" => js_key_live(1) = key_live,
    c"seal" => js_seal(3) = seal,
    c"sealInto" => js_seal_into(5) = seal_into,
    c"open" => js_open(3) = open,
    c"sealBatch" => js_seal_batch(3) = seal_batch,
    c"openBatch" => js_open_batch(3) = open_batch,
    c"wrapKey" => js_wrap_key(3) = wrap_key,
    c"unwrapKey" => js_unwrap_key(3) = unwrap_key,
    c"dataKeySealBatch" => js_data_key_seal_batch(4) = data_key_seal_batch,
    c"dataKeyOpenBatch" => js_data_key_open_batch(5) = data_key_open_batch,
    c"dataKeySealSplice" => js_data_key_seal_splice(8) = data_key_seal_splice,
    c"dataKeyOpenSplice" => js_data_key_open_splice(8) = data_key_open_splice,
    c"jsonTargetsRules" => js_json_targets_rules(1) = json_targets_rules,
    c"jsonTargets" => js_json_targets(4) = json_targets_export,
    c"http1Answer" => js_http1_answer(4) = http1_answer_export,
    c"http1RequestHead" => js_http1_request_head(3) = http1_request_export,
    c"hmacSha256" => js_hmac_sha256(2) = hmac_sha256,
    c"deriveKey" => js_derive_key(3) = derive_key,
    c"shamirSplit" => js_shamir_split(3) = shamir_split,
    c"shamirCombine" => js_shamir_combine(1) = shamir_combine,
    c"processHarden" => js_process_harden(0) = process_harden,
    c"insecureExportKey" => js_insecure_export_key(1) = insecure_export_key,
    c"transportKeyGenerate" => js_transport_key_generate(1) = transport_key_generate,
    c"dataKeyForTransport" => js_data_key_for_transport(3) = data_key_for_transport,
    c"dataKeyRewrapForTransport" => js_data_key_rewrap_for_transport(4) = data_key_rewrap_for_transport,
    c"frontStart" => js_front_start(4) = front_start,
    c"frontTable" => js_front_table(2) = front_table,
    c"frontDrain" => js_front_drain(1) = front_drain,
    c"frontStats" => js_front_stats(1) = front_stats,
    c"frontStop" => js_front_stop(1) = front_stop,
    c"frontKey" => js_front_key(9) = front_key,
    c"frontForget" => js_front_forget(2) = front_forget,
    c"frontKeyDemand" => js_front_key_demand(1) = front_key_demand,
}

/// Module entry point called by Node when the `.node` file is loaded.
///
/// # Safety
/// Called only by Node-API with a valid env and exports object.
#[no_mangle]
pub unsafe extern "C" fn napi_register_module_v1(env: RawEnv, exports: RawValue) -> RawValue {
    // Decide the test-only export switch now, from the environment the process had at load.
    export_enabled();
    // SAFETY: forwarded unchanged from Node-API's module registration call.
    unsafe { napi::register(env, exports, FUNCTIONS, "native") }
}
