//! Node-API: `extern "C"` declarations of the functions this module uses
//! (they resolve from the `node` executable at load time) and small safe
//! helpers for arguments, buffers, arrays, externals and errors.
//!
//! An [`Env<'cb>`] exists only for the duration of one Node-API callback (see
//! [`callback`]); every reference it hands out (byte slices, externals) lives
//! for `'cb` and so cannot escape the callback. No helper runs JS except
//! [`Env::array_items`] (element getters), which callers run before taking
//! any byte slice.

#![allow(non_camel_case_types)]

use std::cell::RefCell;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::marker::PhantomData;
use std::ptr::{self, null_mut};

use crate::error::{Error, Result};

pub type RawEnv = *mut c_void;
pub type RawValue = *mut c_void;
pub type RawInfo = *mut c_void;
type Status = c_int;
pub type RawCallback = unsafe extern "C" fn(RawEnv, RawInfo) -> RawValue;
type RawFinalize = unsafe extern "C" fn(RawEnv, *mut c_void, *mut c_void);
type RawRef = *mut c_void;

const NAPI_OK: Status = 0;
const VT_NULL: c_int = 1;
const VT_NUMBER: c_int = 3;
const VT_EXTERNAL: c_int = 8;
const TA_UINT8: c_int = 1;
const TA_UINT8_CLAMPED: c_int = 2;
const TA_UINT32: c_int = 6;
/// Most arguments any export takes.
const MAX_ARGS: usize = 10;

/// `napi_type_tag`: a 128-bit tag attached to an object or external.
#[repr(C)]
pub struct TypeTag {
    pub lower: u64,
    pub upper: u64,
}

extern "C" {
    fn napi_create_function(
        env: RawEnv,
        name: *const c_char,
        length: usize,
        cb: Option<RawCallback>,
        data: *mut c_void,
        result: *mut RawValue,
    ) -> Status;
    fn napi_set_named_property(
        env: RawEnv,
        object: RawValue,
        name: *const c_char,
        value: RawValue,
    ) -> Status;
    fn napi_get_cb_info(
        env: RawEnv,
        info: RawInfo,
        argc: *mut usize,
        argv: *mut RawValue,
        this_arg: *mut RawValue,
        data: *mut *mut c_void,
    ) -> Status;
    fn napi_create_external(
        env: RawEnv,
        data: *mut c_void,
        finalize_cb: Option<RawFinalize>,
        finalize_hint: *mut c_void,
        result: *mut RawValue,
    ) -> Status;
    fn napi_get_value_external(env: RawEnv, value: RawValue, result: *mut *mut c_void) -> Status;
    fn napi_type_tag_object(env: RawEnv, value: RawValue, tag: *const TypeTag) -> Status;
    fn napi_check_object_type_tag(
        env: RawEnv,
        value: RawValue,
        tag: *const TypeTag,
        result: *mut bool,
    ) -> Status;
    fn napi_typeof(env: RawEnv, value: RawValue, result: *mut c_int) -> Status;
    fn napi_is_typedarray(env: RawEnv, value: RawValue, result: *mut bool) -> Status;
    fn napi_is_arraybuffer(env: RawEnv, value: RawValue, result: *mut bool) -> Status;
    fn napi_get_typedarray_info(
        env: RawEnv,
        value: RawValue,
        kind: *mut c_int,
        length: *mut usize,
        data: *mut *mut c_void,
        arraybuffer: *mut RawValue,
        byte_offset: *mut usize,
    ) -> Status;
    fn napi_create_buffer(
        env: RawEnv,
        size: usize,
        data: *mut *mut c_void,
        result: *mut RawValue,
    ) -> Status;
    fn napi_create_arraybuffer(
        env: RawEnv,
        byte_length: usize,
        data: *mut *mut c_void,
        result: *mut RawValue,
    ) -> Status;
    fn napi_is_array(env: RawEnv, value: RawValue, result: *mut bool) -> Status;
    fn napi_get_array_length(env: RawEnv, value: RawValue, result: *mut u32) -> Status;
    fn napi_get_element(env: RawEnv, object: RawValue, index: u32, result: *mut RawValue)
        -> Status;
    fn napi_create_array_with_length(env: RawEnv, length: usize, result: *mut RawValue) -> Status;
    fn napi_set_element(env: RawEnv, object: RawValue, index: u32, value: RawValue) -> Status;
    fn napi_create_object(env: RawEnv, result: *mut RawValue) -> Status;
    fn napi_get_null(env: RawEnv, result: *mut RawValue) -> Status;
    fn napi_get_undefined(env: RawEnv, result: *mut RawValue) -> Status;
    fn napi_get_boolean(env: RawEnv, value: bool, result: *mut RawValue) -> Status;
    fn napi_create_double(env: RawEnv, value: f64, result: *mut RawValue) -> Status;
    fn napi_get_value_double(env: RawEnv, value: RawValue, result: *mut f64) -> Status;
    fn napi_create_string_utf8(
        env: RawEnv,
        s: *const c_char,
        length: usize,
        result: *mut RawValue,
    ) -> Status;
    fn napi_throw_error(env: RawEnv, code: *const c_char, msg: *const c_char) -> Status;
    fn napi_run_script(env: RawEnv, script: RawValue, result: *mut RawValue) -> Status;
    fn napi_get_named_property(
        env: RawEnv,
        object: RawValue,
        name: *const c_char,
        result: *mut RawValue,
    ) -> Status;
    fn napi_call_function(
        env: RawEnv,
        recv: RawValue,
        func: RawValue,
        argc: usize,
        argv: *const RawValue,
        result: *mut RawValue,
    ) -> Status;
    fn napi_create_uint32(env: RawEnv, value: u32, result: *mut RawValue) -> Status;
    fn napi_create_reference(
        env: RawEnv,
        value: RawValue,
        initial_refcount: u32,
        result: *mut RawRef,
    ) -> Status;
    fn napi_delete_reference(env: RawEnv, reference: RawRef) -> Status;
    fn napi_get_reference_value(env: RawEnv, reference: RawRef, result: *mut RawValue) -> Status;
    fn napi_get_arraybuffer_info(
        env: RawEnv,
        arraybuffer: RawValue,
        data: *mut *mut c_void,
        byte_length: *mut usize,
    ) -> Status;
    fn napi_set_instance_data(
        env: RawEnv,
        data: *mut c_void,
        finalize_cb: Option<RawFinalize>,
        finalize_hint: *mut c_void,
    ) -> Status;
    fn napi_get_instance_data(env: RawEnv, data: *mut *mut c_void) -> Status;
    fn napi_get_and_clear_last_exception(env: RawEnv, result: *mut RawValue) -> Status;
    fn napi_is_exception_pending(env: RawEnv, result: *mut bool) -> Status;
}

