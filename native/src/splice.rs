//! What the two splice calls ([`seal_splice`](crate::seal_splice),
//! [`open_splice`](crate::open_splice)) share: their limits, the checks of
//! their spans and contexts, the AADs of their items, and cutting and
//! filling buffers by lengths. `call` names the export in error messages.

use crate::error::{Error, Result};

/// Longest context, as the field AAD allows (SPEC §5.3).
pub const MAX_CONTEXT: usize = 4096;

/// Longest plaintext of one item, as a field envelope allows (SPEC §5: 1 MiB).
pub const MAX_PLAINTEXT: usize = 1 << 20;

/// The fixed parts of every replacement text and AAD of a call.
pub struct SpliceHeads<'a> {
    /// Start of every AAD (for fields: the field domain and header).
    pub aad_head: &'a [u8],
    /// Written after the opening quote (for fields: `okcm:1:`).
    pub text_head: &'a [u8],
    /// First bytes of every encoded envelope (for fields: the field header).
    pub header: &'a [u8],
}

/// The byte ranges of `spans` (`width` numbers per item, `width / 2` ranges,
/// the value first), each checked to lie inside a body of `body_len` bytes,
/// the values ascending and not overlapping, at least one item.
/// `[invalid_argument]` otherwise.
pub fn checked_ranges(
    spans: &[u32],
    width: usize,
    body_len: usize,
    call: &str,
) -> Result<Vec<(usize, usize)>> {
    if spans.is_empty() || spans.len() % width != 0 {
        return Err(Error::arg(format!(
            "{call}: spans must hold {width} numbers per item, at least one item"
        )));
    }
    // Messages as each call has always written them.
    let values = if width == 2 { "spans" } else { "value spans" };
    let mut ranges = Vec::with_capacity(spans.len() / 2);
    let mut previous_end = 0;
    for item in spans.chunks_exact(width) {
        for (k, r) in item.chunks_exact(2).enumerate() {
            let (s, e) = (r[0] as usize, r[1] as usize);
            if s > e || e > body_len {
                return Err(Error::arg(format!("{call}: a span lies outside the body")));
            }
            if k == 0 {
                if s < previous_end {
                    return Err(Error::arg(format!(
                        "{call}: {values} must be in order and must not overlap"
                    )));
                }
                previous_end = e;
            }
            ranges.push((s, e));
        }
    }
    Ok(ranges)
}

/// One context per item (`n`), each at most [`MAX_CONTEXT`] bytes.
pub fn check_contexts(contexts: &[&[u8]], n: usize, width: usize, call: &str) -> Result<()> {
    if contexts.len() != n {
        return Err(Error::arg(format!(
            "{call}: one context per item (spans.length / {width})"
        )));
    }
    if contexts.iter().any(|c| c.len() > MAX_CONTEXT) {
        return Err(Error::arg(format!(
            "{call}: a context is longer than 4096 bytes"
        )));
    }
    Ok(())
}

/// Every item's AAD, `aad_head ‖ u32be(len context) ‖ context`, in one
/// buffer, with their lengths (cut it with [`split_lens`]).
pub fn item_aads(aad_head: &[u8], contexts: &[&[u8]]) -> (Vec<u8>, Vec<usize>) {
    let lens: Vec<usize> = contexts
        .iter()
        .map(|c| aad_head.len() + 4 + c.len())
        .collect();
    let mut buf = Vec::with_capacity(lens.iter().sum());
    for c in contexts {
        buf.extend_from_slice(aad_head);
        buf.extend_from_slice(&(c.len() as u32).to_be_bytes());
        buf.extend_from_slice(c);
    }
    (buf, lens)
}

/// `body[start..end]`; `[invalid_argument]` outside it.
pub fn slice(body: &[u8], (start, end): (usize, usize)) -> Result<&[u8]> {
    body.get(start..end)
        .ok_or_else(|| Error::arg("splice: a span lies outside the body"))
}

/// Copies `src` into `out` at `at`; returns the index after it.
pub fn copy_at(out: &mut [u8], at: usize, src: &[u8]) -> Result<usize> {
    let end = at + src.len();
    out.get_mut(at..end)
        .ok_or_else(|| Error::internal("splice: output length"))?
        .copy_from_slice(src);
    Ok(end)
}

/// `buf` cut into consecutive slices of `lens` (which must sum to its length).
pub fn split_lens<'a>(mut buf: &'a [u8], lens: &[usize]) -> Vec<&'a [u8]> {
    lens.iter()
        .map(|&n| {
            let (head, rest) = buf.split_at(n);
            buf = rest;
            head
        })
        .collect()
}

/// [`split_lens`] for writing.
pub fn split_lens_mut<'a>(mut buf: &'a mut [u8], lens: &[usize]) -> Vec<&'a mut [u8]> {
    lens.iter()
        .map(|&n| {
            let (head, rest) = std::mem::take(&mut buf).split_at_mut(n);
            buf = rest;
            head
        })
        .collect()
}
