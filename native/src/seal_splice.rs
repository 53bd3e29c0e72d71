//! Envelope encryption of spans of a text body, written straight into a new
//! body: the gateway's request transform in one native call.
//!
//! Item i names two byte ranges of `body`: `value` (the JSON value to
//! replace) and `plaintext` (the bytes to seal; usually inside `value`). One
//! fresh data key is wrapped under the KEK ([`aead::data_key_seal_batch`]),
//! item i is sealed under it with AAD `aad_head ‖ u32be(len context_i) ‖
//! context_i`, and the output is `body` with every `value` range replaced by
//!
//! ```text
//! '"' ‖ text_head ‖ base64url(header ‖ wrapped data key ‖ nonce ‖ ct ‖ tag) ‖ '"'
//! ```
//!
//! (RFC 4648 §5, unpadded). Every other byte is copied as it is. With the
//! envelope's prefix as `text_head` and its field header as `header`, each
//! replacement is the JSON string of a field envelope (SPEC §5), exactly what
//! `serializeEnvelope` writes. Nothing here knows JSON: the caller's scanner
//! chose the ranges. Plaintexts are read in place from `body`, never copied;
//! the AADs and sealed bytes (public) go through one scratch allocation each.

use crate::aead::{self, OVERHEAD, WRAPPED_LEN};
use crate::base64url;
use crate::error::{Error, Result};
use crate::keys::KEY_LEN;
use crate::splice::{self, copy_at, slice, split_lens, split_lens_mut};
pub use crate::splice::{SpliceHeads, MAX_CONTEXT, MAX_PLAINTEXT};

/// One item: byte ranges of the body, `start..end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpliceItem {
    pub value: (usize, usize),
    pub plaintext: (usize, usize),
}

/// Items from `spans` (4 per item: value start, value end, plaintext start,
/// plaintext end), checked against a body of `body_len` bytes: every range
/// inside the body, values in ascending order and not overlapping, at least
/// one item. `[invalid_argument]` otherwise.
pub fn items_from_spans(spans: &[u32], body_len: usize) -> Result<Vec<SpliceItem>> {
    let ranges = splice::checked_ranges(spans, 4, body_len, "dataKeySealSplice")?;
    Ok(ranges
        .chunks_exact(2)
        .map(|r| SpliceItem {
            value: r[0],
            plaintext: r[1],
        })
        .collect())
}

/// Length of the encoded envelope of a plaintext of `len` bytes (before base64url).
fn envelope_len(heads: &SpliceHeads<'_>, len: usize) -> Option<usize> {
    heads
        .header
        .len()
        .checked_add(WRAPPED_LEN)?
        .checked_add(len)?
        .checked_add(OVERHEAD)
}

/// Length of the output body; `[invalid_argument]` when it would overflow.
pub fn output_len(body_len: usize, items: &[SpliceItem], heads: &SpliceHeads<'_>) -> Result<usize> {
    let mut total = body_len;
    for it in items {
        let text = envelope_len(heads, it.plaintext.1 - it.plaintext.0)
            .map(base64url::encoded_len)
            .and_then(|b| b.checked_add(2 + heads.text_head.len()));
        total = text
            .and_then(|t| total.checked_sub(it.value.1 - it.value.0)?.checked_add(t))
            .ok_or_else(|| Error::arg("dataKeySealSplice: output too large"))?;
    }
    Ok(total)
}