/// A Rust type stored in tagged externals.
///
/// # Safety
/// `TAG` must be unique to the implementing type: [`Env::external`] trusts a
/// matching tag to mean "the external's data is a live `Box<Self>`".
pub unsafe trait Tagged: 'static {
    const TAG: TypeTag;
}

/// A Node-API environment, valid for one callback (`'cb`).
#[derive(Clone, Copy)]
pub struct Env<'cb> {
    raw: RawEnv,
    _callback: PhantomData<&'cb ()>,
}

/// The signature of an export's body: validated arguments in, a value out.
pub type Body = for<'cb> fn(Env<'cb>, &[RawValue]) -> Result<RawValue>;

/// Runs `body` as the implementation of export `name` taking `argc`
/// arguments (fewer is `[invalid_argument]`; extra ones are ignored, as in
/// JS); turns an `Err` into a thrown JS error and returns NULL (`undefined`)
/// in that case.
///
/// # Safety
/// `env` and `info` must be the arguments Node-API passed to the currently
/// running callback, on its thread.
pub unsafe fn callback(
    env: RawEnv,
    info: RawInfo,
    name: &CStr,
    argc: usize,
    body: Body,
) -> RawValue {
    let env = Env {
        raw: env,
        _callback: PhantomData,
    };
    let mut argv: [RawValue; MAX_ARGS] = [null_mut(); MAX_ARGS];
    let mut given = MAX_ARGS;
    let result = (|| {
        // SAFETY: `argv` has room for `given` (= MAX_ARGS) values; Node-API
        // writes at most that many and stores the real count in `given`.
        let st = unsafe {
            napi_get_cb_info(
                env.raw,
                info,
                &mut given,
                argv.as_mut_ptr(),
                null_mut(),
                null_mut(),
            )
        };
        env.check(st, "napi_get_cb_info")?;
        if given < argc {
            let plural = if argc == 1 { "" } else { "s" };
            let name = name.to_str().unwrap_or("function");
            return Err(Error::arg(format!(
                "{name}() needs {argc} argument{plural}, got {given}"
            )));
        }
        let args = argv
            .get(..argc)
            .ok_or_else(|| Error::internal("too many arguments declared"))?;
        body(env, args)
    })();
    match result {
        Ok(value) => value,
        Err(e) => {
            env.throw(&e);
            null_mut()
        }
    }
}

/// Builds the exports object: one function per `(name, callback)` entry.
///
/// # Safety
/// `env` and `exports` must be the arguments of `napi_register_module_v1`.
pub unsafe fn register(
    env: RawEnv,
    exports: RawValue,
    functions: &[(&CStr, RawCallback)],
    name: &str,
) -> RawValue {
    let env = Env {
        raw: env,
        _callback: PhantomData,
    };
    let result = (|| {
        for (fname, f) in functions {
            let mut value = null_mut();
            // SAFETY: `fname` is NUL-terminated; `f` is a valid callback for
            // the life of the process; `value` is a valid out pointer.
            let st = unsafe {
                napi_create_function(
                    env.raw,
                    fname.as_ptr(),
                    usize::MAX,
                    Some(*f),
                    null_mut(),
                    &mut value,
                )
            };
            env.check(st, "napi_create_function")?;
            env.set(exports, fname, value)?;
        }
        env.set(exports, c"name", env.string(name)?)
    })();
    if result.is_ok() && install_instance(&env).is_err() {
        // No output pool then: every output gets its own Buffer.
        let mut ignored = null_mut();
        // SAFETY: valid env and out pointer.
        unsafe { napi_get_and_clear_last_exception(env.raw, &mut ignored) };
    }
    if let Err(e) = result {
        env.throw(&e);
    }
    exports
}

// ---------------------------------------------------------------------------
// Output pool for public outputs (sealed blobs).
//
// Measured on the build VM (node 20): a Buffer of its own costs ~0.8–1.2 µs at
// 92 bytes and 2–4 µs at 16 KB (malloc, BackingStore, ArrayBuffer, Uint8Array,
// SetPrototype, and the GC work per backing store: "external memory
// pressure" scavenges and ArrayBuffer sweeping). That was most of a 64-byte
// seal and half of a 16 KB one. Sealed blobs are public (nonce ‖ ct ‖ tag),
// so, like Node's own `Buffer.allocUnsafe` pool, they may share one backing
// store: they are written into shared ArrayBuffers ("chunks") and returned
// as Buffer views (~0.15 µs each; 64-byte seals went from 1.8 to 1.0 µs,
// 1 KB from 3.3 to 1.5 µs, 16 KB from 7.3 to 6.4 µs, a 16 × 64 B sealBatch
// from 28 to 11 µs). Differences from Node's pool:
// - chunks are zero-filled (`napi_create_arraybuffer`), so `blob.buffer` exposes
//   other sealed blobs and zeros, never stale heap memory;
// - chunks are marked untransferable (`worker_threads.markAsUntransferable`)
//   so transferring one blob's `.buffer` cannot detach its neighbours;
// - plaintexts, keys, MACs and shares never go here: the open batches put
//   their plaintexts in one backing store made for that call alone
//   (`secret_buffer_array`), the other exports keep one Buffer per output.
// Outputs longer than [`LARGE_ITEM_MAX`] get their own Buffer. A retained
// view keeps its whole chunk alive, as with Node's pool: up to 16 KB for a
// blob of at most 2 KB, up to 124 KB for a longer one (see the constants).
//
// Soundness: all outputs of a call are reserved first, then written by
// Rust/OpenSSL code, and only then turned into views. While Rust holds
// slices of chunks, the only JS that runs is `mark` on a brand-new chunk
// (node's `markAsUntransferable`, captured at load: it sets a private symbol),
// and every chunk is held by a handle of the callback. Making a view
// runs JS (`Buffer.from`, which reads `ArrayBuffer.prototype.byteLength`, a
// getter user code could replace), so after that point no Rust slice of a
// chunk exists any more. Between calls JS may detach a chunk (e.g. when
// marking is unavailable), so a chunk's data pointer is never cached: it is
// re-read (`napi_get_arraybuffer_info`) on every reservation, and a detached
// chunk (null data, length 0) is abandoned for a new one.
// ---------------------------------------------------------------------------

