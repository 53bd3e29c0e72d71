//! The inverse of [`seal_splice`](crate::seal_splice) for the gateway's
//! response transform: every item's value span of `body` must be exactly
//!
//! ```text
//! '"' ‖ text_head ‖ base64url(header ‖ wrapped data key (60) ‖ nonce ‖ ct ‖ tag) ‖ '"'
//! ```
//!
//! (canonical, unpadded base64url; at most [`MAX_PLAINTEXT`] bytes of
//! plaintext), the data key must unwrap under the KEK with `wrap_aad`, the
//! item must open with AAD `aad_head ‖ u32be(len context) ‖ context`, and its
//! plaintext must be UTF-8. Then the output is `body` with each value span
//! replaced by the JSON string of its plaintext (`"` and `\` escaped, control
//! characters as `\b \t \n \f \r` or `\u00xx`, every other byte as it is:
//! what `JSON.stringify` writes). When any item falls short, nothing is
//! written and the answer is "not done" (`None`): the caller then opens the
//! items one by one with [`aead::data_key_open_batch`] to learn which failed
//! and why. Nothing here says why, so this path cannot disagree with the
//! caller's own checks, only decline.
//!
//! Plaintexts go through one scratch buffer, wiped when dropped.

use crate::aead::{self, EnvelopeItem, OVERHEAD, WRAPPED_LEN};
use crate::base64url;
use crate::error::{Error, Result};
use crate::keys;
use crate::keys::KEY_LEN;
use crate::splice::{self, copy_at, slice, split_lens, split_lens_mut, SpliceHeads, MAX_PLAINTEXT};

/// Value spans from `spans` (2 per item: start, end), checked against a body
/// of `body_len` bytes: inside it, ascending, not overlapping, at least one.
pub fn values_from_spans(spans: &[u32], body_len: usize) -> Result<Vec<(usize, usize)>> {
    splice::checked_ranges(spans, 2, body_len, "dataKeyOpenSplice")
}

/// The plaintexts of every item, opened; wiped on drop.
pub struct Opened {
    /// The plaintexts, one after another.
    scratch: Vec<u8>,
    /// Their lengths.
    pt_lens: Vec<usize>,
}

impl Drop for Opened {
    fn drop(&mut self) {
        keys::wipe(&mut self.scratch);
    }
}

/// Length of the JSON string text of `s` (quotes included).
fn json_string_len(s: &[u8]) -> usize {
    2 + s
        .iter()
        .map(|&c| match c {
            b'"' | b'\\' | 0x08 | 0x09 | 0x0a | 0x0c | 0x0d => 2,
            0..=0x1f => 6,
            _ => 1,
        })
        .sum::<usize>()
}

/// Writes the JSON string text of `s` at the start of `out`; returns its length.
fn write_json_string(s: &[u8], out: &mut [u8]) -> Result<usize> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let n = json_string_len(s);
    let out = out
        .get_mut(..n)
        .ok_or_else(|| Error::internal("dataKeyOpenSplice: output length"))?;
    let mut at = 1;
    out[0] = b'"';
    for &c in s {
        let short = match c {
            b'"' => Some(b'"'),
            b'\\' => Some(b'\\'),
            0x08 => Some(b'b'),
            0x09 => Some(b't'),
            0x0a => Some(b'n'),
            0x0c => Some(b'f'),
            0x0d => Some(b'r'),
            _ => None,
        };
        if let Some(e) = short {
            out[at..at + 2].copy_from_slice(&[b'\\', e]);
            at += 2;
        } else if c < 0x20 {
            out[at..at + 6].copy_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[(c >> 4) as usize],
                HEX[(c & 15) as usize],
            ]);
            at += 6;
        } else {
            out[at] = c;
            at += 1;
        }
    }
    out[at] = b'"';
    Ok(n)
}

/// The base64url text of an item's value span when it has the envelope's
/// shape (quotes, `text_head`, a length a canonical text can have within the
/// bounds); None otherwise.
fn envelope_text<'b>(
    body: &'b [u8],
    (start, end): (usize, usize),
    heads: &SpliceHeads<'_>,
) -> Option<&'b [u8]> {
    let value = body.get(start..end)?;
    let inner = value.strip_prefix(b"\"")?.strip_suffix(b"\"")?;
    let text = inner.strip_prefix(heads.text_head)?;
    let n = base64url::decoded_len(text.len())?;
    let min = heads.header.len() + WRAPPED_LEN + OVERHEAD;
    (min..=min + MAX_PLAINTEXT).contains(&n).then_some(text)
}

