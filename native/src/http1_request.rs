//! The head of a client's HTTP/1.1 request, read strictly: step 1 of
//! docs/decisions/0001-native-data-plane.md. A native front serves a request
//! only when this parser reads its head; anything else it **declines**, and
//! the connection goes to the uWS front (the reference) as it arrived. So
//! the parser never has to be right about odd input, only never wrong about
//! what it accepts: whatever it reads, uWS reads the same way (the same
//! method, target, headers and body length, the next request starting at the
//! same byte). `test/native/http1-request.test.ts` holds it to that against
//! a running uWS server.
//!
//! Accepted (RFC 9112 §3, §5, §6, and no more):
//! - `METHOD SP origin-target SP HTTP/1.1 CRLF`: GET, HEAD, POST, PUT, PATCH,
//!   DELETE or OPTIONS; a target starting with `/`, of visible ASCII but `#`,
//!   at most [`MAX_TARGET`] bytes.
//! - Header lines `name ":" OWS value OWS CRLF`: a name of letters, digits and
//!   `-` (uWS refuses the other token characters), at most 64 bytes; a value
//!   of visible ASCII, SP and HTAB (trimmed of SP and HTAB).
//! - At most `max_headers` headers and `max_head` bytes of head, never more
//!   than uWS's own limits ([`MAX_HEADERS`], [`MAX_HEAD`]); exactly one
//!   `Host`; at most one `Content-Length` (digits, no leading zero, at most
//!   9: uWS closes on 10); a `Connection` naming only `close` and
//!   `keep-alive`.
//!
//! `close` reports `Connection: close` for the native front's own use (RFC
//! 9112 §9.6: close after answering). It is outside the agreement with uWS:
//! this uWS build answers a pipelined request after `Connection: close`.
//!
//! Declined, with the rule that declined it: another method, leading empty
//! lines, another version, an absolute or asterisk target, obs-fold, bare CR or LF, bytes
//! ≥ 0x80 or control characters anywhere, whitespace before a colon, a
//! `Transfer-Encoding` (chunked requests stay on uWS for now), `Expect`,
//! `Upgrade`, `HTTP2-Settings`, a second `Host` or `Content-Length`.

/// Longest request target read.
pub const MAX_TARGET: usize = 2048;
/// Longest header name read.
const MAX_NAME: usize = 64;
/// Most header lines read, whatever the limits say: uWS answers nothing to a
/// request with more than 48 (checked against the binary:
/// test/native/http1-request.test.ts).
pub const MAX_HEADERS: usize = 48;
/// Largest head read, whatever the limits say: uWS keeps at most 4 KiB of a
/// head that has not ended yet.
pub const MAX_HEAD: usize = 4096;
/// Most Content-Length digits read: uWS closes the connection on a length of
/// ten digits or more (1,000,000,000 and up).
const MAX_LENGTH_DIGITS: usize = 9;

pub type Span = (usize, usize);

/// Limits past which a head is declined.
#[derive(Clone, Copy, Debug)]
pub struct RequestLimits {
    /// Largest head, request line to the final CRLF CRLF included.
    pub max_head: usize,
    pub max_headers: usize,
}

/// A head read: byte ranges into the buffer it was read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestHead {
    /// Bytes of the head, final CRLF CRLF included: the body starts here.
    pub len: usize,
    pub method: Span,
    pub target: Span,
    /// (name as sent, value trimmed) in arrival order.
    pub headers: Vec<(Span, Span)>,
    pub content_length: u64,
    /// `Connection: close` was sent.
    pub close: bool,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// No complete head yet (and nothing declined so far).
    Partial,
    /// Not for the native front: the reason.
    Decline(&'static str),
    Head(RequestHead),
}

/// The methods read: those uWS routes (it answers nothing to others, such as `FOO`).
const METHODS: [&[u8]; 7] = [b"GET", b"HEAD", b"POST", b"PUT", b"PATCH", b"DELETE", b"OPTIONS"];

/// A header-name byte: letters, digits and `-` only. RFC 9110 tokens allow
/// `!#$%&'*+.^_`|~` too, but uWS refuses a request whose header name holds
/// one (checked against the binary: test/native/http1-request.test.ts), so
/// the native side must not read one either.
fn is_name_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-'
}

/// Visible ASCII, SP or HTAB: what a value may hold.
fn is_value_byte(c: u8) -> bool {
    (0x21..=0x7e).contains(&c) || c == b' ' || c == b'\t'
}

fn eq_name(b: &[u8], (s, e): Span, name: &[u8]) -> bool {
    b[s..e].eq_ignore_ascii_case(name)
}