/// Chunk size for outputs up to [`SMALL_ITEM_MAX`] bytes: a retained small
/// blob pins at most 16 KB (Node's own pool: 8 KB). Chunk sizes of 8–128 KB
/// measured the same for 64-byte seals.
const SMALL_CHUNK_LEN: usize = 16 * 1024;
const SMALL_ITEM_MAX: usize = 2 * 1024;
/// Chunk size for longer outputs up to [`LARGE_ITEM_MAX`] bytes: 124 KB
/// holds seven 16 KB blobs and stays below glibc's 128 KB mmap threshold
/// (a chunk at or above it is mmap'ed, page-faulted and munmap'ed every
/// time: a 256 KB chunk made 16 KB seals 20% slower than 124 KB).
const LARGE_CHUNK_LEN: usize = 124 * 1024;
const LARGE_ITEM_MAX: usize = LARGE_CHUNK_LEN / 4;
/// Outputs start at multiples of 8 within a chunk (as in Node's pool).
const POOL_ALIGN: usize = 8;
/// Items per call of the `views` helper (3 arguments each; bounded so that
/// huge batches never hit V8's argument-count limits).
const VIEWS_PER_CALL: usize = 128;

/// `view(ab, offset, length)` → `Buffer.from(ab, offset, length)`, a Buffer
/// over part of `ab` (~0.05 µs in JS; `Reflect.construct(Uint8Array, …,
/// newTarget)` took 0.8 µs); `views(out, start, ab, offset, length, …)`
/// stores one such view per triple into `out[start…]` (a triple with a
/// negative offset stores its first value as is), so a batch costs one call
/// into JS per [`VIEWS_PER_CALL`] items instead of one per item;
/// `mark(ab)` → `markAsUntransferable(ab)` (a no-op where unavailable).
/// `Buffer`, `Buffer.from` and the marker are captured at load.
const HELPERS_JS: &str = r#"(() => {
  'use strict';
  const B = Buffer;
  const from = B.from;
  let mark = () => {};
  try {
    const wt = process.getBuiltinModule?.('node:worker_threads');
    if (typeof wt?.markAsUntransferable === 'function') mark = wt.markAsUntransferable;
  } catch {}
  return {
    view: (ab, offset, length) => from.call(B, ab, offset, length),
    views: (out, start, ...parts) => {
      for (let i = start, j = 0; j < parts.length; i++, j += 3) {
        const offset = parts[j + 1];
        out[i] = offset < 0 ? parts[j] : from.call(B, parts[j], offset, parts[j + 2]);
      }
    },
    mark: (ab) => { mark(ab); },
  };
})()"#;

/// Per-env state (Node-API instance data): the helpers and the current chunks.
struct Instance {
    view: RawRef,
    views: RawRef,
    mark: RawRef,
    /// Current chunk for outputs up to [`SMALL_ITEM_MAX`].
    small: RefCell<Option<Chunk>>,
    /// Current chunk for longer outputs up to [`LARGE_ITEM_MAX`].
    large: RefCell<Option<Chunk>>,
}

struct Chunk {
    /// Strong reference to the chunk's ArrayBuffer.
    buffer: RawRef,
    len: usize,
    /// Bytes handed out (aligned); the rest is zeros.
    used: usize,
}

/// Where an output of [`Env::public_buffer_array`] or
/// [`Env::secret_buffer_array`] lives: a value of its own (a Buffer, or null
/// for a failed item), or part of a shared ArrayBuffer to make a view of.
enum Place {
    Own(RawValue),
    View {
        buffer: RawValue,
        offset: usize,
        len: usize,
    },
}

fn install_instance(env: &Env<'_>) -> Result<()> {
    let source = env.string(HELPERS_JS)?;
    let mut helpers = null_mut();
    // SAFETY: valid env; `source` is a JS string; valid out pointer.
    let st = unsafe { napi_run_script(env.raw, source, &mut helpers) };
    env.check(st, "napi_run_script")?;
    let view = env.new_ref(env.get(helpers, c"view")?)?;
    let views = env.new_ref(env.get(helpers, c"views")?)?;
    let mark = env.new_ref(env.get(helpers, c"mark")?)?;
    let data = Box::into_raw(Box::new(Instance {
        view,
        views,
        mark,
        small: RefCell::new(None),
        large: RefCell::new(None),
    }));
    // SAFETY: `data` is a valid Box pointer; on success Node-API owns it and
    // `finalize_instance` reclaims it once, at env teardown.
    let st = unsafe {
        napi_set_instance_data(env.raw, data.cast(), Some(finalize_instance), null_mut())
    };
    if st != NAPI_OK {
        // SAFETY: not installed, so ownership never left us.
        drop(unsafe { Box::from_raw(data) });
        return Err(Error::internal("napi_set_instance_data failed"));
    }
    Ok(())
}

/// Drops the [`Instance`] at env teardown. Its references are left to
/// Node-API, which deletes an env's remaining references during teardown.
unsafe extern "C" fn finalize_instance(_env: RawEnv, data: *mut c_void, _hint: *mut c_void) {
    if !data.is_null() {
        // SAFETY: `data` is the Box<Instance> given to napi_set_instance_data;
        // Node-API calls this exactly once.
        drop(unsafe { Box::from_raw(data.cast::<Instance>()) });
    }
}

fn align_up(n: usize) -> usize {
    n.div_ceil(POOL_ALIGN) * POOL_ALIGN
}

impl<'cb> Env<'cb> {
    fn check(&self, status: Status, what: &str) -> Result<()> {
        if status == NAPI_OK {
            Ok(())
        } else {
            Err(Error::internal(format!(
                "Node-API call {what} failed (status {status})"
            )))
        }
    }

    fn exception_pending(&self) -> bool {
        let mut pending = false;
        // SAFETY: valid env (see `callback`) and out pointer.
        let st = unsafe { napi_is_exception_pending(self.raw, &mut pending) };
        st == NAPI_OK && pending
    }

    /// Throws `e` as `Error("[code] message")` with `error.code = code`,
    /// unless a JS exception is already pending.
    fn throw(&self, e: &Error) {
        if self.exception_pending() {
            return;
        }
        let code = CString::new(e.code).unwrap_or_default();
        let message = CString::new(format!("[{}] {}", e.code, e.message).replace('\0', " "))
            .unwrap_or_default();
        // SAFETY: valid env; both strings are NUL-terminated and outlive the call.
        unsafe { napi_throw_error(self.raw, code.as_ptr(), message.as_ptr()) };
    }

    fn typeof_(&self, value: RawValue) -> Result<c_int> {
        let mut t: c_int = -1;
        // SAFETY: valid env and out pointer; any napi_value is accepted.
        let st = unsafe { napi_typeof(self.raw, value, &mut t) };
        self.check(st, "napi_typeof")?;
        Ok(t)
    }

