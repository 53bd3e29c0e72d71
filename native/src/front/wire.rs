//! The bytes the native front writes: the request head for the upstream
//! (gateway/src/upstream/forward.ts `upstreamRequestHeaders` and
//! h1-request-head.ts, header for header and in the same order), the
//! answer for the client (what uWS writes for uws-adapter.ts
//! `writeResponse`), its own error answers (pipeline/responses.ts), and the
//! PROXY protocol v2 header that starts a declined connection's tunnel.

use std::net::{IpAddr, SocketAddr};

use super::route::{header, Served};
use super::table::{Table, Upstream};
use crate::http1_answer::AnswerParser;
use crate::http1_request::RequestHead;

/// Headers that describe one connection, never forwarded (forward.ts `HOP_BY_HOP`).
const HOP_BY_HOP: [&[u8]; 13] = [
    b"connection",
    b"keep-alive",
    b"proxy-connection",
    b"proxy-authenticate",
    b"proxy-authorization",
    b"te",
    b"trailer",
    b"transfer-encoding",
    b"upgrade",
    b"http2-settings",
    b"host",
    b"content-length",
    b"expect",
];

/// Methods whose request always carries a length (h1-request-head.ts `BODY_METHODS`).
const BODY_METHODS: [&[u8]; 3] = [b"POST", b"PUT", b"PATCH"];

/// The names a `Connection` value lists, lower-cased.
fn listed(value: Option<&[u8]>) -> Vec<Vec<u8>> {
    let Some(v) = value else { return Vec::new() };
    v.split(|&c| c == b',')
        .map(|t| t.trim_ascii().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}

fn line(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// The text uWS gives for a peer address (`getRemoteAddressAsText`), which
/// the pipeline puts in `x-forwarded-for`: dotted IPv4, or the eight groups
/// of an IPv6 address in full, four lower-case hex digits each.
pub fn peer_text(out: &mut Vec<u8>, ip: IpAddr) {
    use std::io::Write;
    match ip {
        IpAddr::V4(v4) => {
            let _ = write!(out, "{v4}");
        }
        IpAddr::V6(v6) => {
            for (i, g) in v6.segments().iter().enumerate() {
                let _ = write!(out, "{}{g:04x}", if i > 0 { ":" } else { "" });
            }
        }
    }
}

/// A correlation id the client gave (context.ts `correlationIdOf`): the
/// trace id of a valid `traceparent`, else a valid `x-correlation-id`.
pub fn given_correlation<'b>(b: &'b [u8], head: &RequestHead) -> Option<&'b [u8]> {
    if let Some(tp) = header(b, head, b"traceparent").filter(|v| !v.is_empty()) {
        let hex = |s: &[u8]| s.iter().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c));
        if tp.len() == 55 && [2, 35, 52].iter().all(|&i| tp[i] == b'-') {
            let (v, id, parent, flags) = (&tp[..2], &tp[3..35], &tp[36..52], &tp[53..]);
            if hex(v) && hex(id) && hex(parent) && hex(flags) {
                return Some(id);
            }
        }
    }
    let cid = header(b, head, b"x-correlation-id")?;
    let ok = (1..=128).contains(&cid.len())
        && cid.iter().all(|&c| c.is_ascii_alphanumeric() || b"._~:-".contains(&c));
    ok.then_some(cid)
}

