//! Just enough HTTP/1.1 for the floor: a request with a Content-Length body
//! (or none), an answer with Content-Length or chunked. Anything else is
//! `Invalid` and the connection is closed: this is a measuring stick, the
//! product's parser is uWS's.

pub enum Parsed<T> {
    Partial,
    Invalid,
    Done(T),
}

/// Byte ranges of one whole request at the start of the buffer.
pub struct Request {
    pub method: Vec<u8>,
    /// Request line's method and target, `start..end` (without " HTTP/1.1").
    pub line: (usize, usize),
    /// Header lines, `start..end` of the block (without the final CRLF CRLF).
    pub headers: (usize, usize),
    pub body: (usize, usize),
    /// Bytes the request takes in the buffer.
    pub len: usize,
}

pub struct Answer {
    pub status: (usize, usize),
    pub content_type: Option<(usize, usize)>,
    /// Body: one range (Content-Length) or the chunks' data ranges.
    pub body: Vec<(usize, usize)>,
}

impl Answer {
    pub fn body_len(&self) -> usize {
        self.body.iter().map(|(s, e)| e - s).sum()
    }
}

fn find(b: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    b.get(from..)?.windows(needle.len()).position(|w| w == needle).map(|i| i + from)
}

fn number(b: &[u8], radix: u32) -> Option<usize> {
    let s = std::str::from_utf8(b).ok()?.trim();
    if s.is_empty() || s.len() > 12 {
        return None;
    }
    usize::from_str_radix(s, radix).ok()
}

/// Header lines of `b[start..end]` as (lower-cased name match, value range).
fn header(b: &[u8], (start, end): (usize, usize), name: &[u8]) -> Option<(usize, usize)> {
    let mut at = start;
    while at < end {
        let eol = find(b, at, b"\r\n").filter(|&e| e <= end).unwrap_or(end);
        let line = &b[at..eol];
        if let Some(colon) = line.iter().position(|&c| c == b':') {
            if line[..colon].eq_ignore_ascii_case(name) {
                return Some((at + colon + 1, eol));
            }
        }
        at = eol + 2;
    }
    None
}

pub fn parse_request(b: &[u8]) -> Parsed<Request> {
    let Some(head_end) = find(b, 0, b"\r\n\r\n") else {
        return if b.len() > 16384 { Parsed::Invalid } else { Parsed::Partial };
    };
    let Some(line_end) = find(b, 0, b"\r\n") else { return Parsed::Invalid };
    let line = &b[..line_end];
    let Some(sp) = line.iter().position(|&c| c == b' ') else { return Parsed::Invalid };
    if !line.ends_with(b" HTTP/1.1") {
        return Parsed::Invalid;
    }
    let headers = (line_end + 2, head_end);
    if header(b, headers, b"transfer-encoding").is_some() {
        return Parsed::Invalid;
    }
    let len = match header(b, headers, b"content-length") {
        Some((s, e)) => match number(&b[s..e], 10) {
            Some(n) => n,
            None => return Parsed::Invalid,
        },
        None => 0,
    };
    let body = (head_end + 4, head_end + 4 + len);
    if b.len() < body.1 {
        return Parsed::Partial;
    }
    Parsed::Done(Request {
        method: line[..sp].to_vec(),
        line: (0, line_end - 9),
        headers,
        body,
        len: body.1,
    })
}

const HOP: [&[u8]; 5] = [b"connection", b"keep-alive", b"content-length", b"transfer-encoding", b"host"];

/// The head for the app: request line, `host: app`, the caller's headers but
/// hop-by-hop ones, and the body's length.
pub fn write_request_head(out: &mut Vec<u8>, b: &[u8], req: &Request, body_len: usize) {
    out.extend_from_slice(&b[req.line.0..req.line.1]);
    out.extend_from_slice(b" HTTP/1.1\r\nhost: app\r\n");
    let (mut at, end) = req.headers;
    while at < end {
        let eol = find(b, at, b"\r\n").filter(|&e| e <= end).unwrap_or(end);
        let line = &b[at..eol];
        let name = line.iter().position(|&c| c == b':').map_or(line, |c| &line[..c]);
        if !HOP.iter().any(|h| name.eq_ignore_ascii_case(h)) {
            out.extend_from_slice(line);
            out.extend_from_slice(b"\r\n");
        }
        at = eol + 2;
    }
    out.extend_from_slice(format!("content-length: {body_len}\r\n\r\n").as_bytes());
}

pub fn parse_answer(b: &[u8]) -> Parsed<Answer> {
    let Some(head_end) = find(b, 0, b"\r\n\r\n") else {
        return if b.len() > 16384 { Parsed::Invalid } else { Parsed::Partial };
    };
    let Some(line_end) = find(b, 0, b"\r\n") else { return Parsed::Invalid };
    if line_end < 12 || !b.starts_with(b"HTTP/1.1 ") {
        return Parsed::Invalid;
    }
    let headers = (line_end + 2, head_end);
    let content_type = header(b, headers, b"content-type");
    let start = head_end + 4;
    let mut body = Vec::with_capacity(1);
    if let Some((s, e)) = header(b, headers, b"content-length") {
        let Some(n) = number(&b[s..e], 10) else { return Parsed::Invalid };
        if b.len() < start + n {
            return Parsed::Partial;
        }
        body.push((start, start + n));
    } else if header(b, headers, b"transfer-encoding").is_some() {
        let mut at = start;
        loop {
            let Some(eol) = find(b, at, b"\r\n") else { return Parsed::Partial };
            let Some(size) = number(&b[at..eol], 16) else { return Parsed::Invalid };
            if size == 0 {
                if b.len() < eol + 4 {
                    return Parsed::Partial;
                }
                break;
            }
            if b.len() < eol + 2 + size + 2 {
                return Parsed::Partial;
            }
            body.push((eol + 2, eol + 2 + size));
            at = eol + 2 + size + 2;
        }
    } else {
        return Parsed::Invalid;
    }
    Parsed::Done(Answer { status: (9, line_end), content_type, body })
}

/// The answer for the client: status, type, length, body.
pub fn write_answer(out: &mut Vec<u8>, b: &[u8], a: &Answer) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(&b[a.status.0..a.status.1]);
    out.extend_from_slice(b"\r\n");
    if let Some((s, e)) = a.content_type {
        out.extend_from_slice(b"content-type:");
        out.extend_from_slice(&b[s..e]);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("content-length: {}\r\n\r\n", a.body_len()).as_bytes());
    for (s, e) in &a.body {
        out.extend_from_slice(&b[*s..*e]);
    }
}
