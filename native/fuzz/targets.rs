//! libFuzzer targets for the native crate's readers of hostile bytes: the
//! JSON target scan (request and response bodies), the strict request-head
//! reader and the upstream-answer reader (docs/decisions/0001), the envelope
//! opener of the response transform, base64url, the rule decoder, Shamir
//! share combination (and a split/combine round trip), a token's RSA public
//! key, and key unwrapping.
//!
//! Each target feeds arbitrary bytes to one of them and checks its contract
//! on the answer. A finding is a panic (the crate's release profile aborts,
//! which libFuzzer reports with the input) or a broken contract (an
//! `assert!` here). `scripts/fuzz.mjs` builds this crate with libFuzzer's
//! coverage instrumentation, links it with clang's libFuzzer and runs one
//! target (`KCM_FUZZ_TARGET`) for a while; `npm test` only checks that it
//! builds and that [`run`] holds on a few seed inputs.

use std::sync::OnceLock;

use openkcm_native::http1_answer::{AnswerLimits, AnswerParser, Failure};
use openkcm_native::http1_request::{parse_request_head, Parsed, RequestLimits, MAX_HEAD, MAX_HEADERS};
use openkcm_native::keys::KEY_LEN;
use openkcm_native::splice::SpliceHeads;
use openkcm_native::shamir::{self, SHARE_LEN};
use openkcm_native::{aead, base64url, front, json_targets, open_splice, transport};

/// The targets, by the name `KCM_FUZZ_TARGET` gives.
pub const TARGETS: [&str; 10] = [
    "json-targets",
    "json-rules",
    "http1-request",
    "http1-answer",
    "open-splice",
    "base64url",
    "shamir",
    "rsa-spki",
    "unwrap",
    "front-request",
];

/// Runs target `name` on `data`; panics on a broken contract.
pub fn run(name: &str, data: &[u8]) {
    match name {
        "json-targets" => json_targets_target(data),
        "json-rules" => {
            let _ = json_targets::compile_rules(data);
        }
        "http1-request" => http1_request_target(data),
        "http1-answer" => http1_answer_target(data),
        "open-splice" => open_splice_target(data),
        "base64url" => base64url_target(data),
        "shamir" => shamir_target(data),
        "rsa-spki" => {
            // A public key from a token (DER SubjectPublicKeyInfo): refused or used, never a crash.
            let _ = transport::rsa_oaep_sha1_encrypt(data, &[7u8; KEY_LEN]);
        }
        "front-request" => front_request_target(data),
        "unwrap" => {
            let mut out = [0u8; KEY_LEN];
            let opened = aead::unwrap(&[9u8; KEY_LEN], data, b"okcm-wrap", &mut out);
            assert!(!matches!(opened, Ok(true)), "a forged wrapped key opened");
        }
        other => panic!("KCM_FUZZ_TARGET {other:?} is not one of {TARGETS:?}"),
    }
}

fn rule_sets() -> &'static [json_targets::CompiledRules] {
    static SETS: OnceLock<Vec<json_targets::CompiledRules>> = OnceLock::new();
    SETS.get_or_init(|| {
        let sets: [&[(bool, &[&str])]; 4] = [
            &[(true, &["card", "number"]), (false, &["customer", "email"])],
            &[(false, &["items", "*", "giftMessage"]), (false, &["*"])],
            &[(true, &["a"]), (false, &["a", "b"]), (false, &["A"])],
            &[(false, &["*", "*", "*"]), (false, &["x", "*"])],
        ];
        sets.iter()
            .filter_map(|r| json_targets::compile_rules(&json_targets::encode_rules(r)).ok())
            .collect()
    })
}

/// Byte 0: the rule set; byte 1: the depth limit; the rest: the body (UTF-8 only, as the contract asks).
fn json_targets_target(data: &[u8]) {
    let [set, depth, body @ ..] = data else { return };
    if std::str::from_utf8(body).is_err() {
        return;
    }
    let sets = rule_sets();
    let rules = &sets[usize::from(*set) % sets.len()];
    let Ok(Some(targets)) = json_targets::json_targets(body, rules, usize::from(*depth % 64) + 1, 50) else {
        return;
    };
    assert_eq!(targets.len() % 4, 0);
    for t in targets.chunks_exact(4) {
        let (start, end, kind) = (t[1] as usize, t[2] as usize, t[3] & 7);
        assert!(start < end && end <= body.len(), "a target outside the body");
        let (first, last) = (body[start], body[end - 1]);
        match kind {
            1 => assert!(first == b'{' && last == b'}', "an object target"),
            2 => assert!(first == b'[' && last == b']', "an array target"),
            3 => assert!(first == b'"' && last == b'"' && end - start >= 2, "a string target"),
            4..=6 => {}
            _ => panic!("target type {kind}"),
        }
    }
}