/// Appends the request for the upstream: request line, `host`, the client's
/// end-to-end headers in their order with the gateway's own set in place or
/// appended (x-forwarded-for, x-forwarded-host, x-correlation-id,
/// accept-encoding), the length, then `body`.
#[allow(clippy::too_many_arguments)]
pub fn upstream_request(
    out: &mut Vec<u8>,
    b: &[u8],
    head: &RequestHead,
    served: &Served,
    upstream: &Upstream,
    identity_encoding: bool,
    peer: IpAddr,
    correlation: &[u8],
    body: &[u8],
) {
    out.extend_from_slice(&b[head.method.0..head.method.1]);
    out.push(b' ');
    out.extend_from_slice(&upstream.base);
    out.extend_from_slice(&b[served.path.0..served.path.1]);
    if let Some((s, e)) = served.query {
        out.push(b'?');
        out.extend_from_slice(&b[s..e]);
    }
    out.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    out.extend_from_slice(&upstream.host);
    out.extend_from_slice(b"\r\n");
    let connection = listed(header(b, head, b"connection"));
    let forwarded_for = |out: &mut Vec<u8>, prior: &[u8]| {
        out.extend_from_slice(b"x-forwarded-for: ");
        if !prior.is_empty() {
            out.extend_from_slice(prior);
            out.extend_from_slice(b", ");
        }
        peer_text(out, peer);
        out.extend_from_slice(b"\r\n");
    };
    let (mut xff, mut xfh, mut cid, mut ae) = (false, false, false, false);
    let mut name_buf = Vec::with_capacity(64);
    for &((ns, ne), (vs, ve)) in &head.headers {
        name_buf.clear();
        name_buf.extend(b[ns..ne].iter().map(u8::to_ascii_lowercase));
        let name = name_buf.as_slice();
        if HOP_BY_HOP.contains(&name) || connection.iter().any(|c| c == name) {
            continue;
        }
        let value = &b[vs..ve];
        match name {
            b"x-forwarded-for" => {
                xff = true;
                forwarded_for(out, value);
            }
            b"x-forwarded-host" => {
                xfh = true;
                line(out, name, value);
            }
            b"x-correlation-id" => {
                cid = true;
                line(out, name, correlation);
            }
            b"accept-encoding" if identity_encoding => {
                ae = true;
                line(out, name, b"identity");
            }
            _ => line(out, name, value),
        }
    }
    if !xff {
        forwarded_for(out, b"");
    }
    if !xfh {
        if let Some(host) = header(b, head, b"host") {
            line(out, b"x-forwarded-host", host);
        }
    }
    if !cid {
        line(out, b"x-correlation-id", correlation);
    }
    if identity_encoding && !ae {
        line(out, b"accept-encoding", b"identity");
    }
    let method = &b[head.method.0..head.method.1];
    let declared = header(b, head, b"content-length").is_some();
    if declared || !body.is_empty() || BODY_METHODS.contains(&method) {
        use std::io::Write;
        let _ = write!(out, "content-length: {}\r\n", body.len());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
}

/// The status line text of `status` (node:http `STATUS_CODES`, from the table), `Unknown` when it has none.
fn reason(table: &Table, status: u16) -> &[u8] {
    table.reasons.iter().find(|(s, _)| *s == status).map_or(b"Unknown", |(_, r)| r.as_slice())
}

/// Appends the answer uWS writes for `writeResponse` (uws-adapter.ts): the
/// status line, the headers in order (no `content-length` but as an answer
/// without content reports it), uWS's own `Date` and `uWebSockets` lines,
/// then the body framed by its length. `date` is the 29-byte IMF-fixdate.
#[allow(clippy::too_many_arguments)]
pub fn answer(
    out: &mut Vec<u8>,
    table: &Table,
    status: u16,
    headers: &[(&[u8], &[u8])],
    body: &[u8],
    head_request: bool,
    close: bool,
    date: &[u8],
) {
    use std::io::Write;
    let _ = write!(out, "HTTP/1.1 {status} ");
    out.extend_from_slice(reason(table, status));
    out.extend_from_slice(b"\r\n");
    let mut declared: Option<&[u8]> = None;
    for (name, value) in headers {
        if *name == b"content-length" {
            declared = declared.or(Some(value));
            continue;
        }
        if *name == b"date" {
            continue; // uWS writes its own (uws-adapter.ts)
        }
        line(out, name, value);
    }
    super::uws::finish(out, status, declared, body, head_request, close, date);
}

/// An answer's headers as the pipeline sends them (forward.ts `endToEnd` of
/// the upstream's, then the respond stage's `x-correlation-id`): hop-by-hop
/// ones and those `Connection` lists dropped, repeated names grouped at the
/// first one's place (the header map holds an array), `content-length`
/// kept only for an answer without content (HEAD, 304).
pub fn answer_headers<'a>(answer: &'a AnswerParser, head_request: bool, correlation: &'a [u8]) -> Vec<(&'a [u8], &'a [u8])> {
    let connection: Vec<Vec<u8>> = answer
        .headers()
        .filter(|(n, _)| *n == b"connection")
        .flat_map(|(_, v)| listed(Some(v)))
        .collect();
    let status = answer.status();
    let mut names: Vec<&[u8]> = Vec::new();
    for (n, _) in answer.headers() {
        if !names.contains(&n) {
            names.push(n);
        }
    }
    // A JavaScript object lists integer-like keys first, in ascending order: so does the header map.
    let mut integers: Vec<(u64, &[u8])> = names.iter().filter_map(|n| array_index(n).map(|i| (i, *n))).collect();
    if !integers.is_empty() {
        integers.sort_unstable();
        names.retain(|n| array_index(n).is_none());
        names.splice(0..0, integers.into_iter().map(|(_, n)| n));
    }
    let mut out = Vec::with_capacity(answer.headers().count() + 1);
    let mut cid = false;
    for name in names {
        let keep_length = name == b"content-length" && (head_request || status == 304);
        if (HOP_BY_HOP.contains(&name) && !keep_length) || connection.iter().any(|c| c.as_slice() == name) {
            continue;
        }
        if name == b"x-correlation-id" {
            cid = true;
            out.push((name, correlation));
            continue;
        }
        if keep_length {
            // The reference keeps the value only when it is a single string (not repeated).
            let mut values = answer.headers().filter(|(n, _)| *n == name);
            if let (Some((_, v)), None) = (values.next(), values.next()) {
                out.push((name, v));
            }
            continue;
        }
        out.extend(answer.headers().filter(|(n, _)| *n == name));
    }
    if !cid {
        out.push((b"x-correlation-id", correlation));
    }
    out
}