/// The end of the line starting at `at` (the index of its CR), None while
/// incomplete; a bare CR or LF declines.
fn line_end(b: &[u8], at: usize) -> Result<Option<usize>, &'static str> {
    let mut i = at;
    while i < b.len() {
        match b[i] {
            b'\r' => {
                return match b.get(i + 1) {
                    None => Ok(None),
                    Some(b'\n') => Ok(Some(i)),
                    Some(_) => Err("bare CR"),
                }
            }
            b'\n' => return Err("bare LF"),
            _ => i += 1,
        }
    }
    Ok(None)
}

fn request_line(b: &[u8], end: usize) -> Result<(Span, Span), &'static str> {
    let line = &b[..end];
    let m = line.iter().take_while(|c| c.is_ascii_uppercase()).count();
    if !METHODS.contains(&&line[..m]) || line.get(m) != Some(&b' ') {
        return Err("method");
    }
    let t0 = m + 1;
    let rest = &line[t0..];
    let t = rest.iter().take_while(|&&c| c != b' ').count();
    if rest.first() != Some(&b'/') || t > MAX_TARGET {
        return Err("target");
    }
    if rest[..t].iter().any(|&c| !(0x21..=0x7e).contains(&c) || c == b'#') {
        return Err("target");
    }
    if &rest[t..] != b" HTTP/1.1" {
        return Err("version");
    }
    Ok(((0, m), (t0, t0 + t)))
}

/// Whether `Connection` tokens are only `close` / `keep-alive`: Some(has close).
fn connection(value: &[u8]) -> Option<bool> {
    let mut close = false;
    for t in value.split(|&c| c == b',') {
        let t = t.trim_ascii();
        if t.eq_ignore_ascii_case(b"close") {
            close = true;
        } else if !t.eq_ignore_ascii_case(b"keep-alive") {
            return None;
        }
    }
    Some(close)
}

/// Reads the head at the start of `b` (see the module notes).
pub fn parse_request_head(b: &[u8], limits: RequestLimits) -> Parsed {
    let limits = RequestLimits {
        max_head: limits.max_head.min(MAX_HEAD),
        max_headers: limits.max_headers.min(MAX_HEADERS),
    };
    match parse(b, limits) {
        Ok(Some(head)) => Parsed::Head(head),
        Ok(None) if b.len() >= limits.max_head => Parsed::Decline("head too large"),
        Ok(None) => Parsed::Partial,
        Err(why) => Parsed::Decline(why),
    }
}

fn parse(b: &[u8], limits: RequestLimits) -> Result<Option<RequestHead>, &'static str> {
    let Some(end) = line_end(b, 0)? else {
        // Judge what there is of the request line already: a stream that is not HTTP/1.1 goes at once.
        return match request_line_prefix(b) {
            true => Ok(None),
            false => Err("request line"),
        };
    };
    let (method, target) = request_line(b, end)?;
    let mut headers: Vec<(Span, Span)> = Vec::new();
    let mut at = end + 2;
    let (mut host, mut length, mut close) = (0, None, false);
    loop {
        if at > limits.max_head {
            return Err("head too large");
        }
        let Some(end) = line_end(b, at)? else {
            return Ok(None);
        };
        if end == at {
            let len = at + 2;
            if len > limits.max_head {
                return Err("head too large");
            }
            if host != 1 {
                return Err("Host");
            }
            return Ok(Some(RequestHead {
                len,
                method,
                target,
                headers,
                content_length: length.unwrap_or(0),
                close,
            }));
        }
        if headers.len() >= limits.max_headers {
            return Err("too many headers");
        }
        let line = &b[at..end];
        let n = line.iter().take_while(|&&c| is_name_byte(c)).count();
        if n == 0 || n > MAX_NAME || line.get(n) != Some(&b':') {
            return Err("header name");
        }
        let (mut vs, mut ve) = (at + n + 1, end);
        if b[vs..ve].iter().any(|&c| !is_value_byte(c)) {
            return Err("header value");
        }
        while vs < ve && (b[vs] == b' ' || b[vs] == b'\t') {
            vs += 1;
        }
        while ve > vs && (b[ve - 1] == b' ' || b[ve - 1] == b'\t') {
            ve -= 1;
        }
        let name = (at, at + n);
        let value = &b[vs..ve];
        if eq_name(b, name, b"host") {
            host += 1;
        } else if eq_name(b, name, b"content-length") {
            let digits = value.len() <= MAX_LENGTH_DIGITS && !value.is_empty() && value.iter().all(u8::is_ascii_digit);
            if length.is_some() || !digits || (value.len() > 1 && value[0] == b'0') {
                return Err("Content-Length");
            }
            length = Some(value.iter().fold(0u64, |v, &c| v * 10 + u64::from(c - b'0')));
        } else if eq_name(b, name, b"connection") {
            close |= connection(value).ok_or("Connection")?;
        } else if [&b"transfer-encoding"[..], b"expect", b"upgrade", b"http2-settings"]
            .iter()
            .any(|h| eq_name(b, name, h))
        {
            return Err("framing or protocol header");
        }
        headers.push((name, (vs, ve)));
        at = end + 2;
    }
}

