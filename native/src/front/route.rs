//! Whether the native front serves a request, and how: the route stage, the
//! caller and tenant checks and the limits of the JavaScript pipeline
//! (gateway/src/pipeline/stages.ts, proxy/proxy-routes.ts), for the requests
//! where their answer is certain. Any other request is **declined** (the
//! pipeline answers it, errors included), so every rule here errs towards
//! declining:
//! - the path must be plain (unreserved characters and sub-delims, no `%`,
//!   `;` or `\`, no empty or dot segment, no trailing slash) and spell the
//!   route it matches exactly: a lenient match (`/Orders` for `/orders`) is
//!   the pipeline's to judge (policy-loader.ts `#refuseIfAmbiguous`);
//! - the first segment must not be one of the direct API's (they win over
//!   policy routes);
//! - the route must be one the table marks `serve`, the peer one of the
//!   gateway's trusted peers, the tenant resolvable and valid, the body within
//!   the route's limit, no header repeated and no method-override header.

use std::net::IpAddr;

use super::table::{in_cidrs, Segment, Table, TenantSource};
use crate::http1_request::{RequestHead, Span};

/// Most `:param` captures of a pattern (route-pattern.ts allows 32 segments).
const MAX_PARAMS: usize = 32;

/// A request the front serves.
#[derive(Debug, PartialEq, Eq)]
pub struct Served {
    pub route: usize,
    /// Path and query (without `?`) as spans of the buffer.
    pub path: Span,
    pub query: Option<Span>,
    /// The tenant's bytes.
    pub tenant: Span,
}

pub type Decline = &'static str;

/// The value of header `name` (lower case) in `b`, if sent.
pub fn header<'b>(b: &'b [u8], head: &RequestHead, name: &[u8]) -> Option<&'b [u8]> {
    header_span(b, head, name).map(|(s, e)| &b[s..e])
}

/// Where the value of header `name` (lower case) lies in `b`, if sent.
pub fn header_span(b: &[u8], head: &RequestHead, name: &[u8]) -> Option<Span> {
    head.headers.iter().find(|((s, e), _)| b[*s..*e].eq_ignore_ascii_case(name)).map(|(_, v)| *v)
}

/// A path byte the native front reads: unreserved, sub-delims but `;`, `:`, `@`, `/`.
fn plain_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"-._~!$&'()*+,=:@/".contains(&c)
}

/// Whether `path` is one the front matches itself (see the module notes).
fn plain_path(path: &[u8]) -> bool {
    if path == b"/" {
        return true;
    }
    if path.first() != Some(&b'/') || path.last() == Some(&b'/') || !path.iter().all(|&c| plain_byte(c)) {
        return false;
    }
    path[1..].split(|&c| c == b'/').all(|seg| !seg.is_empty() && seg != b"." && seg != b"..")
}

/// Segment spans of a plain path (none for `/`).
fn segments(path: Span, b: &[u8]) -> impl Iterator<Item = Span> + '_ {
    let (start, end) = path;
    let mut at = if end - start > 1 { Some(start + 1) } else { None };
    std::iter::from_fn(move || {
        let s = at?;
        let stop = b[s..end].iter().position(|&c| c == b'/').map_or(end, |i| s + i);
        at = if stop < end { Some(stop + 1) } else { None };
        Some((s, stop))
    })
}

/// How a pattern matches a plain path: not at all, leniently (a literal's
/// case differs), or exactly; with the parameter spans.
#[derive(Debug, PartialEq, Eq)]
enum Walk {
    No,
    Lenient,
    Exact,
}

fn walk(pattern: &[Segment], b: &[u8], path: Span, params: &mut Vec<Span>) -> Walk {
    params.clear();
    let mut segs = segments(path, b);
    let mut exact = true;
    for seg in pattern {
        match seg {
            Segment::Rest => return if exact { Walk::Exact } else { Walk::Lenient },
            Segment::Param => match segs.next() {
                Some(s) if params.len() < MAX_PARAMS => params.push(s),
                _ => return Walk::No,
            },
            Segment::Literal { folded, text } => {
                let Some((s, e)) = segs.next() else { return Walk::No };
                let got = &b[s..e];
                if got.len() != folded.len() || !got.iter().zip(folded).all(|(c, f)| c.to_ascii_lowercase() == *f) {
                    return Walk::No;
                }
                exact &= got == text.as_slice();
            }
        }
    }
    if segs.next().is_some() {
        Walk::No
    } else if exact {
        Walk::Exact
    } else {
        Walk::Lenient
    }
}

/// A tenant id (common/src/format/ids.ts): 1–40 of `A-Z a-z 0-9 - . _ ~`.
fn tenant_id(t: &[u8]) -> bool {
    (1..=40).contains(&t.len()) && t.iter().all(|&c| c.is_ascii_alphanumeric() || b"-._~".contains(&c))
}