/// Byte 0 chooses the limits; the rest is what a client sent.
fn http1_request_target(data: &[u8]) {
    let [pick, b @ ..] = data else { return };
    let limits = RequestLimits {
        max_head: if pick & 1 == 0 { 1 << 20 } else { 64 },
        max_headers: if pick & 2 == 0 { 1000 } else { usize::from(pick >> 4) + 1 },
    };
    let Parsed::Head(head) = parse_request_head(b, limits) else { return };
    assert!(head.len <= b.len() && head.len <= limits.max_head, "head length");
    let spans = [head.method, head.target].into_iter().chain(head.headers.iter().flat_map(|&(n, v)| [n, v]));
    for (s, e) in spans {
        assert!(s <= e && e <= head.len, "a span outside the head");
    }
    // What uWS reads, measured against the binary (test/native/http1-request.test.ts): a head
    // outside these limits would be read by one side and refused by the other.
    assert!(head.len <= MAX_HEAD && head.headers.len() <= MAX_HEADERS, "over uWS's limits");
    assert!(head.content_length <= 999_999_999, "a length uWS refuses");
    for &((ns, ne), (vs, ve)) in &head.headers {
        assert!(b[ns..ne].iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-'), "a name uWS refuses");
        assert!(b[vs..ve].iter().all(|&c| (0x20..0x7f).contains(&c) || c == b'\t'), "a value byte");
    }
    let target = &b[head.target.0..head.target.1];
    assert!(target.first() == Some(&b'/') && target.iter().all(|&c| (0x21..0x7f).contains(&c) && c != b'#'));
    // The head alone reads the same, and every shorter prefix waits for more.
    assert_eq!(parse_request_head(&b[..head.len], limits), Parsed::Head(head.clone()));
    for cut in [head.len - 1, head.len / 2] {
        assert_eq!(parse_request_head(&b[..cut], limits), Parsed::Partial, "prefix of {cut} bytes");
    }
}

/// The native front's table for [`front_request_target`]: a pass-through
/// route (tenant from a header, trusted on loopback), one with the tenant in
/// the path, and a sealing one, in the order a policy set would give them.
fn front_table() -> &'static front::table::Table {
    use front::table::{Cidr, ErrorSpec, ErrorStatuses, PoolOptions, Route, Segment, Table, TenantSource, Trust, Upstream};
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        let lit = |s: &str| Segment::Literal { folded: s.to_ascii_lowercase().into_bytes(), text: s.as_bytes().to_vec() };
        let mut loopback = [0u8; 16];
        loopback[12] = 127;
        let header = || TenantSource::Header {
            name: b"x-tenant-id".to_vec(),
            peers: vec![Cidr { v4: true, addr: loopback, prefix: 8 }],
        };
        let spec = |status, m: &str| ErrorSpec { status, message: m.as_bytes().to_vec() };
        let route = |method: &str, segments, tenant, seal| Route {
            name: 0,
            serve: true,
            method: method.as_bytes().to_vec(),
            segments,
            upstream: 0,
            body_limit: 4096,
            tenant,
            identity_encoding: false,
            seal,
        };
        let rules = json_targets::compile_rules(&json_targets::encode_rules(&[(false, &["card", "number"])]));
        let seal = rules.ok().map(|rules| front::seal::SealRoute {
            rules,
            contexts: vec![b"ctx".to_vec()],
            key_id: b"orders".to_vec(),
            text_head: b"okcm:1:".to_vec(),
            max_depth: 32,
            max_fields: 100,
        });
        Table {
            options: PoolOptions {
                connections: 1,
                max_queue: 1,
                connect_ms: 1,
                headers_ms: 1,
                body_ms: 1,
                keep_alive_ms: 1,
                queue_ms: 1,
                max_response: 1,
            },
            statuses: ErrorStatuses {
                unavailable: spec(502, "a"),
                timeout: spec(504, "b"),
                busy: spec(503, "c"),
                bad_response: spec(502, "d"),
            },
            reserved: vec![b"v1".to_vec()],
            trust: Trust { loopback: true, peers: vec![] },
            reasons: vec![(200, b"OK".to_vec())],
            upstreams: vec![Upstream {
                host: b"app:1".to_vec(),
                addr: std::net::SocketAddr::from(([127, 0, 0, 1], 1)),
                base: b"/base".to_vec(),
                label: b"upstream app".to_vec(),
            }],
            routes: vec![
                route("POST", vec![lit("orders")], header(), seal),
                route("GET", vec![lit("t"), Segment::Param, lit("x")], TenantSource::PathParam(0), None),
                route("*", vec![lit("p"), Segment::Rest], header(), None),
            ],
        }
    })
}