/// Seals the items (see the module notes) under a fresh data key wrapped by
/// `kek` with `wrap_aad` and writes the new body into `out`, which must be
/// [`output_len`] bytes. `items` from [`items_from_spans`]; one context per
/// item, each at most [`MAX_CONTEXT`] bytes.
pub fn seal_splice(
    kek: &[u8; KEY_LEN],
    wrap_aad: &[u8],
    body: &[u8],
    items: &[SpliceItem],
    contexts: &[&[u8]],
    heads: &SpliceHeads<'_>,
    out: &mut [u8],
) -> Result<()> {
    splice::check_contexts(contexts, items.len(), 4, "dataKeySealSplice")?;
    if items
        .iter()
        .any(|it| it.plaintext.1 - it.plaintext.0 > MAX_PLAINTEXT)
    {
        return Err(Error::arg(
            "dataKeySealSplice: a plaintext is longer than 1 MiB",
        ));
    }
    if out.len() != output_len(body.len(), items, heads)? {
        return Err(Error::internal("dataKeySealSplice: output length"));
    }
    let (aad_buf, aad_lens) = splice::item_aads(heads.aad_head, contexts);
    let aads = split_lens(&aad_buf, &aad_lens);
    let plaintexts = items
        .iter()
        .map(|it| slice(body, it.plaintext))
        .collect::<Result<Vec<&[u8]>>>()?;
    // Each envelope in place: header ‖ wrapped ‖ sealed, the sealed part written by the batch.
    let env_lens = items
        .iter()
        .map(|it| envelope_len(heads, it.plaintext.1 - it.plaintext.0))
        .collect::<Option<Vec<usize>>>()
        .ok_or_else(|| Error::arg("dataKeySealSplice: output too large"))?;
    let mut envelopes = vec![0u8; env_lens.iter().sum()];
    let prefix = heads.header.len() + WRAPPED_LEN;
    let mut wrapped = [0u8; WRAPPED_LEN];
    {
        let mut sealed_outs: Vec<&mut [u8]> = split_lens_mut(&mut envelopes, &env_lens)
            .into_iter()
            .map(|e| &mut e[prefix..])
            .collect();
        aead::data_key_seal_batch(
            kek,
            wrap_aad,
            &plaintexts,
            &aads,
            &mut wrapped,
            &mut sealed_outs,
        )?;
    }
    let mut at = 0;
    let mut from = 0;
    for (it, env) in items.iter().zip(split_lens_mut(&mut envelopes, &env_lens)) {
        env[..heads.header.len()].copy_from_slice(heads.header);
        env[heads.header.len()..prefix].copy_from_slice(&wrapped);
        at = copy_at(out, at, slice(body, (from, it.value.0))?)?;
        at = copy_at(out, at, b"\"")?;
        at = copy_at(out, at, heads.text_head)?;
        let b64 = base64url::encoded_len(env.len());
        let dst = out
            .get_mut(at..at + b64)
            .ok_or_else(|| Error::internal("dataKeySealSplice: output length"))?;
        base64url::encode_into(env, dst)?;
        at = copy_at(out, at + b64, b"\"")?;
        from = it.value.1;
    }
    at = copy_at(out, at, slice(body, (from, body.len()))?)?;
    if at != out.len() {
        return Err(Error::internal("dataKeySealSplice: output length"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aead::{data_key_open_batch, EnvelopeItem};

    fn b64_decode(text: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; base64url::decoded_len(text.len()).unwrap()];
        assert!(base64url::decode_into(text, &mut out));
        out
    }

    #[test]
    fn spans_are_checked() {
        assert!(items_from_spans(&[], 10).is_err());
        assert!(items_from_spans(&[0, 1, 0], 10).is_err());
        assert!(items_from_spans(&[0, 11, 0, 1], 10).is_err()); // past the end
        assert!(items_from_spans(&[2, 1, 0, 1], 10).is_err()); // reversed
        assert!(items_from_spans(&[0, 1, 5, 4], 10).is_err());
        assert!(items_from_spans(&[4, 6, 4, 6, 5, 8, 5, 8], 10).is_err()); // overlap
        assert!(items_from_spans(&[4, 6, 4, 6, 0, 2, 0, 2], 10).is_err()); // out of order
        let items = items_from_spans(&[0, 2, 1, 1, 2, 2, 2, 2, 2, 10, 3, 9], 10).unwrap();
        assert_eq!(items.len(), 3);
        assert_eq!(items[2].value, (2, 10));
    }

    #[test]
    fn replaces_each_value_with_an_envelope_that_opens() {
        let kek = [7u8; KEY_LEN];
        let body = br#"{"a":"secret one","n":1,"b":"two","c":"","d":12.50}"#;
        let find = |s: &str| {
            let i = body
                .windows(s.len())
                .position(|w| w == s.as_bytes())
                .unwrap();
            (i, i + s.len())
        };
        let (a, b, c, d) = (
            find("\"secret one\""),
            find("\"two\""),
            find("\"\""),
            find("12.50"),
        );
        let spans: Vec<u32> = [a, b, c]
            .iter()
            .flat_map(|&(s, e)| [s, e, s + 1, e - 1])
            .chain([d.0, d.1, d.0, d.1])
            .map(|v| v as u32)
            .collect();
        let items = items_from_spans(&spans, body.len()).unwrap();
        let heads = SpliceHeads {
            aad_head: b"domain|hdr",
            text_head: b"okcm:1:",
            header: b"HDR",
        };
        let contexts: [&[u8]; 4] = [b"ctx-a", b"ctx-b", b"", b"ctx-d"];
        let mut out = vec![0u8; output_len(body.len(), &items, &heads).unwrap()];
        seal_splice(&kek, b"wrap", body, &items, &contexts, &heads, &mut out).unwrap();
        let text = std::str::from_utf8(&out).unwrap();
        // The bytes between the replacements are the body's.
        let parts: Vec<&str> = text.split('"').collect();
        assert_eq!(parts[0], "{");
        assert_eq!(parts[1], "a");
        assert_eq!(parts[2], ":");
        assert!(text.contains(r#"","n":1,"b":"#));
        assert!(text.ends_with("\"}"));
        let envelopes: Vec<&str> = parts
            .iter()
            .copied()
            .filter(|p| p.starts_with("okcm:1:"))
            .collect();
        assert_eq!(envelopes.len(), 4);
        let decoded: Vec<Vec<u8>> = envelopes
            .iter()
            .map(|e| b64_decode(&e.as_bytes()["okcm:1:".len()..]))
            .collect();
        let aads: Vec<Vec<u8>> = contexts
            .iter()
            .map(|c| [&b"domain|hdr"[..], &(c.len() as u32).to_be_bytes(), c].concat())
            .collect();
        let envs: Vec<EnvelopeItem<'_>> = decoded
            .iter()
            .zip(&aads)
            .map(|(d, aad)| {
                assert_eq!(&d[..3], b"HDR");
                EnvelopeItem {
                    wrapped_key: &d[3..3 + WRAPPED_LEN],
                    wrap_aad: b"wrap",
                    sealed: &d[3 + WRAPPED_LEN..],
                    aad,
                }
            })
            .collect();
        // One data key for all items.
        assert!(envs.iter().all(|e| e.wrapped_key == envs[0].wrapped_key));
        let lens: Vec<usize> = envs.iter().map(|e| e.sealed.len() - OVERHEAD).collect();
        let mut bufs: Vec<Vec<u8>> = lens.iter().map(|&n| vec![0u8; n]).collect();
        let mut outs: Vec<&mut [u8]> = bufs.iter_mut().map(|b| b.as_mut_slice()).collect();
        let ok = data_key_open_batch(&kek, &envs, &mut outs).unwrap();
        assert_eq!(ok, vec![true; 4]);
        assert_eq!(bufs[0], b"secret one");
        assert_eq!(bufs[1], b"two");
        assert_eq!(bufs[2], b"");
        assert_eq!(bufs[3], b"12.50");
        // A context is bound: the first item under the second's AAD fails.
        let mut swapped = envs.clone();
        swapped[0].aad = envs[1].aad;
        let mut outs: Vec<&mut [u8]> = bufs.iter_mut().map(|b| b.as_mut_slice()).collect();
        assert!(!data_key_open_batch(&kek, &swapped, &mut outs).unwrap()[0]);
    }

    #[test]
    fn refuses_mismatched_contexts_and_long_contexts() {
        let kek = [1u8; KEY_LEN];
        let body = b"\"x\"";
        let items = items_from_spans(&[0, 3, 1, 2], 3).unwrap();
        let heads = SpliceHeads {
            aad_head: b"",
            text_head: b"",
            header: b"",
        };
        let mut out = vec![0u8; output_len(3, &items, &heads).unwrap()];
        assert!(seal_splice(&kek, b"", body, &items, &[], &heads, &mut out).is_err());
        let long = vec![0u8; MAX_CONTEXT + 1];
        assert!(seal_splice(&kek, b"", body, &items, &[&long], &heads, &mut out).is_err());
        let big = vec![b'x'; MAX_PLAINTEXT + 1];
        let big_items =
            items_from_spans(&[0, big.len() as u32, 0, big.len() as u32], big.len()).unwrap();
        let mut big_out = vec![0u8; output_len(big.len(), &big_items, &heads).unwrap()];
        assert!(seal_splice(&kek, b"", &big, &big_items, &[b"c"], &heads, &mut big_out).is_err());
        assert!(seal_splice(&kek, b"", body, &items, &[b"c"], &heads, &mut out[1..]).is_err());
        seal_splice(&kek, b"", body, &items, &[b"c"], &heads, &mut out).unwrap();
    }
}