/// Opens every item (see the module notes); `Ok(None)` when any falls short.
/// One context per value, each at most 4096 bytes (`[invalid_argument]`).
pub fn open_items(
    kek: &[u8; KEY_LEN],
    wrap_aad: &[u8],
    body: &[u8],
    values: &[(usize, usize)],
    contexts: &[&[u8]],
    heads: &SpliceHeads<'_>,
) -> Result<Option<Opened>> {
    splice::check_contexts(contexts, values.len(), 2, "dataKeyOpenSplice")?;
    let Some(texts) = values
        .iter()
        .map(|&v| envelope_text(body, v, heads))
        .collect::<Option<Vec<&[u8]>>>()
    else {
        return Ok(None);
    };
    // Decode every envelope into one buffer (public bytes), checking its header.
    let env_lens: Vec<usize> = texts
        .iter()
        .map(|t| base64url::decoded_len(t.len()).unwrap_or(0))
        .collect();
    let mut envelopes = vec![0u8; env_lens.iter().sum()];
    for (text, env) in texts.iter().zip(split_lens_mut(&mut envelopes, &env_lens)) {
        if !base64url::decode_into(text, env) || !env.starts_with(heads.header) {
            return Ok(None);
        }
    }
    let (aad_buf, aad_lens) = splice::item_aads(heads.aad_head, contexts);
    let h = heads.header.len();
    let items: Vec<EnvelopeItem<'_>> = split_lens(&envelopes, &env_lens)
        .into_iter()
        .zip(split_lens(&aad_buf, &aad_lens))
        .map(|(env, aad)| EnvelopeItem {
            wrapped_key: &env[h..h + WRAPPED_LEN],
            wrap_aad,
            sealed: &env[h + WRAPPED_LEN..],
            aad,
        })
        .collect();
    let pt_lens: Vec<usize> = env_lens
        .iter()
        .map(|n| n - h - WRAPPED_LEN - OVERHEAD)
        .collect();
    let mut opened = Opened {
        scratch: vec![0u8; pt_lens.iter().sum()],
        pt_lens,
    };
    let ok = {
        let mut outs = split_lens_mut(&mut opened.scratch, &opened.pt_lens);
        aead::data_key_open_batch(kek, &items, &mut outs)?
    };
    if !ok.iter().all(|&o| o) || !opened.plaintexts().all(|p| std::str::from_utf8(p).is_ok()) {
        return Ok(None); // `opened` drops here: wiped.
    }
    Ok(Some(opened))
}

impl Opened {
    fn plaintexts(&self) -> impl Iterator<Item = &[u8]> {
        split_lens(&self.scratch, &self.pt_lens).into_iter()
    }

    /// Length of the output body for `body` and the `values` these items came from.
    pub fn out_len(&self, body_len: usize, values: &[(usize, usize)]) -> Result<usize> {
        let removed: usize = values.iter().map(|&(s, e)| e - s).sum();
        let added: usize = self.plaintexts().map(json_string_len).sum();
        body_len
            .checked_sub(removed)
            .and_then(|n| n.checked_add(added))
            .ok_or_else(|| Error::internal("dataKeyOpenSplice: output length"))
    }

