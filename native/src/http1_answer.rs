//! Incremental parser of ONE HTTP/1.1 answer read from an upstream
//! connection: the native twin of the gateway's `ResponseParser`
//! (gateway/src/upstream/h1-parser.ts), which is the reference. Step 1 of
//! docs/decisions/0001-native-data-plane.md: a native front must read an
//! upstream's answer exactly as the TypeScript client does, so that the two
//! planes answer a client alike. `test/native/http1-answer.test.ts` feeds
//! both the same byte streams, split at random, and compares every outcome.
//!
//! Contract (the reference's, rule for rule):
//! - [`AnswerParser::feed`] returns `Ok(true)` once the answer's last byte
//!   arrived, `Ok(false)` before; [`AnswerParser::end`] when the connection
//!   ended (completes a body delimited by the close, else `Unavailable`).
//!   Any byte after a complete answer is an error (the client never
//!   pipelines).
//! - Violations are [`Failure::BadResponse`] naming what was wrong, never
//!   quoting upstream bytes; a body over `max_body` is [`Failure::TooLarge`].
//! - Interim 1xx answers (100, 102, 103, …) are skipped; 101 is refused. An
//!   answer to HEAD, 204 and 304 have no body whatever their headers say; a
//!   205 is framed like any answer but may not carry content.
//!   Transfer-Encoding ending in `chunked` wins over Content-Length, and the
//!   connection is then not reused; conflicting Content-Lengths are refused;
//!   without either, the body runs to the close (not reusable).
//! - Header names are lower-cased (they are tokens: ASCII); values are read
//!   as Latin-1 and trimmed of what JavaScript's `String.prototype.trim`
//!   removes in that range (TAB, LF, VT, FF, CR, SP, NBSP). A value still
//!   holding NUL, CR or LF is refused.
//! - A line of a chunked body (size, end, trailer) is refused when more than
//!   4096 bytes arrived without its CRLF (a complete longer line in one read
//!   passes, as in the reference).

/// Why an answer was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Not a valid HTTP/1.1 answer; the text says which part.
    BadResponse(&'static str),
    /// The body is over the limit.
    TooLarge,
    /// The connection ended before the answer did.
    Unavailable,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Head,
    Fixed,
    ChunkSize,
    ChunkData,
    ChunkEnd,
    Trailers,
    UntilClose,
    Done,
}

/// Sizes past which an answer is refused.
#[derive(Clone, Copy, Debug)]
pub struct AnswerLimits {
    /// Largest status line + headers (bytes, without the final CRLF CRLF).
    pub max_head: usize,
    /// Largest body (bytes).
    pub max_body: usize,
}

/// Longest chunk-size, chunk-end or trailer line kept while incomplete.
const MAX_LINE: usize = 4096;

type Span = (usize, usize);

pub struct AnswerParser {
    limits: AnswerLimits,
    head_request: bool,
    state: State,
    /// Bytes of the head (or of a chunked-body line) not yet complete.
    pending: Vec<u8>,
    /// The final head, names lower-cased; `headers` index into it.
    head: Vec<u8>,
    headers: Vec<(Span, Span)>,
    body: Vec<u8>,
    remaining: u64,
    status: u16,
    keep_alive: bool,
}

fn bad(what: &'static str) -> Failure {
    Failure::BadResponse(what)
}

fn find(b: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    b.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}

/// What `String.prototype.trim` removes from a Latin-1 string.
fn js_space(c: u8) -> bool {
    matches!(c, b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | b' ' | 0xa0)
}

fn trim(b: &[u8], (mut s, mut e): Span) -> Span {
    while s < e && js_space(b[s]) {
        s += 1;
    }
    while e > s && js_space(b[e - 1]) {
        e -= 1;
    }
    (s, e)
}

fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