/// Whether an incomplete first line can still become a request line.
fn request_line_prefix(b: &[u8]) -> bool {
    let m = b.iter().take_while(|c| c.is_ascii_uppercase()).count();
    if m == b.len() {
        return m <= 16;
    }
    if m == 0 || m > 16 || b[m] != b' ' {
        return false;
    }
    match b.get(m + 1) {
        None => true,
        Some(&c) => c == b'/' && b[m + 1..].len() <= MAX_TARGET + 10,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: RequestLimits = RequestLimits {
        max_head: 4096,
        max_headers: 64,
    };

    fn head(text: &str) -> RequestHead {
        match parse_request_head(text.as_bytes(), LIMITS) {
            Parsed::Head(h) => h,
            other => panic!("{text:?}: {other:?}"),
        }
    }

    fn declined(text: &[u8]) -> &'static str {
        match parse_request_head(text, LIMITS) {
            Parsed::Decline(why) => why,
            other => panic!("{:?}: {other:?}", String::from_utf8_lossy(text)),
        }
    }

    #[test]
    fn reads_a_plain_request() {
        let t = "POST /orders?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\nX-Tenant-Id:  t1 \t\r\nConnection: Keep-Alive, close\r\n\r\n{\"a\":1}";
        let h = head(t);
        let b = t.as_bytes();
        assert_eq!((&b[h.method.0..h.method.1], &b[h.target.0..h.target.1]), (&b"POST"[..], &b"/orders?x=1"[..]));
        assert_eq!((h.len, h.content_length, h.close), (t.find("{").unwrap(), 12, true));
        let (n, v) = h.headers[2];
        assert_eq!((&b[n.0..n.1], &b[v.0..v.1]), (&b"X-Tenant-Id"[..], &b"t1"[..]));
    }

    #[test]
    fn waits_for_the_rest_of_a_head() {
        let t = b"GET /a HTTP/1.1\r\nHost: a\r\n\r\n";
        for n in 0..t.len() {
            assert_eq!(parse_request_head(&t[..n], LIMITS), Parsed::Partial, "{n}");
        }
    }

    #[test]
    fn declines_what_it_does_not_read() {
        let cases: &[(&[u8], &str)] = &[
            (b"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", "method"),
            (b"get / HTTP/1.1\r\nHost: a\r\n\r\n", "method"),
            (b"SSH-2.0-OpenSSH", "request line"),
            (b"FOO / HTTP/1.1\r\nHost: a\r\n\r\n", "method"),
            (b"GET / HTTP/1.1\r\nHost: a\r\nX!Y: b\r\n\r\n", "header name"),
            (b"GET / HTTP/1.0\r\nHost: a\r\n\r\n", "version"),
            (b"GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n", "target"),
            (b"GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n", "target"),
            (b"GET /\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", "target"),
            (b"GET / HTTP/1.1\nHost: a\r\n\r\n", "bare LF"),
            (b"GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", "bare CR"),
            (b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", "header name"),
            (b"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", "header name"),
            (b"GET / HTTP/1.1\r\nHost: \xe9\r\n\r\n", "header value"),
            (b"GET / HTTP/1.1\r\nHost: a\0\r\n\r\n", "header value"),
            (b"GET / HTTP/1.1\r\n\r\n", "Host"),
            (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "Host"),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", "Content-Length"),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 01\r\n\r\n", "Content-Length"),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1,1\r\n\r\n", "Content-Length"),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000000\r\n\r\n", "Content-Length"),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", "framing or protocol header"),
            (b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n", "framing or protocol header"),
            (b"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\n\r\n", "Connection"),
        ];
        for (text, why) in cases {
            assert_eq!(declined(text), *why, "{:?}", String::from_utf8_lossy(text));
        }
        let big = format!("GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n", "v".repeat(5000));
        assert_eq!(declined(big.as_bytes()), "head too large");
        assert_eq!(declined(&big.as_bytes()[..4200]), "head too large");
        let many: String = (0..48).map(|i| format!("X-{i}: v\r\n")).collect();
        assert_eq!(declined(format!("GET / HTTP/1.1\r\nHost: a\r\n{many}\r\n").as_bytes()), "too many headers");
    }
}