    /// Pointer and length of a Uint8Array (Buffer included) or
    /// Uint8ClampedArray; `None` for any other value.
    fn typed_bytes(&self, value: RawValue) -> Result<Option<(*mut u8, usize)>> {
        self.typed_view(value, &[TA_UINT8, TA_UINT8_CLAMPED])
    }

    /// Pointer and element count of a typed array whose element type is one
    /// of `kinds`; `None` for any other value.
    fn typed_view(&self, value: RawValue, kinds: &[c_int]) -> Result<Option<(*mut u8, usize)>> {
        let mut is = false;
        // SAFETY: valid env and out pointer.
        let st = unsafe { napi_is_typedarray(self.raw, value, &mut is) };
        self.check(st, "napi_is_typedarray")?;
        if !is {
            return Ok(None);
        }
        let (mut kind, mut len, mut data, mut buffer, mut offset) =
            (-1, 0usize, null_mut(), null_mut(), 0usize);
        // SAFETY: `value` is a typed array; all out pointers are valid.
        let st = unsafe {
            napi_get_typedarray_info(
                self.raw,
                value,
                &mut kind,
                &mut len,
                &mut data,
                &mut buffer,
                &mut offset,
            )
        };
        self.check(st, "napi_get_typedarray_info")?;
        if !kinds.contains(&kind) {
            return Ok(None);
        }
        // Node-API's `data` already includes `byte_offset` (it points at the
        // view's first element), so the offset is not added again.
        if data.is_null() && len != 0 {
            return Err(Error::internal("typed array without data"));
        }
        // A view of a SharedArrayBuffer is refused: other threads may write it
        // while this call reads or writes it (a data race, and a way to have a
        // tag computed over bytes that change underneath).
        let mut plain = false;
        // SAFETY: valid env; `buffer` is the view's backing buffer; valid out pointer.
        let st = unsafe { napi_is_arraybuffer(self.raw, buffer, &mut plain) };
        self.check(st, "napi_is_arraybuffer")?;
        if !plain {
            return Err(Error::arg("views of a SharedArrayBuffer are not accepted"));
        }
        Ok(Some((data.cast::<u8>(), len)))
    }

    /// True for a Uint8Array (Buffer included) or Uint8ClampedArray. Unlike
    /// [`typed_bytes`](Self::typed_bytes) it asks only for the element type,
    /// so Node-API does not look up (or materialise) the backing store.
    fn is_byte_array(&self, value: RawValue) -> Result<bool> {
        let mut is = false;
        // SAFETY: valid env and out pointer.
        let st = unsafe { napi_is_typedarray(self.raw, value, &mut is) };
        self.check(st, "napi_is_typedarray")?;
        if !is {
            return Ok(false);
        }
        let mut kind = -1;
        // SAFETY: `value` is a typed array; the only non-NULL out pointer is
        // valid (Node-API skips NULL ones).
        let st = unsafe {
            napi_get_typedarray_info(
                self.raw,
                value,
                &mut kind,
                null_mut(),
                null_mut(),
                null_mut(),
                null_mut(),
            )
        };
        self.check(st, "napi_get_typedarray_info")?;
        Ok(kind == TA_UINT8 || kind == TA_UINT8_CLAMPED)
    }

    fn typed_bytes_or(
        &self,
        value: RawValue,
        what: impl FnOnce() -> String,
    ) -> Result<(*mut u8, usize)> {
        self.typed_bytes(value)?
            .ok_or_else(|| Error::arg(format!("{} must be a Uint8Array or Buffer", what())))
    }