    /// Writes `body` with each value replaced by its plaintext's JSON string
    /// into `out` ([`out_len`](Self::out_len) bytes).
    pub fn write(&self, body: &[u8], values: &[(usize, usize)], out: &mut [u8]) -> Result<()> {
        let mut at = 0;
        let mut from = 0;
        for (&(start, end), pt) in values.iter().zip(self.plaintexts()) {
            at = copy_at(out, at, slice(body, (from, start))?)?;
            let rest = out
                .get_mut(at..)
                .ok_or_else(|| Error::internal("dataKeyOpenSplice: output length"))?;
            at += write_json_string(pt, rest)?;
            from = end;
        }
        at = copy_at(out, at, slice(body, (from, body.len()))?)?;
        if at != out.len() {
            return Err(Error::internal("dataKeyOpenSplice: output length"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seal_splice::{items_from_spans, output_len, seal_splice};

    const HEADER: &[u8] = b"\x01\x04acme\x01k\x00\x00\x00\x07";

    fn heads() -> SpliceHeads<'static> {
        SpliceHeads {
            aad_head: b"okcm/field/v1\0HDR",
            text_head: b"okcm:1:",
            header: HEADER,
        }
    }

    /// `{"a":<v0>,"b":[<v1>,…]}` with string values sealed by seal_splice; answers the sealed body and its value spans.
    fn sealed_doc(
        kek: &[u8; KEY_LEN],
        values: &[&[u8]],
        contexts: &[&[u8]],
    ) -> (Vec<u8>, Vec<(usize, usize)>) {
        let mut body = b"{\"a\":[".to_vec();
        let mut spans = Vec::new();
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            let s = body.len();
            body.push(b'"');
            body.extend_from_slice(v);
            body.push(b'"');
            spans.extend([s, body.len(), s + 1, body.len() - 1].map(|x| x as u32));
        }
        body.extend_from_slice(b"],\"n\":1}");
        let items = items_from_spans(&spans, body.len()).unwrap();
        let sh = heads();
        let mut out = vec![0u8; output_len(body.len(), &items, &sh).unwrap()];
        seal_splice(kek, b"wrap", &body, &items, contexts, &sh, &mut out).unwrap();
        // Find the envelopes again: every "okcm:1:…" string.
        let mut found = Vec::new();
        let mut i = 0;
        while let Some(p) = out[i..].windows(8).position(|w| w == b"\"okcm:1:") {
            let s = i + p;
            let e = s + 1 + out[s + 1..].iter().position(|&c| c == b'"').unwrap() + 1;
            found.push((s, e));
            i = e;
        }
        (out, found)
    }

    fn open_all(
        kek: &[u8; KEY_LEN],
        body: &[u8],
        values: &[(usize, usize)],
        contexts: &[&[u8]],
    ) -> Option<Vec<u8>> {
        let oh = heads();
        let opened = open_items(kek, b"wrap", body, values, contexts, &oh).unwrap()?;
        let mut out = vec![0u8; opened.out_len(body.len(), values).unwrap()];
        opened.write(body, values, &mut out).unwrap();
        Some(out)
    }

    #[test]
    fn opens_what_seal_splice_wrote_back_to_the_original_body() {
        let kek = [9u8; KEY_LEN];
        let values: [&[u8]; 4] = [b"4111 1111", b"", "é✓ unicode".as_bytes(), b"x"];
        let contexts: [&[u8]; 4] = [b"c0", b"", b"c2", b"c3"];
        let (sealed, spans) = sealed_doc(&kek, &values, &contexts);
        assert_eq!(spans.len(), 4);
        let out = open_all(&kek, &sealed, &spans, &contexts).unwrap();
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            "{\"a\":[\"4111 1111\",\"\",\"é✓ unicode\",\"x\"],\"n\":1}"
        );
    }

    #[test]
    fn plaintexts_are_written_as_json_strings() {
        let kek = [3u8; KEY_LEN];
        let raw: &[u8] = b"q\"b\\s/\x08\x09\x0a\x0c\x0d\x00\x1f\x7f";
        let (sealed, spans) = sealed_doc(&kek, &[raw], &[b"c"]);
        let out = open_all(&kek, &sealed, &spans, &[b"c"]).unwrap();
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            "{\"a\":[\"q\\\"b\\\\s/\\b\\t\\n\\f\\r\\u0000\\u001f\x7f\"],\"n\":1}"
        );
    }