/// The value of a name JavaScript treats as an array index (`0`, `7`, `200`:
/// no leading zero, below 2^32 − 1), which objects list first.
pub fn array_index(name: &[u8]) -> Option<u64> {
    if name.is_empty() || name.len() > 10 || (name.len() > 1 && name[0] == b'0') || !name.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let v = name.iter().fold(0u64, |v, &c| v * 10 + u64::from(c - b'0'));
    (v < u64::from(u32::MAX)).then_some(v)
}

/// The JSON error the pipeline answers for an upstream failure (responses.ts `errorResponse`).
/// Returns the status.
pub fn upstream_error(out: &mut Vec<u8>, table: &Table, failure: Failure, upstream: &Upstream, correlation: &[u8], head_request: bool, date: &[u8]) -> u16 {
    let e = &table.statuses;
    let (code, spec, tail): (&str, _, &[u8]) = match failure {
        Failure::Unavailable => ("upstream_unavailable", &e.unavailable, b""),
        Failure::Timeout => ("upstream_timeout", &e.timeout, b""),
        Failure::Busy => ("upstream_busy", &e.busy, b""),
        Failure::BadResponse => ("upstream_bad_response", &e.bad_response, b": not a valid HTTP response"),
        Failure::TooLarge => ("upstream_bad_response", &e.bad_response, b": too large"),
    };
    let status = spec.status;
    // `{"error":{"code","message"}}`, the message as KcmError makes it: the table's, `: `, the detail.
    let mut body = Vec::with_capacity(160);
    body.extend_from_slice(b"{\"error\":{\"code\":\"");
    body.extend_from_slice(code.as_bytes());
    body.extend_from_slice(b"\",\"message\":\"");
    body.extend_from_slice(&spec.message);
    body.extend_from_slice(b": ");
    // Labels are `upstream` and a configured name of [A-Za-z0-9._~-]: nothing to escape.
    body.extend_from_slice(&upstream.label);
    body.extend_from_slice(tail);
    body.extend_from_slice(b"\"}}");
    let headers: [(&[u8], &[u8]); 3] = [
        (b"content-type", b"application/json"),
        (b"cache-control", b"no-store"),
        (b"x-correlation-id", correlation),
    ];
    answer(out, table, status, &headers, &body, head_request, false, date);
    status
}

/// Why an exchange with the upstream failed (upstream-failure.ts kinds the front meets).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    Unavailable,
    Timeout,
    Busy,
    BadResponse,
    TooLarge,
}

/// The PROXY protocol v2 signature: a tunnel refuses client bytes holding it
/// (uWS reads such a header again at any request boundary).
pub const PROXY_V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";

/// The PROXY protocol v2 header (haproxy proxy-protocol.txt §2.2) naming
/// `client` as the source and `local` as the destination of a TCP stream.
pub fn proxy_v2(out: &mut Vec<u8>, client: SocketAddr, local: SocketAddr) {
    out.extend_from_slice(PROXY_V2_SIGNATURE);
    out.push(0x21); // version 2, PROXY
    // The families as the sockets have them: a dual-stack listener's IPv4
    // client stays IPv4-mapped IPv6, so the pipeline reads the same text for
    // it as uWS gives on such a listener (`0000:…:ffff:7f00:0001`).
    match (client.ip(), local.ip()) {
        (IpAddr::V4(c), IpAddr::V4(l)) => {
            out.push(0x11);
            out.extend_from_slice(&12u16.to_be_bytes());
            out.extend_from_slice(&c.octets());
            out.extend_from_slice(&l.octets());
        }
        (c, l) => {
            let v6 = |ip: IpAddr| match ip {
                IpAddr::V4(v4) => v4.to_ipv6_mapped(),
                IpAddr::V6(v6) => v6,
            };
            out.push(0x21);
            out.extend_from_slice(&36u16.to_be_bytes());
            out.extend_from_slice(&v6(c).octets());
            out.extend_from_slice(&v6(l).octets());
        }
    }
    out.extend_from_slice(&client.port().to_be_bytes());
    out.extend_from_slice(&local.port().to_be_bytes());
}