    /// The bytes of a Uint8Array argument, valid for this callback.
    pub fn bytes(&self, value: RawValue, what: &str) -> Result<&'cb [u8]> {
        self.bytes_lazy(value, || what.to_owned())
    }

    fn bytes_lazy(&self, value: RawValue, what: impl FnOnce() -> String) -> Result<&'cb [u8]> {
        let (data, len) = self.typed_bytes_or(value, what)?;
        if len == 0 {
            return Ok(&[]);
        }
        // SAFETY: Node-API reported `len` bytes at `data`, the view's live
        // backing store (materialised off-heap by get_typedarray_info, so it
        // does not move). The view is held by this callback's handle scope and
        // no JS runs until the callback returns, so the bytes stay valid for 'cb.
        Ok(unsafe { std::slice::from_raw_parts(data, len) })
    }

    /// The elements of a Uint32Array argument, copied (a few per call).
    pub fn u32s(&self, value: RawValue, what: &str) -> Result<Vec<u32>> {
        let (data, len) = self
            .typed_view(value, &[TA_UINT32])?
            .ok_or_else(|| Error::arg(format!("{what} must be a Uint32Array")))?;
        if len == 0 {
            return Ok(Vec::new());
        }
        let bytes = len
            .checked_mul(4)
            .ok_or_else(|| Error::internal("Uint32Array length"))?;
        // SAFETY: Node-API reported `len` 4-byte elements at `data`, the
        // view's live, non-shared backing store (see `bytes`); read as bytes,
        // so no alignment is assumed, and copied before any JS runs.
        let raw = unsafe { std::slice::from_raw_parts(data, bytes) };
        Ok(raw
            .chunks_exact(4)
            .map(|c| u32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }

    /// The writable bytes of a Uint8Array argument as a raw range, valid for
    /// this callback. Raw (not a slice) so the caller can prove it does not
    /// overlap the other arguments before making a `&mut` of it.
    pub fn bytes_out(&self, value: RawValue, what: &str) -> Result<(*mut u8, usize)> {
        self.typed_bytes_or(value, || what.to_owned())
    }

    /// Zero-fills a Uint8Array argument in place.
    pub fn zero_fill(&self, value: RawValue, what: &str) -> Result<()> {
        let (data, len) = self.typed_bytes_or(value, || what.to_owned())?;
        for i in 0..len {
            // SAFETY: `data..data+len` is the view's backing store (see
            // `bytes`); callers hold no slice of it across this call.
            unsafe { ptr::write_volatile(data.add(i), 0) };
        }
        Ok(())
    }

    /// A new Node Buffer of `len` bytes and a writable view of its contents.
    pub fn new_buffer(&self, len: usize) -> Result<(RawValue, &'cb mut [u8])> {
        let (mut data, mut value) = (null_mut(), null_mut());
        // SAFETY: valid env and out pointers.
        let st = unsafe { napi_create_buffer(self.raw, len, &mut data, &mut value) };
        self.check(st, "napi_create_buffer")?;
        if len == 0 {
            return Ok((value, &mut []));
        }
        if data.is_null() {
            return Err(Error::internal("napi_create_buffer returned no data"));
        }
        // SAFETY: the new buffer owns `len` bytes at `data`, referenced only by
        // `value` (which JS cannot see yet) and this slice; it is kept alive by
        // the callback's handle scope.
        Ok((value, unsafe {
            std::slice::from_raw_parts_mut(data.cast::<u8>(), len)
        }))
    }

    /// Fresh Buffers of the given lengths, each with its own backing store,
    /// plus writable views of them: for secrets (sealed blobs go through
    /// [`public_buffer_array`](Self::public_buffer_array), which may share one).
    pub fn new_buffers(
        &self,
        lens: impl Iterator<Item = usize>,
    ) -> Result<(Vec<RawValue>, Vec<&'cb mut [u8]>)> {
        let mut values = Vec::with_capacity(lens.size_hint().0);
        let mut views = Vec::with_capacity(lens.size_hint().0);
        for len in lens {
            let (v, b) = self.new_buffer(len)?;
            values.push(v);
            views.push(b);
        }
        Ok((values, views))
    }

    /// `[Buffer | null]`: item i is `values[i]` when `ok[i]`, else null.
    pub fn values_or_null(&self, values: &[RawValue], ok: &[bool]) -> Result<RawValue> {
        let null = self.null()?;
        let items: Vec<RawValue> = values
            .iter()
            .zip(ok)
            .map(|(&v, &ok)| if ok { v } else { null })
            .collect();
        self.array(&items)
    }

    /// A new Buffer of `len` bytes for a **public** output (a sealed blob),
    /// written by `fill`; see [`public_buffer_array`](Self::public_buffer_array).
    pub fn public_buffer(
        &self,
        len: usize,
        inputs: &[&[u8]],
        fill: impl FnOnce(&mut [u8]) -> Result<()>,
    ) -> Result<RawValue> {
        let places = self.place_and_fill(&[len], inputs, |outs| match outs {
            [out] => fill(out),
            _ => Err(Error::internal("public_buffer: output count")),
        })?;
        match places.as_slice() {
            [Place::Own(value)] => Ok(*value),
            [Place::View {
                buffer,
                offset,
                len,
            }] => {
                let inst = self
                    .instance()
                    .ok_or_else(|| Error::internal("pool without instance"))?;
                let args = [*buffer, self.uint32(*offset)?, self.uint32(*len)?];
                self.call(inst.view, &args)
            }
            _ => Err(Error::internal("public_buffer: output count")),
        }
    }

    /// A JS array of new Buffers of the given lengths for **public** outputs
    /// (sealed blobs): `fill` writes every output, then the Buffers are made.
    /// Outputs up to [`LARGE_ITEM_MAX`] bytes are views into shared,
    /// zero-filled pool chunks (see the pool notes above); never use this for
    /// secrets or plaintexts. If `fill` fails, the pooled regions are zeroed
    /// again.
    pub fn public_buffer_array(
        &self,
        lens: &[usize],
        inputs: &[&[u8]],
        fill: impl FnOnce(&mut [&mut [u8]]) -> Result<()>,
    ) -> Result<RawValue> {
        let places = self.place_and_fill(lens, inputs, fill)?;
        self.places_array(&places)
    }

    /// A JS array of `places`: own values as they are, views made by the
    /// `views` helper (one call into JS per [`VIEWS_PER_CALL`] items).
    /// Without the helper instance only own values are possible.
    fn places_array(&self, places: &[Place]) -> Result<RawValue> {
        let Some(inst) = self.instance() else {
            let values: Vec<RawValue> = places
                .iter()
                .map(|p| match p {
                    Place::Own(value) => Ok(*value),
                    Place::View { .. } => Err(Error::internal("view without instance")),
                })
                .collect::<Result<_>>()?;
            return self.array(&values);
        };
        let mut array = null_mut();
        // SAFETY: valid env and out pointer.
        let st = unsafe { napi_create_array_with_length(self.raw, places.len(), &mut array) };
        self.check(st, "napi_create_array_with_length")?;
        let own_marker = self.number(-1.0)?;
        let zero = self.uint32(0)?;
        for (group, items) in places.chunks(VIEWS_PER_CALL).enumerate() {
            let mut args = Vec::with_capacity(2 + 3 * items.len());
            args.push(array);
            args.push(self.uint32(group * VIEWS_PER_CALL)?);
            for place in items {
                match *place {
                    Place::Own(value) => args.extend([value, own_marker, zero]),
                    Place::View {
                        buffer,
                        offset,
                        len,
                    } => args.extend([buffer, self.uint32(offset)?, self.uint32(len)?]),
                }
            }
            self.call(inst.views, &args)?;
        }
        Ok(array)
    }

    /// A JS array of the **secret** outputs of one call (plaintexts of an
    /// open batch): `fill` writes every output and says which succeeded;
    /// item i is a Buffer of `lens[i]` bytes, or null where `fill` said
    /// false (its region must already be wiped: `Gcm::open` does).
    ///
    /// With two or more outputs they share ONE backing store made for this
    /// call alone, zero-filled first and packed without gaps, so `.buffer`
    /// of a plaintext shows only this call's other plaintexts (the same
    /// caller's, wiped together) and zeros, never another call's data or
    /// stale heap memory; it is never pooled or reused, and it is marked
    /// untransferable as the public chunks are. One Buffer per
    /// output cost a malloc, a BackingStore and GC sweeping each: about a
    /// quarter of a 5-field `dataKeyOpenBatch`. If `fill` fails, or making
    /// the views does, the store is wiped. One output (or no helper instance): a Buffer of its own.
    pub fn secret_buffer_array(
        &self,
        lens: &[usize],
        fill: impl FnOnce(&mut [&mut [u8]]) -> Result<Vec<bool>>,
    ) -> Result<RawValue> {
        let Some(inst) = self.instance().filter(|_| lens.len() > 1) else {
            let (values, mut outs) = self.new_buffers(lens.iter().copied())?;
            let ok = fill(&mut outs)?;
            return self.values_or_null(&values, &ok);
        };
        let total = lens
            .iter()
            .try_fold(0usize, |acc, &l| acc.checked_add(l))
            .filter(|&t| u32::try_from(t).is_ok())
            .ok_or_else(|| Error::arg("outputs too large"))?;
        let (buffer, store) = self.new_buffer(total)?;
        store.fill(0);
        let ok = {
            let mut outs: Vec<&mut [u8]> = Vec::with_capacity(lens.len());
            let mut rest = &mut *store;
            for &len in lens {
                let (head, tail) = std::mem::take(&mut rest).split_at_mut(len);
                outs.push(head);
                rest = tail;
            }
            match fill(&mut outs) {
                Ok(ok) if ok.len() == lens.len() => ok,
                Ok(_) => {
                    crate::keys::wipe(store);
                    return Err(Error::internal("secret_buffer_array: result count"));
                }
                Err(e) => {
                    crate::keys::wipe(store);
                    return Err(e);
                }
            }
        };
        // No Rust slice of the store exists past this point: JS runs below.
        // Any failure from here on wipes the store (read again: JS may run).
        self.secret_views(buffer, lens, &ok, inst)
            .inspect_err(|_| self.wipe_buffer(buffer))
    }

    /// The views of [`secret_buffer_array`](Self::secret_buffer_array): one
    /// Buffer per successful output over `buffer`'s store (marked
    /// untransferable, like the public chunks), null for the others.
    fn secret_views(
        &self,
        buffer: RawValue,
        lens: &[usize],
        ok: &[bool],
        inst: &Instance,
    ) -> Result<RawValue> {
        let (mut kind, mut len, mut data, mut ab, mut offset) =
            (-1, 0usize, null_mut(), null_mut(), 0usize);
        // SAFETY: `buffer` is the Buffer (a Uint8Array) just made; all out
        // pointers are valid.
        let st = unsafe {
            napi_get_typedarray_info(
                self.raw,
                buffer,
                &mut kind,
                &mut len,
                &mut data,
                &mut ab,
                &mut offset,
            )
        };
        self.check(st, "napi_get_typedarray_info")?;
        self.call(inst.mark, &[ab])?;
        let null = self.null()?;
        let mut at = offset;
        let mut places = Vec::with_capacity(lens.len());
        for (&len, &ok) in lens.iter().zip(ok) {
            places.push(if ok {
                Place::View {
                    buffer: ab,
                    offset: at,
                    len,
                }
            } else {
                Place::Own(null)
            });
            at += len;
        }
        self.places_array(&places)
    }

    /// Wipes the bytes of the Buffer `buffer` (best effort: nothing when it
    /// is no longer a typed array or was detached).
    fn wipe_buffer(&self, buffer: RawValue) {
        if let Ok(Some((data, len))) = self.typed_bytes(buffer) {
            if !data.is_null() && len > 0 {
                // SAFETY: `data`/`len` were just read from the live typed
                // array `buffer` (held by this callback's handle scope); no
                // JS runs while the slice exists.
                crate::keys::wipe(unsafe { std::slice::from_raw_parts_mut(data, len) });
            }
        }
    }

    /// Reserves the outputs (pooled up to [`LARGE_ITEM_MAX`] bytes when the
    /// pool is available, else their own Buffer) and runs `fill` on them.
    ///
    /// A chunk that any of `inputs` lies in (JS can reach a chunk through a
    /// sealed blob's `.buffer` and pass a view of it back as an input) is not
    /// written to: the output goes to a fresh chunk, so an output slice never
    /// aliases an input. No JS runs while the slices live: fresh chunks are
    /// marked untransferable only after `fill`.
    fn place_and_fill(
        &self,
        lens: &[usize],
        inputs: &[&[u8]],
        fill: impl FnOnce(&mut [&mut [u8]]) -> Result<()>,
    ) -> Result<Vec<Place>> {
        let instance = self.instance();
        let mut places = Vec::with_capacity(lens.len());
        let mut fresh_chunks = Vec::new();
        {
            let mut outs: Vec<&'cb mut [u8]> = Vec::with_capacity(lens.len());
            for &len in lens {
                match instance {
                    Some(inst) if len > 0 && len <= LARGE_ITEM_MAX => {
                        let (buffer, data, offset, fresh) = self.reserve(inst, len, inputs)?;
                        if fresh {
                            fresh_chunks.push(buffer);
                        }
                        // SAFETY: `data` is the live backing store of `buffer`
                        // (just read from it; held by a handle of this callback,
                        // and no JS runs before the slices are dropped at the
                        // end of this block). `reserve` guarantees `offset + len
                        // <=` the chunk's length, never hands out overlapping
                        // regions, and never a chunk that holds any input.
                        outs.push(unsafe { std::slice::from_raw_parts_mut(data.add(offset), len) });
                        places.push(Place::View {
                            buffer,
                            offset,
                            len,
                        });
                    }
                    _ => {
                        let (value, out) = self.new_buffer(len)?;
                        outs.push(out);
                        places.push(Place::Own(value));
                    }
                }
            }
            if let Err(e) = fill(&mut outs) {
                for (out, place) in outs.iter_mut().zip(&places) {
                    if matches!(place, Place::View { .. }) {
                        crate::keys::wipe(out);
                    }
                }
                return Err(e);
            }
        }
        if let Some(inst) = instance {
            for buffer in fresh_chunks {
                self.call(inst.mark, &[buffer])?;
            }
        }
        Ok(places)
    }

    fn instance(&self) -> Option<&'cb Instance> {
        let mut data = null_mut();
        // SAFETY: valid env and out pointer.
        let st = unsafe { napi_get_instance_data(self.raw, &mut data) };
        if st != NAPI_OK || data.is_null() {
            return None;
        }
        // SAFETY: only `install_instance` sets this env's instance data, to a
        // Box<Instance> that lives until env teardown (after every callback).
        Some(unsafe { &*data.cast::<Instance>() })
    }

    /// Reserves `len` (<= [`LARGE_ITEM_MAX`]) bytes in the current chunk of
    /// its size class, or in a new chunk if that one is full, was detached, or
    /// holds any of `inputs`: the chunk's ArrayBuffer, its data pointer, the
    /// offset, and whether the chunk is new (the caller marks it after use).
    fn reserve(
        &self,
        inst: &Instance,
        len: usize,
        inputs: &[&[u8]],
    ) -> Result<(RawValue, *mut u8, usize, bool)> {
        let (cell, chunk_len) = if len <= SMALL_ITEM_MAX {
            (&inst.small, SMALL_CHUNK_LEN)
        } else {
            (&inst.large, LARGE_CHUNK_LEN)
        };
        let mut current = cell
            .try_borrow_mut()
            .map_err(|_| Error::internal("output pool busy"))?;
        if let Some(chunk) = current.as_mut() {
            if chunk.used + len <= chunk.len {
                let buffer = self.ref_value(chunk.buffer)?;
                let (data, byte_len) = self.arraybuffer_info(buffer)?;
                let holds_input = inputs
                    .iter()
                    .any(|i| ranges_overlap(data, byte_len, i.as_ptr(), i.len()));
                if !data.is_null() && byte_len == chunk.len && !holds_input {
                    let offset = chunk.used;
                    chunk.used = align_up(offset + len).min(chunk.len);
                    return Ok((buffer, data, offset, false));
                }
            }
        }
        let (buffer, data) = self.new_arraybuffer(chunk_len)?;
        let reference = self.new_ref(buffer)?;
        let fresh = Chunk {
            buffer: reference,
            len: chunk_len,
            used: align_up(len).min(chunk_len),
        };
        if let Some(old) = current.replace(fresh) {
            // SAFETY: `old.buffer` is a live reference created by `new_ref`
            // and deleted only here. Views keep the old chunk alive.
            unsafe { napi_delete_reference(self.raw, old.buffer) };
        }
        Ok((buffer, data, 0, true))
    }

    /// A new zero-filled ArrayBuffer of `len` (> 0) bytes and its data.
    fn new_arraybuffer(&self, len: usize) -> Result<(RawValue, *mut u8)> {
        let (mut data, mut value) = (null_mut(), null_mut());
        // SAFETY: valid env and out pointers. `napi_create_arraybuffer` is
        // `ArrayBuffer::New`, which node's allocator zero-fills.
        let st = unsafe { napi_create_arraybuffer(self.raw, len, &mut data, &mut value) };
        self.check(st, "napi_create_arraybuffer")?;
        if data.is_null() {
            return Err(Error::internal("napi_create_arraybuffer returned no data"));
        }
        Ok((value, data.cast::<u8>()))
    }

    fn uint32(&self, n: usize) -> Result<RawValue> {
        let n = u32::try_from(n).map_err(|_| Error::internal("value exceeds u32"))?;
        let mut v = null_mut();
        // SAFETY: valid env and out pointer.
        let st = unsafe { napi_create_uint32(self.raw, n, &mut v) };
        self.check(st, "napi_create_uint32")?;
        Ok(v)
    }

    /// Calls the function held by `func` with `this` = undefined.
    fn call(&self, func: RawRef, args: &[RawValue]) -> Result<RawValue> {
        let f = self.ref_value(func)?;
        let this = self.undefined()?;
        let mut result = null_mut();
        // SAFETY: valid env; `f` is a function, `args` holds `args.len()`
        // valid values; valid out pointer.
        let st = unsafe {
            napi_call_function(self.raw, this, f, args.len(), args.as_ptr(), &mut result)
        };
        self.check(st, "napi_call_function")?;
        Ok(result)
    }

    fn new_ref(&self, value: RawValue) -> Result<RawRef> {
        let mut r = null_mut();
        // SAFETY: valid env and value; valid out pointer.
        let st = unsafe { napi_create_reference(self.raw, value, 1, &mut r) };
        self.check(st, "napi_create_reference")?;
        Ok(r)
    }

    fn ref_value(&self, reference: RawRef) -> Result<RawValue> {
        let mut v = null_mut();
        // SAFETY: `reference` is a live strong reference of this env.
        let st = unsafe { napi_get_reference_value(self.raw, reference, &mut v) };
        self.check(st, "napi_get_reference_value")?;
        if v.is_null() {
            return Err(Error::internal("reference without value"));
        }
        Ok(v)
    }

    fn arraybuffer_info(&self, buffer: RawValue) -> Result<(*mut u8, usize)> {
        let (mut data, mut len) = (null_mut(), 0usize);
        // SAFETY: `buffer` is an ArrayBuffer; valid out pointers.
        let st = unsafe { napi_get_arraybuffer_info(self.raw, buffer, &mut data, &mut len) };
        self.check(st, "napi_get_arraybuffer_info")?;
        Ok((data.cast::<u8>(), len))
    }

    fn get(&self, object: RawValue, name: &CStr) -> Result<RawValue> {
        let mut v = null_mut();
        // SAFETY: valid env; `name` is NUL-terminated; valid out pointer.
        let st = unsafe { napi_get_named_property(self.raw, object, name.as_ptr(), &mut v) };
        self.check(st, "napi_get_named_property")?;
        Ok(v)
    }

    /// The length of a JS array argument; `[invalid_argument]` for a non-array.
    pub fn array_len(&self, value: RawValue, what: &str) -> Result<u32> {
        let mut is = false;
        // SAFETY: valid env and out pointer.
        let st = unsafe { napi_is_array(self.raw, value, &mut is) };
        self.check(st, "napi_is_array")?;
        if !is {
            return Err(Error::arg(format!("{what} must be an array")));
        }
        let mut len: u32 = 0;
        // SAFETY: `value` is an array; valid out pointer.
        let st = unsafe { napi_get_array_length(self.raw, value, &mut len) };
        self.check(st, "napi_get_array_length")?;
        Ok(len)
    }

    /// The elements of a JS array argument of Uint8Arrays. A non-array is
    /// `[invalid_argument]`; an element that is not a Uint8Array fails at once
    /// with `elem_code`. Reading elements may run getters, so call this before
    /// taking any byte slice.
    pub fn array_items(
        &self,
        value: RawValue,
        what: &str,
        elem_code: &'static str,
    ) -> Result<Vec<RawValue>> {
        let len = self.array_len(value, what)?;
        let mut items = Vec::with_capacity((len as usize).min(1 << 16));
        for i in 0..len {
            let mut item = null_mut();
            // SAFETY: valid env, object and out pointer.
            let st = unsafe { napi_get_element(self.raw, value, i, &mut item) };
            self.check(st, "napi_get_element")?;
            if !self.is_byte_array(item)? {
                return Err(Error::new(
                    elem_code,
                    format!("{what}[{i}] must be a Uint8Array or Buffer"),
                ));
            }
            items.push(item);
        }
        Ok(items)
    }

    /// The bytes of every element of `items` (from [`array_items`](Self::array_items)).
    pub fn bytes_list(&self, items: &[RawValue], what: &str) -> Result<Vec<&'cb [u8]>> {
        let mut out = Vec::with_capacity(items.len());
        for (i, &v) in items.iter().enumerate() {
            out.push(self.bytes_lazy(v, || format!("{what}[{i}]"))?);
        }
        Ok(out)
    }

    /// A new JS array holding `items`.
    pub fn array(&self, items: &[RawValue]) -> Result<RawValue> {
        let mut arr = null_mut();
        // SAFETY: valid env and out pointer.
        let st = unsafe { napi_create_array_with_length(self.raw, items.len(), &mut arr) };
        self.check(st, "napi_create_array_with_length")?;
        for (i, &item) in items.iter().enumerate() {
            let index = u32::try_from(i).map_err(|_| Error::arg("too many items"))?;
            // SAFETY: valid env, array and value.
            let st = unsafe { napi_set_element(self.raw, arr, index, item) };
            self.check(st, "napi_set_element")?;
        }
        Ok(arr)
    }

    /// A plain object with the given properties.
    pub fn object(&self, props: &[(&CStr, RawValue)]) -> Result<RawValue> {
        let mut obj = null_mut();
        // SAFETY: valid env and out pointer.
        let st = unsafe { napi_create_object(self.raw, &mut obj) };
        self.check(st, "napi_create_object")?;
        for (name, value) in props {
            self.set(obj, name, *value)?;
        }
        Ok(obj)
    }

    fn set(&self, obj: RawValue, name: &CStr, value: RawValue) -> Result<()> {
        // SAFETY: valid env; `name` is NUL-terminated.
        let st = unsafe { napi_set_named_property(self.raw, obj, name.as_ptr(), value) };
        self.check(st, "napi_set_named_property")
    }

    pub fn null(&self) -> Result<RawValue> {
        let mut v = null_mut();
        // SAFETY: valid env and out pointer.
        self.check(unsafe { napi_get_null(self.raw, &mut v) }, "napi_get_null")?;
        Ok(v)
    }

    pub fn undefined(&self) -> Result<RawValue> {
        let mut v = null_mut();
        // SAFETY: valid env and out pointer.
        let st = unsafe { napi_get_undefined(self.raw, &mut v) };
        self.check(st, "napi_get_undefined")?;
        Ok(v)
    }

    pub fn boolean(&self, b: bool) -> Result<RawValue> {
        let mut v = null_mut();
        // SAFETY: valid env and out pointer.
        let st = unsafe { napi_get_boolean(self.raw, b, &mut v) };
        self.check(st, "napi_get_boolean")?;
        Ok(v)
    }

    pub fn number(&self, n: f64) -> Result<RawValue> {
        let mut v = null_mut();
        // SAFETY: valid env and out pointer.
        let st = unsafe { napi_create_double(self.raw, n, &mut v) };
        self.check(st, "napi_create_double")?;
        Ok(v)
    }

    pub fn string(&self, s: &str) -> Result<RawValue> {
        let mut v = null_mut();
        // SAFETY: `s` is valid UTF-8 of `s.len()` bytes (no NUL needed with an
        // explicit length).
        let st = unsafe { napi_create_string_utf8(self.raw, s.as_ptr().cast(), s.len(), &mut v) };
        self.check(st, "napi_create_string_utf8")?;
        Ok(v)
    }

    /// True when `value` is `null`.
    pub fn typeof_is_null(&self, value: RawValue) -> Result<bool> {
        Ok(self.typeof_(value)? == VT_NULL)
    }

    /// A JS number's value, or NaN for any other type.
    pub fn number_or_nan(&self, value: RawValue) -> Result<f64> {
        if self.typeof_(value)? != VT_NUMBER {
            return Ok(f64::NAN);
        }
        let mut n = 0.0;
        // SAFETY: `value` is a number; valid out pointer.
        let st = unsafe { napi_get_value_double(self.raw, value, &mut n) };
        self.check(st, "napi_get_value_double")?;
        Ok(n)
    }

    /// Moves `value` into a new external tagged with `T::TAG`; the external's
    /// finalizer drops the box when JS collects it.
    pub fn new_external<T: Tagged>(&self, value: Box<T>) -> Result<RawValue> {
        let data = Box::into_raw(value);
        let mut ext = null_mut();
        // SAFETY: `data` is a valid Box pointer. On success the external owns
        // it and `finalize_box::<T>` reclaims it exactly once.
        let st = unsafe {
            napi_create_external(
                self.raw,
                data.cast(),
                Some(finalize_box::<T>),
                null_mut(),
                &mut ext,
            )
        };
        if st != NAPI_OK {
            // SAFETY: creation failed, so ownership never left us.
            drop(unsafe { Box::from_raw(data) });
            return Err(Error::internal(format!(
                "Node-API call napi_create_external failed (status {st})"
            )));
        }
        // SAFETY: `ext` is a fresh external; the tag outlives the call.
        let st = unsafe { napi_type_tag_object(self.raw, ext, &T::TAG) };
        self.check(st, "napi_type_tag_object")?;
        Ok(ext)
    }

    /// The `T` inside an external made by [`new_external`](Self::new_external);
    /// an error with `err_code` for anything else (other types, foreign
    /// externals, plain objects).
    pub fn external<T: Tagged>(
        &self,
        value: RawValue,
        err_code: &'static str,
        what: &str,
    ) -> Result<&'cb T> {
        let wrong = || {
            Error::new(
                err_code,
                format!("{what} is not a key handle of this module"),
            )
        };
        if self.typeof_(value)? != VT_EXTERNAL {
            return Err(wrong());
        }
        let mut tagged = false;
        // SAFETY: valid env, value and out pointer; the tag outlives the call.
        let st = unsafe { napi_check_object_type_tag(self.raw, value, &T::TAG, &mut tagged) };
        if st != NAPI_OK || !tagged {
            return Err(wrong());
        }
        let mut data = null_mut();
        // SAFETY: `value` is an external; valid out pointer.
        let st = unsafe { napi_get_value_external(self.raw, value, &mut data) };
        self.check(st, "napi_get_value_external")?;
        if data.is_null() {
            return Err(wrong());
        }
        // SAFETY: only `new_external::<T>` attaches `T::TAG` (unique per
        // `Tagged` contract), to an external whose data is a live Box<T>. The
        // external is reachable from this callback's scope, so its finalizer
        // cannot run before 'cb ends. Only shared references are created.
        Ok(unsafe { &*data.cast::<T>() })
    }
}

/// Finalizer of externals made by [`Env::new_external`]: drops the `Box<T>`.
unsafe extern "C" fn finalize_box<T>(_env: RawEnv, data: *mut c_void, _hint: *mut c_void) {
    if !data.is_null() {
        // SAFETY: `data` is the Box<T> pointer given to napi_create_external;
        // Node-API calls the finalizer exactly once, after the last JS reference.
        drop(unsafe { Box::from_raw(data.cast::<T>()) });
    }
}

/// True when `[a, a+alen)` and `[b, b+blen)` share a byte.
pub fn ranges_overlap(a: *const u8, alen: usize, b: *const u8, blen: usize) -> bool {
    let (a, b) = (a as usize, b as usize);
    alen > 0 && blen > 0 && a < b.saturating_add(blen) && b < a.saturating_add(alen)
}
