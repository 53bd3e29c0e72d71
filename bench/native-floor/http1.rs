//! The heads the floor writes. It reads with the native crate's own readers:
//! `http1_request` for the client's request head (what it declines gets a 400
//! here) and `http1_answer` for the app's answer.

use openkcm_native::http1_answer::AnswerParser;
use openkcm_native::http1_request::RequestHead;

const HOP: [&[u8]; 5] = [b"connection", b"keep-alive", b"content-length", b"transfer-encoding", b"host"];

/// The head for the app: request line, `host: app`, the caller's headers but
/// hop-by-hop ones, and the body's length. `b` is what `head` was read from.
pub fn write_request_head(out: &mut Vec<u8>, b: &[u8], head: &RequestHead, body_len: usize) {
    out.extend_from_slice(&b[head.method.0..head.method.1]);
    out.push(b' ');
    out.extend_from_slice(&b[head.target.0..head.target.1]);
    out.extend_from_slice(b" HTTP/1.1\r\nhost: app\r\n");
    for &((ns, ne), (vs, ve)) in &head.headers {
        if !HOP.iter().any(|h| b[ns..ne].eq_ignore_ascii_case(h)) {
            out.extend_from_slice(&b[ns..ne]);
            out.extend_from_slice(b": ");
            out.extend_from_slice(&b[vs..ve]);
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(format!("content-length: {body_len}\r\n\r\n").as_bytes());
}

/// The answer for the client from a complete `answer`: status, type, length, body.
pub fn write_answer(out: &mut Vec<u8>, answer: &AnswerParser) {
    out.extend_from_slice(format!("HTTP/1.1 {} \r\n", answer.status()).as_bytes());
    if let Some((_, v)) = answer.headers().find(|(n, _)| *n == b"content-type") {
        out.extend_from_slice(b"content-type: ");
        out.extend_from_slice(v);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("content-length: {}\r\n\r\n", answer.body().len()).as_bytes());
    out.extend_from_slice(answer.body());
}