/// A client's bytes through the native front's request side: the head
/// reader, serve-or-decline, the upstream request it would write and the
/// seal. What it sends upstream must be one well-formed request whose
/// Content-Length is its body's (no header or target can split it), and a
/// sealed body must hold no selected plaintext.
fn front_request_target(data: &[u8]) {
    use front::seal::{KeyRing, RingKey};
    let Parsed::Head(head) = parse_request_head(data, RequestLimits { max_head: MAX_HEAD, max_headers: MAX_HEADERS }) else {
        return;
    };
    let total = head.len + head.content_length as usize;
    if data.len() < total {
        return;
    }
    let table = front_table();
    let Ok(served) = front::route::serve(table, data, &head, std::net::IpAddr::from([127, 0, 0, 1])) else { return };
    let route = &table.routes[served.route];
    let body = &data[head.len..total];
    let mut ring = KeyRing::default();
    let Ok(slot) = openkcm_native::keys::Slot::alloc() else { return };
    let key = RingKey {
        slot,
        version: 1,
        wrap_aad: b"w".to_vec(),
        header: b"h".to_vec(),
        aad_head: b"a".to_vec(),
        until: std::time::Instant::now() + std::time::Duration::from_secs(60),
    };
    let tenant = data[served.tenant.0..served.tenant.1].to_vec();
    ring.keys.insert((tenant.clone(), b"orders".to_vec()), key);
    let sealed = match &route.seal {
        None => None,
        Some(seal) => {
            let ct = front::route::header(data, &head, b"content-type");
            let ce = front::route::header(data, &head, b"content-encoding");
            match front::seal::seal_body(seal, &mut ring, &tenant, ct, ce, body, std::time::Instant::now()) {
                Ok(s) => s,
                Err(_) => return,
            }
        }
    };
    if let Some(out) = &sealed {
        assert!(std::str::from_utf8(out).is_ok(), "a sealed body that is not UTF-8");
        assert!(out.windows(7).filter(|w| *w == b"okcm:1:").count() >= 1, "sealed without an envelope");
    }
    let body = sealed.as_deref().unwrap_or(body);
    let mut message = Vec::new();
    let correlation = front::wire::given_correlation(data, &head).unwrap_or(b"made");
    let upstream = &table.upstreams[route.upstream];
    front::wire::upstream_request(&mut message, data, &head, &served, upstream, false, [127, 0, 0, 1].into(), correlation, body);
    // Read back as a request: one head, framed by exactly this body.
    let limits = RequestLimits { max_head: 1 << 20, max_headers: 1000 };
    match parse_request_head(&message, limits) {
        Parsed::Head(h) => {
            let framed = h.len + h.content_length as usize;
            assert_eq!(framed, message.len(), "the upstream request's framing is not its body");
        }
        // Past uWS's limits (48 lines, 4 KiB) the reader declines; the bytes must still be one head.
        Parsed::Decline(why) => assert!(
            matches!(why, "head too large" | "too many headers") || message.len() > MAX_HEAD,
            "the upstream request reads as malformed: {why}"
        ),
        Parsed::Partial => panic!("the upstream request's head is unfinished"),
    }
}

/// Feeds `pieces` to `p` (stopping at the first failure; a complete answer
/// stays complete), then ends the connection when `ends` and it is not.
fn read_answer(p: &mut AnswerParser, pieces: &[&[u8]], ends: bool) -> Result<bool, Failure> {
    let mut done = false;
    for piece in pieces {
        done |= p.feed(piece)?;
    }
    if ends && !done {
        p.end()?;
        done = true;
    }
    Ok(done)
}