    #[test]
    fn declines_any_item_that_falls_short() {
        let kek = [5u8; KEY_LEN];
        let contexts: [&[u8]; 2] = [b"c0", b"c1"];
        let (sealed, spans) = sealed_doc(&kek, &[b"one", b"two"], &contexts);
        assert!(open_all(&kek, &sealed, &spans, &contexts).is_some());
        // Another context, another KEK.
        assert!(open_all(&kek, &sealed, &spans, &[b"c0", b"cX"]).is_none());
        assert!(open_all(&[6u8; KEY_LEN], &sealed, &spans, &contexts).is_none());
        // A value that is not exactly one envelope string.
        let (s1, e1) = spans[1];
        for bad in [(s1 + 1, e1), (s1, e1 - 1), (s1, e1 - 2), (spans[0].0, e1)] {
            let values = [spans[0], bad];
            let r = values_from_spans(
                &[
                    values[0].0 as u32,
                    values[0].1 as u32,
                    bad.0 as u32,
                    bad.1 as u32,
                ],
                sealed.len(),
            );
            if r.is_ok() {
                assert!(
                    open_all(&kek, &sealed, &values, &contexts).is_none(),
                    "{bad:?}"
                );
            }
        }
        // A flipped bit anywhere in the text: header, key, nonce, ciphertext or tag.
        for k in (s1 + 8..e1 - 1).step_by(7) {
            let mut tampered = sealed.clone();
            tampered[k] = if tampered[k] == b'A' { b'B' } else { b'A' };
            assert!(
                open_all(&kek, &tampered, &spans, &contexts).is_none(),
                "at {k}"
            );
        }
        // Another text head.
        let mut other = sealed.clone();
        other[s1 + 6] = b'2';
        assert!(open_all(&kek, &other, &spans, &contexts).is_none());
        // Not UTF-8: sealed under the right context, declined after opening.
        let (bad_utf8, bad_spans) = sealed_doc(&kek, &[b"\xff\xfe"], &[b"c0"]);
        assert!(open_all(&kek, &bad_utf8, &bad_spans, &[b"c0"]).is_none());
    }

    const MUTATIONS: &[u8; 11] = b"\"A_-=\\\x00\xffo:1";

    /// Random bodies, spans and mutations of a sealed body: never a panic
    /// (the crate aborts on one), only an error, a decline or a body.
    #[test]
    fn hostile_inputs_never_panic() {
        let kek = [4u8; KEY_LEN];
        let contexts: [&[u8]; 2] = [b"c0", b"c1"];
        let (sealed, spans) = sealed_doc(&kek, &[b"alpha", b"beta"], &contexts);
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let oh = heads();
        for round in 0..3000 {
            let mut body = sealed.clone();
            // Mutate a few bytes (often inside the envelopes), sometimes truncate.
            for _ in 0..(next() % 4) {
                let i = (next() as usize) % body.len();
                body[i] = MUTATIONS[(next() % 11) as usize];
            }
            if round % 7 == 0 {
                body.truncate((next() as usize) % (body.len() + 1));
            }
            let raw: Vec<u32> = if round % 3 == 0 {
                spans
                    .iter()
                    .flat_map(|&(s, e)| [s as u32, e as u32])
                    .collect()
            } else {
                (0..(next() % 6))
                    .map(|_| (next() % (body.len() as u64 + 3)) as u32)
                    .collect()
            };
            let Ok(values) = values_from_spans(&raw, body.len()) else {
                continue;
            };
            let ctx: Vec<&[u8]> = (0..values.len()).map(|i| contexts[i % 2]).collect();
            if let Ok(Some(opened)) = open_items(&kek, b"wrap", &body, &values, &ctx, &oh) {
                let mut out = vec![0u8; opened.out_len(body.len(), &values).unwrap()];
                opened.write(&body, &values, &mut out).unwrap();
            }
        }
    }

    #[test]
    fn spans_and_contexts_are_checked() {
        assert!(values_from_spans(&[], 10).is_err());
        assert!(values_from_spans(&[1], 10).is_err());
        assert!(values_from_spans(&[0, 11], 10).is_err());
        assert!(values_from_spans(&[3, 2], 10).is_err());
        assert!(values_from_spans(&[4, 6, 5, 8], 10).is_err());
        assert!(values_from_spans(&[4, 6, 0, 2], 10).is_err());
        assert_eq!(
            values_from_spans(&[0, 2, 2, 2, 2, 10], 10).unwrap().len(),
            3
        );
        let oh = heads();
        let kek = [1u8; KEY_LEN];
        assert!(open_items(&kek, b"wrap", b"\"x\"", &[(0, 3)], &[], &oh).is_err());
        let long = vec![0u8; splice::MAX_CONTEXT + 1];
        assert!(open_items(&kek, b"wrap", b"\"x\"", &[(0, 3)], &[&long], &oh).is_err());
        assert!(open_items(&kek, b"wrap", b"\"x\"", &[(0, 3)], &[b""], &oh)
            .unwrap()
            .is_none());
    }
}