/// `HTTP/1.[01] [1-5]DD( reason)?` with no CR or LF in the reason: (minor
/// version, status). 600–999 are refused (RFC 9110 §15: not HTTP statuses).
fn status_line(line: &[u8]) -> Option<(u8, u16)> {
    let rest = line.strip_prefix(b"HTTP/1.")?;
    let [minor @ (b'0' | b'1'), b' ', d0 @ b'1'..=b'5', d1 @ b'0'..=b'9', d2 @ b'0'..=b'9', tail @ ..] = rest else {
        return None;
    };
    match tail {
        [] => {}
        [b' ', reason @ ..] if !reason.iter().any(|&c| c == b'\r' || c == b'\n') => {}
        _ => return None,
    }
    let status = u16::from(d0 - b'0') * 100 + u16::from(d1 - b'0') * 10 + u16::from(d2 - b'0');
    Some((minor - b'0', status))
}

/// `[0-9A-Fa-f]{1,8}[ \t]*(;[^\r\n]*)?`: the chunk size.
fn chunk_size(line: &[u8]) -> Option<u64> {
    let digits = line.iter().take_while(|c| c.is_ascii_hexdigit()).count();
    if digits == 0 || digits > 8 {
        return None;
    }
    let mut at = digits;
    while at < line.len() && (line[at] == b' ' || line[at] == b'\t') {
        at += 1;
    }
    match &line[at..] {
        [] => {}
        [b';', ext @ ..] if !ext.iter().any(|&c| c == b'\r' || c == b'\n') => {}
        _ => return None,
    }
    let mut n = 0u64;
    for &c in &line[..digits] {
        n = n * 16 + u64::from((c as char).to_digit(16)?);
    }
    Some(n)
}

impl AnswerParser {
    /// A parser for the answer to one request; `head_request`: it was HEAD.
    pub fn new(limits: AnswerLimits, head_request: bool) -> Self {
        AnswerParser {
            limits,
            head_request,
            state: State::Head,
            pending: Vec::new(),
            head: Vec::new(),
            headers: Vec::new(),
            body: Vec::new(),
            remaining: 0,
            status: 0,
            keep_alive: true,
        }
    }

    /// True once any byte of an answer arrived (the request cannot be retried after that).
    pub fn started(&self) -> bool {
        self.state != State::Head || !self.pending.is_empty()
    }

    pub fn status(&self) -> u16 {
        self.status
    }

    /// The connection may carry another request.
    pub fn keep_alive(&self) -> bool {
        self.keep_alive
    }

    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The final head's headers in arrival order: (lower-cased name, trimmed value).
    pub fn headers(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        self.headers
            .iter()
            .map(|&((ns, ne), (vs, ve))| (&self.head[ns..ne], &self.head[vs..ve]))
    }