/// Byte 0: flags (1 HEAD, 2 the connection ends after), byte 1: where the bytes are cut; the rest: what the upstream sent.
fn http1_answer_target(data: &[u8]) {
    let [flags, cut, b @ ..] = data else { return };
    let limits = AnswerLimits {
        max_head: 512,
        max_body: 256,
    };
    let (head, ends) = (flags & 1 != 0, flags & 2 != 0);
    let at = usize::from(*cut).min(b.len());
    let mut split = AnswerParser::new(limits, head);
    let split_outcome = read_answer(&mut split, &[&b[..at], &b[at..]], ends);
    assert!(split.body().len() <= limits.max_body, "a body over the limit");
    if split_outcome == Ok(true) && !ends {
        assert!((200..=599).contains(&split.status()), "a final status");
    }
    // Where the bytes were cut changes nothing, but for the two size rules that the
    // reference applies only to what has not ended yet (an unfinished head, a chunk line).
    let mut whole = AnswerParser::new(limits, head);
    let whole_outcome = read_answer(&mut whole, &[b], ends);
    let size_rule = |o: &Result<bool, Failure>| matches!(o, Err(Failure::BadResponse("head too large" | "line too long")));
    if size_rule(&split_outcome) || size_rule(&whole_outcome) {
        return;
    }
    assert_eq!(split_outcome, whole_outcome, "cut at {at}: another outcome");
    if whole_outcome == Ok(true) {
        assert_eq!(
            (split.status(), split.body(), split.keep_alive()),
            (whole.status(), whole.body(), whole.keep_alive()),
            "cut at {at}: another answer"
        );
        assert!(split.headers().eq(whole.headers()), "cut at {at}: other headers");
    }
}

/// Byte 0: how many items; the rest: a body whose value spans split it evenly.
fn open_splice_target(data: &[u8]) {
    let [n, body @ ..] = data else { return };
    let n = usize::from(n % 4) + 1;
    if body.len() < n {
        return;
    }
    let step = body.len() / n;
    let values: Vec<(usize, usize)> = (0..n)
        .map(|i| (i * step, if i + 1 == n { body.len() } else { (i + 1) * step }))
        .filter(|(s, e)| s < e)
        .collect();
    let contexts: Vec<&[u8]> = values.iter().map(|_| &b"ctx"[..]).collect();
    let heads = SpliceHeads {
        aad_head: b"okcm-field",
        text_head: b"okcm:1:",
        header: b"\x01H",
    };
    let kek = [7u8; KEY_LEN];
    if let Ok(Some(opened)) = open_splice::open_items(&kek, b"wrap", body, &values, &contexts, &heads) {
        let len = opened.out_len(body.len(), &values).expect("out_len of opened items");
        let mut out = vec![0u8; len];
        opened.write(body, &values, &mut out).expect("write of opened items");
        if let [(0, end)] = values[..] {
            // The whole body was one envelope: the output is one JSON string, as JSON.stringify
            // writes it (quoted, UTF-8, no raw control character, no unescaped quote inside).
            assert!(end == body.len() && std::str::from_utf8(&out).is_ok(), "UTF-8");
            assert!(out.len() >= 2 && out[0] == b'"' && out[out.len() - 1] == b'"', "quoted");
            let inner = &out[1..out.len() - 1];
            assert!(inner.iter().all(|&c| c >= 0x20), "a raw control character");
            let mut escaped = false;
            for &c in inner {
                assert!(escaped || c != b'"', "an unescaped quote");
                escaped = !escaped && c == b'\\';
            }
            assert!(!escaped, "a dangling backslash");
        }
    }
}

/// Any text: a decoded text encodes back to itself (canonical base64url only).
fn base64url_target(text: &[u8]) {
    let Some(n) = base64url::decoded_len(text.len()) else { return };
    let mut bytes = vec![0u8; n];
    if !base64url::decode_into(text, &mut bytes) {
        return;
    }
    let mut again = vec![0u8; base64url::encoded_len(n)];
    base64url::encode_into(&bytes, &mut again).expect("encode of decoded bytes");
    assert_eq!(again, text, "decoding accepted a non-canonical text");
}

