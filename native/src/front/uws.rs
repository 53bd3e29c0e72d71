//! How uWS (20.30, the build the gateway ships) ends an answer the adapter
//! wrote (gateway/src/http/uws-adapter.ts `writeResponse`), so an answer
//! the native front writes is byte for byte the one the uWS front would
//! write. Observed on the binary (test/gateway/native-front/differential.test.ts
//! compares the two fronts):
//! - after the adapter's headers: `Connection: close` when the connection
//!   closes after the answer, then `Date: <IMF-fixdate>` and `uWebSockets: 20`;
//! - `end(body)`: `Content-Length: N`, the blank line and the body;
//! - an answer without content (HEAD, 204, 304) that stays open: the
//!   adapter's own lower-case `content-length` when it reports one (before
//!   `Date`), and no length of uWS's; one that closes: `Content-Length: 0`.

use std::time::{SystemTime, UNIX_EPOCH};

const DECIMAL_MAX: usize = 15;

/// A `content-length` value the adapter reports (framing.ts: 1–15 digits).
fn decimal(v: &[u8]) -> bool {
    (1..=DECIMAL_MAX).contains(&v.len()) && v.iter().all(u8::is_ascii_digit)
}

/// Appends what uWS writes after the adapter's headers (module notes).
/// `declared`: the answer's `content-length` header, if any.
pub fn finish(out: &mut Vec<u8>, status: u16, declared: Option<&[u8]>, body: &[u8], head: bool, close: bool, date: &[u8]) {
    use std::io::Write;
    let no_content = head || status == 204 || status == 304;
    if no_content && !close {
        // framing.ts reportedLength: never for 204; a valid declared length; else none (a forwarded body is empty).
        if let Some(len) = declared.filter(|v| status != 204 && decimal(v)) {
            out.extend_from_slice(b"content-length: ");
            out.extend_from_slice(len);
            out.extend_from_slice(b"\r\n");
        } else if head && status != 204 && !body.is_empty() {
            let _ = write!(out, "content-length: {}\r\n", body.len());
        }
        date_lines(out, date);
        out.extend_from_slice(b"\r\n");
        return;
    }
    if close {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    date_lines(out, date);
    let body = if no_content { &[][..] } else { body };
    let _ = write!(out, "Content-Length: {}\r\n\r\n", body.len());
    out.extend_from_slice(body);
}

fn date_lines(out: &mut Vec<u8>, date: &[u8]) {
    out.extend_from_slice(b"Date: ");
    out.extend_from_slice(date);
    out.extend_from_slice(b"\r\nuWebSockets: 20\r\n");
}

/// The IMF-fixdate (RFC 9110 §5.6.7) of `secs` since the epoch: `Mon, 30 Nov 2026 01:32:12 GMT`.
pub fn imf_fixdate(secs: u64) -> [u8; 29] {
    const DAYS: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
    const MONTHS: [&[u8; 3]; 12] =
        [b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec"];
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let mut out = [0u8; 29];
    let mut at = 0;
    let mut put = |s: &[u8]| {
        out[at..at + s.len()].copy_from_slice(s);
        at += s.len();
    };
    let two = |n: i64| [b'0' + (n / 10) as u8, b'0' + (n % 10) as u8];
    put(DAYS[(days % 7) as usize]);
    put(b", ");
    put(&two(day));
    put(b" ");
    put(MONTHS[(month - 1) as usize]);
    put(b" ");
    put(&two(year / 100));
    put(&two(year % 100));
    put(b" ");
    put(&two((rem / 3600) as i64));
    put(b":");
    put(&two((rem / 60 % 60) as i64));
    put(b":");
    put(&two((rem % 60) as i64));
    put(b" GMT");
    out
}

/// The current second's date line value, made once per second.
pub struct Clock {
    second: u64,
    text: [u8; 29],
}

impl Clock {
    pub fn new() -> Self {
        let mut c = Clock { second: u64::MAX, text: [0; 29] };
        c.tick();
        c
    }
    /// Refreshes the text when the second changed.
    pub fn tick(&mut self) {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if now != self.second {
            self.second = now;
            self.text = imf_fixdate(now);
        }
    }
    pub fn text(&self) -> &[u8] {
        &self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_imf_fixdates() {
        assert_eq!(&imf_fixdate(0), b"Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(&imf_fixdate(1_796_002_332), b"Mon, 30 Nov 2026 01:32:12 GMT");
        assert_eq!(&imf_fixdate(951_782_400), b"Tue, 29 Feb 2000 00:00:00 GMT");
    }

    #[test]
    fn frames_as_uws_does() {
        let d = b"Mon, 30 Nov 2026 01:32:12 GMT";
        let mut out = Vec::new();
        finish(&mut out, 200, None, b"{}", false, false, d);
        assert_eq!(out, b"Date: Mon, 30 Nov 2026 01:32:12 GMT\r\nuWebSockets: 20\r\nContent-Length: 2\r\n\r\n{}");
        out.clear();
        finish(&mut out, 200, Some(b"7"), b"", true, false, d);
        assert_eq!(out, b"content-length: 7\r\nDate: Mon, 30 Nov 2026 01:32:12 GMT\r\nuWebSockets: 20\r\n\r\n");
        out.clear();
        finish(&mut out, 204, Some(b"7"), b"", false, false, d);
        assert_eq!(out, b"Date: Mon, 30 Nov 2026 01:32:12 GMT\r\nuWebSockets: 20\r\n\r\n");
        out.clear();
        finish(&mut out, 502, None, b"x", false, true, d);
        assert_eq!(out, b"Connection: close\r\nDate: Mon, 30 Nov 2026 01:32:12 GMT\r\nuWebSockets: 20\r\nContent-Length: 1\r\n\r\nx");
    }
}