/// Headers that would make an upstream run another method than the route's.
const OVERRIDES: [&[u8]; 3] = [b"x-http-method-override", b"x-http-method", b"x-method-override"];

/// The route the front serves `head` (read from `b`) on, or why it declines.
pub fn serve(table: &Table, b: &[u8], head: &RequestHead, peer: IpAddr) -> Result<Served, Decline> {
    let (ts, te) = head.target;
    let q = b[ts..te].iter().position(|&c| c == b'?').map(|i| ts + i);
    let path = (ts, q.unwrap_or(te));
    let query = q.map(|i| (i + 1, te)).filter(|(s, e)| s < e);
    if !plain_path(&b[path.0..path.1]) {
        return Err("path");
    }
    if let Some((s, e)) = segments(path, b).next() {
        let first = &b[s..e];
        if table.reserved.iter().any(|r| first.eq_ignore_ascii_case(r)) {
            return Err("direct API");
        }
    }
    for (i, ((ns, ne), _)) in head.headers.iter().enumerate() {
        let name = &b[*ns..*ne];
        if head.headers[..i].iter().any(|((s, e), _)| b[*s..*e].eq_ignore_ascii_case(name)) {
            return Err("repeated header");
        }
        if OVERRIDES.iter().any(|o| name.eq_ignore_ascii_case(o)) {
            return Err("method override");
        }
        if name.iter().all(u8::is_ascii_digit) {
            // The pipeline's header map lists integer-like names first: its order would differ.
            return Err("numeric header name");
        }
    }
    let method = &b[head.method.0..head.method.1];
    let mut params = Vec::new();
    let mut found = None;
    for (i, r) in table.routes.iter().enumerate() {
        let w = walk(&r.segments, b, path, &mut params);
        if w == Walk::No || (r.method != method && r.method != b"*") {
            continue;
        }
        if w == Walk::Lenient {
            return Err("lenient match");
        }
        found = Some(i);
        break;
    }
    let Some(index) = found else { return Err("no route") };
    let route = &table.routes[index];
    if !route.serve {
        return Err("route not served");
    }
    if !table.trust.has(peer) {
        return Err("not a trusted peer");
    }
    let tenant: Span = match &route.tenant {
        TenantSource::Cert => return Err("certificate tenant"),
        TenantSource::Header { name, peers } => {
            let span = header_span(b, head, name).ok_or("no tenant header")?;
            if !in_cidrs(peers, peer) || b[span.0..span.1].contains(&b',') {
                return Err("tenant header");
            }
            span
        }
        TenantSource::PathParam(i) => *params.get(*i).ok_or("tenant parameter")?,
    };
    if !tenant_id(&b[tenant.0..tenant.1]) {
        return Err("tenant id");
    }
    if head.content_length > route.body_limit {
        return Err("body limit");
    }
    Ok(Served { route: index, path, query, tenant })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::front::table::{Cidr, ErrorSpec, ErrorStatuses, PoolOptions, Route, Trust, Upstream};
    use crate::http1_request::{parse_request_head, Parsed, RequestLimits};

    fn lit(s: &str) -> Segment {
        Segment::Literal { folded: s.to_ascii_lowercase().into_bytes(), text: s.as_bytes().to_vec() }
    }

    fn route(method: &str, segments: Vec<Segment>, serve: bool, tenant: TenantSource) -> Route {
        Route {
            name: 0,
            serve,
            method: method.as_bytes().to_vec(),
            segments,
            upstream: 0,
            body_limit: 100,
            tenant,
            identity_encoding: false,
            seal: None,
        }
    }

    fn header_tenant() -> TenantSource {
        let mut a = [0u8; 16];
        a[12] = 127;
        TenantSource::Header { name: b"x-tenant-id".to_vec(), peers: vec![Cidr { v4: true, addr: a, prefix: 8 }] }
    }

    fn table() -> Table {
        Table {
            options: PoolOptions {
                connections: 1,
                max_queue: 0,
                connect_ms: 1,
                headers_ms: 1,
                body_ms: 1,
                keep_alive_ms: 1,
                queue_ms: 1,
                max_response: 1,
            },
            statuses: ErrorStatuses {
                unavailable: ErrorSpec { status: 502, message: b"down".to_vec() },
                timeout: ErrorSpec { status: 504, message: b"slow".to_vec() },
                busy: ErrorSpec { status: 503, message: b"busy".to_vec() },
                bad_response: ErrorSpec { status: 502, message: b"bad".to_vec() },
            },
            reserved: vec![b"v1".to_vec(), b"healthz".to_vec()],
            trust: Trust { loopback: true, peers: vec![] },
            reasons: vec![],
            upstreams: vec![Upstream {
                host: b"app".to_vec(),
                addr: "127.0.0.1:1".parse().unwrap(),
                base: vec![],
                label: b"upstream app".to_vec(),
            }],
            routes: vec![
                route("GET", vec![lit("orders"), lit("new")], true, header_tenant()),
                route("GET", vec![lit("orders"), Segment::Param], true, header_tenant()),
                route("POST", vec![lit("orders")], false, header_tenant()),
                route("GET", vec![lit("t"), Segment::Param, lit("files"), Segment::Rest], true, TenantSource::PathParam(0)),
                route("*", vec![lit("Static"), Segment::Rest], true, header_tenant()),
            ],
        }
    }

    fn ask(req: &str, peer: &str) -> Result<Served, Decline> {
        let b = req.as_bytes();
        let Parsed::Head(h) = parse_request_head(b, RequestLimits { max_head: 4096, max_headers: 48 }) else {
            panic!("not read: {req}")
        };
        serve(&table(), b, &h, peer.parse().unwrap())
    }

    fn get(target: &str, extra: &str) -> String {
        format!("GET {target} HTTP/1.1\r\nHost: x\r\nX-Tenant-Id: acme\r\n{extra}\r\n")
    }

    #[test]
    fn serves_what_it_matches_exactly() {
        let s = ask(&get("/orders/42?a=1", ""), "127.0.0.1").unwrap();
        assert_eq!(s.route, 1);
        assert_eq!(ask(&get("/orders/new", ""), "127.0.0.1").unwrap().route, 0, "first route in table order");
        assert_eq!(ask(&get("/Static/a/b", ""), "127.0.0.1").unwrap().route, 4);
        assert_eq!(ask(&get("/Static", ""), "127.0.0.1").unwrap().route, 4, "rest matches nothing");
        let t = "GET /t/acme/files/x HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(ask(t, "127.0.0.1").unwrap().route, 3, "tenant from the path");
        assert_eq!(s.query.map(|(a, b)| b - a), Some(3));
        assert_eq!(ask(&get("/orders/42?", ""), "127.0.0.1").unwrap().query, None, "an empty query is none");
    }

    #[test]
    fn declines_every_doubt() {
        let cases = [
            (get("/ORDERS/42", ""), "127.0.0.1", "lenient match"),
            (get("/static/a", ""), "127.0.0.1", "lenient match"),
            (get("/orders/42/", ""), "127.0.0.1", "path"),
            (get("/orders/%34", ""), "127.0.0.1", "path"),
            (get("/orders//42", ""), "127.0.0.1", "path"),
            (get("/orders/..", ""), "127.0.0.1", "path"),
            (get("/orders/a;b", ""), "127.0.0.1", "path"),
            (get("/v1/encrypt", ""), "127.0.0.1", "direct API"),
            (get("/HealthZ", ""), "127.0.0.1", "direct API"),
            (get("/nowhere", ""), "127.0.0.1", "no route"),
            (get("/orders/42", ""), "10.0.0.1", "not a trusted peer"),
            (get("/orders/42", "X-Tenant-Id: b\r\n"), "127.0.0.1", "repeated header"),
            (get("/orders/42", "X-HTTP-Method-Override: POST\r\n"), "127.0.0.1", "method override"),
            ("GET /orders/42 HTTP/1.1\r\nHost: x\r\n\r\n".into(), "127.0.0.1", "no tenant header"),
            ("GET /orders/42 HTTP/1.1\r\nHost: x\r\nX-Tenant-Id: a,b\r\n\r\n".into(), "127.0.0.1", "tenant header"),
            ("GET /t/a!b/files HTTP/1.1\r\nHost: x\r\n\r\n".into(), "127.0.0.1", "tenant id"),
            ("POST /orders HTTP/1.1\r\nHost: x\r\nX-Tenant-Id: a\r\nContent-Length: 1\r\n\r\n".into(), "127.0.0.1", "route not served"),
            ("DELETE /orders/1 HTTP/1.1\r\nHost: x\r\n\r\n".into(), "127.0.0.1", "no route"),
            (get("/orders/1", "Content-Length: 101\r\n"), "127.0.0.1", "body limit"),
            (get("/orders/1", "5: five\r\n"), "127.0.0.1", "numeric header name"),
        ];
        for (req, peer, why) in cases {
            assert_eq!(ask(&req, peer), Err(why), "{req:?}");
        }
    }

    #[test]
    fn a_trusted_peer_outside_the_tenant_peers_is_declined() {
        let mut t = table();
        t.trust.peers.push(Cidr { v4: true, addr: crate::front::table::addr16("10.0.0.1".parse().unwrap()), prefix: 32 });
        let req = get("/orders/42", "");
        let Parsed::Head(h) = parse_request_head(req.as_bytes(), RequestLimits { max_head: 4096, max_headers: 48 }) else {
            panic!()
        };
        assert_eq!(serve(&t, req.as_bytes(), &h, "10.0.0.1".parse().unwrap()), Err("tenant header"));
    }
}