/// Arbitrary shares combine or are refused; and a secret split m-of-n (byte 0
/// and 1, coefficients from the input) comes back from any m of its shares.
fn shamir_target(data: &[u8]) {
    let shares: Vec<&[u8]> = data.chunks(SHARE_LEN).take(9).collect();
    let mut out = [0u8; KEY_LEN];
    let _ = shamir::combine(&shares, &mut out);
    let [m, n, rest @ ..] = data else { return };
    let Some((secret, coeffs)) = rest.split_first_chunk::<KEY_LEN>() else { return };
    let m = 2 + m % 4;
    let n = usize::from(m + n % 4);
    let mut buf = vec![0u8; n * SHARE_LEN];
    let mut split: Vec<&mut [u8]> = buf.chunks_mut(SHARE_LEN).collect();
    let mut at = 0;
    let mut rand = |dst: &mut [u8]| {
        for b in dst.iter_mut() {
            *b = coeffs.get(at % coeffs.len().max(1)).copied().unwrap_or(0x5a);
            at += 1;
        }
        Ok(())
    };
    shamir::split(secret, m, &mut split, &mut rand).expect("split with valid parameters");
    let all: Vec<&[u8]> = buf.chunks(SHARE_LEN).collect();
    let m = usize::from(m);
    for pick in [&all[..m], &all[n - m..], &all[..]] {
        let mut back = [0u8; KEY_LEN];
        shamir::combine(pick, &mut back).expect("combine of distinct shares");
        assert_eq!(&back, secret, "m of n shares rebuild the secret");
    }
}

/// libFuzzer's entry point: runs the target `KCM_FUZZ_TARGET` names.
///
/// # Safety
/// libFuzzer passes `size` readable bytes at `data` (or a null or dangling
/// pointer with size 0).
#[no_mangle]
pub unsafe extern "C" fn LLVMFuzzerTestOneInput(data: *const u8, size: usize) -> i32 {
    static TARGET: OnceLock<String> = OnceLock::new();
    let name = TARGET.get_or_init(|| std::env::var("KCM_FUZZ_TARGET").unwrap_or_default());
    let bytes = if size == 0 {
        &[][..]
    } else {
        // SAFETY: libFuzzer owns `size` readable bytes at `data` for this call.
        unsafe { std::slice::from_raw_parts(data, size) }
    };
    run(name, bytes);
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every target holds on a few seeds (the fuzzer starts from nothing; these keep the checks compiled and honest).
    #[test]
    fn targets_hold_on_seeds() {
        let seeds: &[(&str, &[u8])] = &[
            ("json-targets", b"\x00\x20{\"card\":{\"number\":\"4111\"},\"customer\":{\"email\":\"a@b\"}}"),
            ("json-targets", b"\x01\x20{\"items\":[{\"giftMessage\":\"hi\"},{}],\"z\":[1,{\"a\":2}]}"),
            ("json-rules", b"\x01\x00\x01\x01\x00\x01\x00a\x01\x00a"),
            ("http1-request", b"\x00POST /o HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n{}"),
            ("http1-answer", b"\x02\x09HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n\r\n"),
            ("http1-answer", b"\x00\x30HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nab"),
            ("open-splice", b"\x01\"okcm:1:AUg\",\"x\""),
            ("open-splice", include_bytes!("seeds/open-splice/one")),
            ("open-splice", include_bytes!("seeds/open-splice/ctl")),
            ("base64url", b"AQID"),
            ("base64url", b"AQIE_-"),
            ("shamir", b"\x00\x01abcdefghijklmnopqrstuvwxyz012345coefficients"),
            ("rsa-spki", b"\x30\x03\x02\x01\x00"),
            ("unwrap", &[0u8; 60]),
            ("front-request", b"GET /p/a?q=1 HTTP/1.1\r\nHost: a\r\nX-Tenant-Id: t\r\nConnection: x-a\r\nX-A: 1\r\n\r\n"),
            (
                "front-request",
                b"POST /orders HTTP/1.1\r\nHost: a\r\nX-Tenant-Id: t\r\nContent-Type: application/json\r\nContent-Length: 27\r\n\r\n{\"card\":{\"number\":\"4111\"}}",
            ),
        ];
        for (name, data) in seeds {
            run(name, data);
        }
    }
}