    /// The values of header `name` (lower case), joined as the reference's `tokens` reads them.
    fn values(&self, name: &[u8]) -> impl Iterator<Item = &[u8]> + '_ {
        let name = name.to_vec();
        self.headers().filter(move |(n, _)| *n == name.as_slice()).map(|(_, v)| v)
    }

    /// The comma-separated tokens of header `name`, trimmed, lower-cased, empty ones dropped.
    fn tokens(&self, name: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for v in self.values(name) {
            for t in v.split(|&c| c == b',') {
                let (s, e) = trim(t, (0, t.len()));
                if s < e {
                    out.push(t[s..e].to_ascii_lowercase());
                }
            }
        }
        out
    }

    /// The Content-Length: None when absent; every listed value must be the same 1–15 digits.
    fn content_length(&self) -> Result<Option<u64>, Failure> {
        let mut first: Option<&[u8]> = None;
        for v in self.values(b"content-length") {
            for t in v.split(|&c| c == b',') {
                let (s, e) = trim(t, (0, t.len()));
                let t = &t[s..e];
                match first {
                    None => {
                        if t.is_empty() || t.len() > 15 || !t.iter().all(u8::is_ascii_digit) {
                            return Err(bad("Content-Length"));
                        }
                        first = Some(t);
                    }
                    Some(f) if f != t => return Err(bad("Content-Length")),
                    Some(_) => {}
                }
            }
        }
        Ok(first.map(|f| f.iter().fold(0u64, |n, &c| n * 10 + u64::from(c - b'0'))))
    }

    /// Feeds the next bytes read; `Ok(true)` once the answer is complete.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<bool, Failure> {
        let mut buf = chunk;
        while !buf.is_empty() {
            match self.state {
                State::Head => match self.take_head(buf)? {
                    None => return Ok(false),
                    Some(rest) => buf = &buf[buf.len() - rest..],
                },
                State::Fixed => buf = self.counted(buf, State::Done)?,
                State::ChunkSize | State::Trailers => {
                    let Some((line, rest)) = self.line(buf)? else { return Ok(false) };
                    buf = &buf[buf.len() - rest..];
                    if self.state == State::Trailers {
                        if line.is_empty() {
                            self.state = State::Done;
                        }
                    } else {
                        self.remaining = chunk_size(&line).ok_or(bad("chunk size"))?;
                        self.state = if self.remaining == 0 { State::Trailers } else { State::ChunkData };
                    }
                }
                State::ChunkData => buf = self.counted(buf, State::ChunkEnd)?,
                State::ChunkEnd => {
                    let Some((line, rest)) = self.line(buf)? else { return Ok(false) };
                    if !line.is_empty() {
                        return Err(bad("chunk end"));
                    }
                    buf = &buf[buf.len() - rest..];
                    self.state = State::ChunkSize;
                }
                State::UntilClose => {
                    self.add_body(buf)?;
                    buf = &[];
                }
                State::Done => return Err(bad("bytes after the response")),
            }
            if self.state == State::Done {
                if !buf.is_empty() {
                    return Err(bad("bytes after the response"));
                }
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The connection ended: Ok when the body runs to the close, else `Unavailable`.
    pub fn end(&mut self) -> Result<(), Failure> {
        if self.state == State::UntilClose {
            self.state = State::Done;
            return Ok(());
        }
        Err(Failure::Unavailable)
    }

    /// Takes up to `remaining` body bytes (moving to `then` when none remain); returns the rest.
    fn counted<'a>(&mut self, buf: &'a [u8], then: State) -> Result<&'a [u8], Failure> {
        let n = usize::try_from(self.remaining).map_or(buf.len(), |r| r.min(buf.len()));
        self.add_body(&buf[..n])?;
        self.remaining -= n as u64;
        if self.remaining == 0 {
            self.state = then;
        }
        Ok(&buf[n..])
    }

    fn add_body(&mut self, b: &[u8]) -> Result<(), Failure> {
        if b.is_empty() {
            return Ok(());
        }
        if self.status == 205 {
            return Err(bad("content in a 205 response"));
        }
        if self.body.len() + b.len() > self.limits.max_body {
            return Err(Failure::TooLarge);
        }
        self.body.extend_from_slice(b);
        Ok(())
    }

    /// One CRLF-terminated line, buffered across reads: (the line, how many
    /// bytes of `buf` follow it), or None while incomplete.
    fn line(&mut self, buf: &[u8]) -> Result<Option<(Vec<u8>, usize)>, Failure> {
        let kept = self.pending.len();
        self.pending.extend_from_slice(buf);
        let Some(at) = find(&self.pending, kept.saturating_sub(1), b"\r\n") else {
            if self.pending.len() > MAX_LINE {
                // As the reference: a refused read is not kept (`started` stays as it was).
                self.pending.truncate(kept);
                return Err(bad("line too long"));
            }
            return Ok(None);
        };
        let rest = self.pending.len() - at - 2;
        let mut line = std::mem::take(&mut self.pending);
        line.truncate(at);
        Ok(Some((line, rest)))
    }

    /// Consumes head bytes; once the head is complete, how many bytes of `buf` follow it.
    fn take_head(&mut self, buf: &[u8]) -> Result<Option<usize>, Failure> {
        let kept = self.pending.len();
        self.pending.extend_from_slice(buf);
        let Some(at) = find(&self.pending, kept.saturating_sub(3), b"\r\n\r\n") else {
            let refused = if self.pending.len() > self.limits.max_head {
                Some(bad("head too large"))
            } else if self.pending.len() >= 5 && &self.pending[..5] != b"HTTP/" {
                Some(bad("status line"))
            } else {
                None
            };
            if let Some(failure) = refused {
                // As the reference: a refused read is not kept (`started` stays as it was).
                self.pending.truncate(kept);
                return Err(failure);
            }
            return Ok(None);
        };
        if at > self.limits.max_head {
            self.pending.truncate(kept);
            return Err(bad("head too large"));
        }
        let rest = self.pending.len() - at - 4;
        let mut all = std::mem::take(&mut self.pending);
        let tail = all.split_off(at + 4);
        all.truncate(at);
        let (minor, status) = self.parse_head(all)?;
        if status == 101 {
            return Err(bad("unexpected protocol switch"));
        }
        if status < 200 {
            // An interim answer: the real head follows.
            if tail.is_empty() {
                return Ok(None);
            }
            return match self.take_head(&tail)? {
                None => Ok(None),
                Some(r) => Ok(Some(r.min(rest))),
            };
        }
        self.status = status;
        let conn = self.tokens(b"connection");
        self.keep_alive = if minor == 1 {
            !conn.iter().any(|t| t == b"close")
        } else {
            conn.iter().any(|t| t == b"keep-alive")
        };
        let te = self.tokens(b"transfer-encoding");
        if self.head_request || status == 204 || status == 304 {
            self.state = State::Done;
        } else if let Some(last) = te.last() {
            if self.values(b"content-length").next().is_some() {
                self.keep_alive = false;
            }
            if last == b"chunked" {
                self.state = State::ChunkSize;
            } else {
                self.state = State::UntilClose;
                self.keep_alive = false;
            }
        } else {
            match self.content_length()? {
                None => {
                    self.state = State::UntilClose;
                    self.keep_alive = false;
                }
                Some(n) if n > 0 && status == 205 => return Err(bad("content in a 205 response")),
                Some(n) if n > self.limits.max_body as u64 => return Err(Failure::TooLarge),
                Some(n) => {
                    self.remaining = n;
                    self.state = if n == 0 { State::Done } else { State::Fixed };
                }
            }
        }
        Ok(Some(rest))
    }

    /// Reads a complete head (no final CRLF CRLF) into `head` and `headers`.
    fn parse_head(&mut self, mut text: Vec<u8>) -> Result<(u8, u16), Failure> {
        let end = find(&text, 0, b"\r\n").unwrap_or(text.len());
        let (minor, status) = status_line(&text[..end]).ok_or(bad("status line"))?;
        let mut headers = Vec::new();
        let mut at = end + 2;
        while at <= text.len() {
            let end = find(&text, at, b"\r\n").unwrap_or(text.len());
            let colon = find(&text, at, b":").filter(|&c| c > at && c < end);
            let colon = colon.ok_or(bad("header line"))?;
            if !text[at..colon].iter().all(|&c| is_tchar(c)) {
                return Err(bad("header name"));
            }
            let value = trim(&text, (colon + 1, end));
            if text[value.0..value.1].iter().any(|&c| c == 0 || c == b'\r' || c == b'\n') {
                return Err(bad("header value"));
            }
            text[at..colon].make_ascii_lowercase();
            headers.push(((at, colon), value));
            at = end + 2;
        }
        self.head = text;
        self.headers = headers;
        Ok((minor, status))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: AnswerLimits = AnswerLimits {
        max_head: 16384,
        max_body: 1 << 20,
    };

    /// Feeds `input` in pieces of `step` bytes (on past a complete answer, as
    /// bytes after it are an error); the outcome of the last piece fed.
    fn run(input: &[u8], step: usize, head_request: bool) -> (Result<bool, Failure>, AnswerParser) {
        let mut p = AnswerParser::new(LIMITS, head_request);
        let mut last = Ok(false);
        for piece in input.chunks(step.max(1)) {
            last = p.feed(piece);
            if last.is_err() {
                break;
            }
        }
        (last, p)
    }

    #[test]
    fn reads_a_fixed_body_in_any_split() {
        let a = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n{\"a\":1}";
        for step in 1..a.len() + 1 {
            let (r, p) = run(a, step, false);
            assert_eq!(r, Ok(true), "step {step}");
            assert_eq!((p.status(), p.body(), p.keep_alive()), (200, &b"{\"a\":1}"[..], true));
            let h: Vec<_> = p.headers().collect();
            assert_eq!(h[0], (&b"content-type"[..], &b"application/json"[..]));
        }
    }

    #[test]
    fn reads_chunks_trailers_and_skips_interim_answers() {
        let a = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2 \r\nde\r\n0\r\nX-T: 1\r\n\r\n";
        for step in 1..a.len() + 1 {
            let (r, p) = run(a, step, false);
            assert_eq!(r, Ok(true), "step {step}");
            assert_eq!((p.status(), p.body()), (201, &b"abcde"[..]));
        }
    }

    #[test]
    fn frames_as_the_reference_does() {
        let (r, p) = run(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n\r\n", 7, false);
        assert_eq!((r, p.keep_alive(), p.body()), (Ok(true), false, &b"a"[..]));
        let (r, p) = run(b"HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n", 5, false);
        assert_eq!((r, p.body().len()), (Ok(true), 0));
        let (r, _) = run(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", 5, true);
        assert_eq!(r, Ok(true), "HEAD");
        let (r, mut p) = run(b"HTTP/1.0 200 OK\r\n\r\nto the close", 4, false);
        assert_eq!(r, Ok(false));
        assert_eq!((p.end(), p.keep_alive(), p.body()), (Ok(()), false, &b"to the close"[..]));
        let (r, p) = run(b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n", 3, false);
        assert_eq!((r, p.keep_alive()), (Ok(true), true));
    }

    #[test]
    fn refuses_what_the_reference_refuses() {
        let cases: &[(&[u8], Failure)] = &[
            (b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", bad("Content-Length")),
            (b"HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\n", bad("Content-Length")),
            (b"HTTP/1.1 200 OK\r\n Folded: x\r\n\r\n", bad("header name")),
            (b"HTTP/1.1 200 OK\r\nNoColon\r\n\r\n", bad("header line")),
            (b"HTTP/1.1 200 OK\r\nX: a\0b\r\n\r\n", bad("header value")),
            (b"HTTP/1.1 101 Switching Protocols\r\n\r\n", bad("unexpected protocol switch")),
            (b"HTTP/2 200\r\n\r\n", bad("status line")),
            (b"HTTP/1.1 900 OK\r\nContent-Length: 0\r\n\r\n", bad("status line")),
            (b"SSH-2.0-OpenSSH\r\n", bad("status line")),
            (b"HTTP/1.1 205 Reset\r\nContent-Length: 1\r\n\r\nx", bad("content in a 205 response")),
            (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", bad("chunk size")),
            (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n", bad("chunk end")),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nab", bad("bytes after the response")),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 2000000\r\n\r\n", Failure::TooLarge),
        ];
        for (input, want) in cases {
            for step in [1, 3, input.len()] {
                assert_eq!(run(input, step, false).0, Err(*want), "{}", String::from_utf8_lossy(input));
            }
        }
        let mut p = AnswerParser::new(LIMITS, false);
        assert_eq!(p.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab"), Ok(false));
        assert_eq!(p.end(), Err(Failure::Unavailable));
    }

    #[test]
    fn trims_values_as_javascript_does() {
        let (r, p) = run(b"HTTP/1.1 200 OK\r\nX: \xa0 v \x0b\r\nContent-Length: 0\r\n\r\n", 2, false);
        assert_eq!(r, Ok(true));
        assert_eq!(p.headers().next(), Some((&b"x"[..], &b"v"[..])));
    }
}
