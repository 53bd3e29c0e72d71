//! The floor of a native data plane: what a proxy in Rust that owns its
//! sockets end to end would cost on the proxy scenarios, measured in the same
//! run as the gateway, the hand-written proxy, nginx and the bare uWS
//! forwarder (bench/scenarios/catalog.ts, `proxyTrio`).
//!
//! One thread, level-triggered epoll, keep-alive on both sides. A request is
//! read whole (head and Content-Length body) with the native crate's strict
//! request reader (`http1_request`), its head rebuilt for the app,
//! and on `POST` its JSON body goes through the native module's own code, the
//! same functions the gateway calls: `json_targets` for the scenario's five
//! fields, then `seal_splice` (a fresh data key wrapped under a KEK, one AEAD
//! batch, the envelopes spliced in). The app's answer is read whole with the
//! crate's answer reader (`http1_answer`, the twin of the gateway's), and
//! written back with its status, type and body.
//!
//! It is a measuring stick, not a proxy: no policy file, no tenant or caller
//! check, no limits but a fixed size cap, no timeouts, no audit, no metrics,
//! no decryption (the `GET` rows are forwarded as they are), and anything it
//! does not read (chunked requests, a body that the scan declines) gets a 400
//! and a closed connection. What it shows is the CPU per request and the
//! latency a native loop adds before any of that is built: the number an
//! ADR for a native data plane needs (docs/gateway.md, "The proxy targets
//! and what would meet them").
//!
//! Usage: `kcm-native-floor --upstream PORT [--fields $.a.b,...]`; prints
//! `{"http":PORT}` once listening on 127.0.0.1.

#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

mod http1;


use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;

use openkcm_native::http1_answer::{AnswerLimits, AnswerParser};
use openkcm_native::http1_request::{self, Parsed, RequestLimits, MAX_HEAD, MAX_HEADERS};
use openkcm_native::{json_targets, keys, ossl, seal_splice};
use openkcm_native::front::poll::{self, Poll, READ, WRITE};

/// Largest request or answer read (the scenarios send and receive ~2 KB).
const MAX_MESSAGE: usize = 1 << 20;
const REQUEST_LIMITS: RequestLimits = RequestLimits {
    max_head: MAX_HEAD,
    max_headers: MAX_HEADERS,
};
const ANSWER_LIMITS: AnswerLimits = AnswerLimits {
    max_head: 16384,
    max_body: MAX_MESSAGE,
};
const LISTENER: u64 = u64::MAX;

/// The scenario's selectors (bench/scenarios/payloads.ts `ORDER_FIELDS`).
const DEFAULT_FIELDS: &str = "$.card.number,$.card.cvv,$.customer.email,$.customer.phone,$.customer.taxId";

/// The selectors (`$.a.b`, member steps only) as rules, every field required.
fn encode_selectors(selectors: &str) -> Vec<u8> {
    let steps: Vec<Vec<&str>> = selectors
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|sel| sel.trim_start_matches("$.").split('.').collect())
        .collect();
    let rules: Vec<(bool, &[&str])> = steps.iter().map(|s| (true, s.as_slice())).collect();
    json_targets::encode_rules(&rules)
}

/// What sealing needs besides the body: the same lengths the gateway's envelopes have.
struct Sealer {
    rules: json_targets::CompiledRules,
    kek: [u8; keys::KEY_LEN],
    wrap_aad: Vec<u8>,
    header: Vec<u8>,
    aad_head: Vec<u8>,
    contexts: Vec<Vec<u8>>,
}

impl Sealer {
    fn new(selectors: &str) -> Result<Self, String> {
        let rules = json_targets::compile_rules(&encode_selectors(selectors)).map_err(|e| format!("{e:?}"))?;
        let mut kek = [0u8; keys::KEY_LEN];
        ossl::random_bytes(&mut kek).map_err(|e| format!("{e:?}"))?;
        let contexts = selectors
            .split(',')
            .map(|s| format!("bench-orders\0{}", s.trim_start_matches("$.")).into_bytes())
            .collect();
        Ok(Sealer {
            rules,
            kek,
            wrap_aad: b"okcm-l4|bench|orders|1".to_vec(),
            header: b"\x01\x01\x05bench\x06orders\x00\x00\x00\x01".to_vec(),
            aad_head: b"okcm-field|bench|orders|1".to_vec(),
            contexts,
        })
    }

    /// The body with the selected string fields sealed, or None when the scan
    /// declines or a field is not a plain string.
    fn seal(&self, body: &[u8]) -> Option<Vec<u8>> {
        std::str::from_utf8(body).ok()?;
        let targets = json_targets::json_targets(body, &self.rules, 32, 500).ok()??;
        let mut spans = Vec::with_capacity(targets.len());
        let mut order: Vec<(u32, u32, u32)> = Vec::with_capacity(targets.len() / 4);
        for t in targets.chunks_exact(4) {
            if t[3] != 3 {
                return None;
            }
            order.push((t[1], t[2], t[0]));
        }
        order.sort_unstable();
        let contexts: Vec<&[u8]> = order.iter().map(|o| self.contexts[o.2 as usize].as_slice()).collect();
        for (start, end, _) in &order {
            spans.extend([*start, *end, start + 1, end - 1]);
        }
        let items = seal_splice::items_from_spans(&spans, body.len()).ok()?;
        let heads = seal_splice::SpliceHeads {
            text_head: b"okcm:v1:",
            header: &self.header,
            aad_head: &self.aad_head,
        };
        let mut out = vec![0u8; seal_splice::output_len(body.len(), &items, &heads).ok()?];
        seal_splice::seal_splice(&self.kek, &self.wrap_aad, body, &items, &contexts, &heads, &mut out).ok()?;
        Some(out)
    }
}

enum Role {
    Client { upstream: Option<usize> },
    /// The client it answers, and the reader of that answer.
    Upstream { client: Option<(usize, AnswerParser)> },
}

struct Conn {
    stream: TcpStream,
    role: Role,
    input: Vec<u8>,
    output: Vec<u8>,
    writing: bool,
}

struct Floor {
    poll: Poll,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    idle: Vec<usize>,
    app: SocketAddr,
    sealer: Sealer,
}

impl Floor {
    fn add(&mut self, stream: TcpStream, role: Role) -> std::io::Result<usize> {
        stream.set_nonblocking(true)?;
        stream.set_nodelay(true)?;
        let id = self.free.pop().unwrap_or_else(|| {
            self.conns.push(None);
            self.conns.len() - 1
        });
        self.poll.add(stream.as_raw_fd(), id as u64, READ)?;
        self.conns[id] = Some(Conn { stream, role, input: Vec::with_capacity(4096), output: Vec::new(), writing: false });
        Ok(id)
    }

    fn close(&mut self, id: usize) {
        let Some(conn) = self.conns.get_mut(id).and_then(Option::take) else { return };
        let _ = self.poll.delete(conn.stream.as_raw_fd());
        self.free.push(id);
        self.idle.retain(|&i| i != id);
        match conn.role {
            Role::Client { upstream: Some(u) } => self.close(u),
            Role::Upstream { client: Some((c, _)) } => self.answer_error(c, "502 Bad Gateway"),
            _ => {}
        }
    }

    /// Writes `bytes` to `id` now, keeping what the socket does not take for EPOLLOUT.
    fn send(&mut self, id: usize, bytes: &[u8]) {
        let Some(conn) = self.conns.get_mut(id).and_then(Option::as_mut) else { return };
        if conn.writing {
            conn.output.extend_from_slice(bytes);
            return;
        }
        let mut at = 0;
        while at < bytes.len() {
            match conn.stream.write(&bytes[at..]) {
                Ok(0) => return self.close(id),
                Ok(n) => at += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return self.close(id),
            }
        }
        if at < bytes.len() {
            conn.output.extend_from_slice(&bytes[at..]);
            conn.writing = true;
            if self.poll.modify(conn.stream.as_raw_fd(), id as u64, READ | WRITE).is_err() {
                self.close(id);
            }
        }
    }

    fn flush(&mut self, id: usize) {
        let Some(conn) = self.conns.get_mut(id).and_then(Option::as_mut) else { return };
        let pending = std::mem::take(&mut conn.output);
        conn.writing = false;
        if self.poll.modify(conn.stream.as_raw_fd(), id as u64, READ).is_err() {
            return self.close(id);
        }
        self.send(id, &pending);
    }

    fn answer_error(&mut self, client: usize, status: &str) {
        if let Some(Some(Conn { role: Role::Client { upstream }, .. })) = self.conns.get_mut(client) {
            *upstream = None;
        }
        let text = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        self.send(client, text.as_bytes());
        self.close(client);
    }

    /// Reads what `id` has; false when it closed.
    fn fill(&mut self, id: usize) -> bool {
        let Some(conn) = self.conns.get_mut(id).and_then(Option::as_mut) else { return false };
        let mut buf = [0u8; 16384];
        loop {
            match conn.stream.read(&mut buf) {
                Ok(0) => return false,
                Ok(n) => {
                    if conn.input.len() + n > MAX_MESSAGE {
                        return false;
                    }
                    conn.input.extend_from_slice(&buf[..n]);
                    // Level-triggered: a short read drained the socket for now; a
                    // further read would only return EAGAIN (one syscall saved).
                    if n < buf.len() {
                        return true;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
    }

    /// Forwards the next whole request of `client`, if one is there and none is in flight.
    fn dispatch(&mut self, client: usize) {
        let Some(conn) = self.conns.get_mut(client).and_then(Option::as_mut) else { return };
        if matches!(conn.role, Role::Client { upstream: Some(_) }) {
            return;
        }
        let head = match http1_request::parse_request_head(&conn.input, REQUEST_LIMITS) {
            Parsed::Partial => return,
            Parsed::Decline(_) => return self.answer_error(client, "400 Bad Request"),
            Parsed::Head(h) => h,
        };
        let len = head.len + head.content_length as usize;
        if conn.input.len() < len {
            return;
        }
        let input = &conn.input;
        let method = &input[head.method.0..head.method.1];
        let answer = AnswerParser::new(ANSWER_LIMITS, method == b"HEAD");
        let mut message = Vec::with_capacity(len + 512);
        let body = &input[head.len..len];
        let sealed;
        let body = if method == b"POST" && !body.is_empty() {
            match self.sealer.seal(body) {
                Some(s) => {
                    sealed = s;
                    &sealed[..]
                }
                None => return self.answer_error(client, "400 Bad Request"),
            }
        } else {
            body
        };
        http1::write_request_head(&mut message, input, &head, body.len());
        message.extend_from_slice(body);
        conn.input.drain(..len);
        let upstream = match self.idle.pop() {
            Some(u) => u,
            None => match TcpStream::connect(self.app).map_err(|_| ()).and_then(|s| {
                self.add(s, Role::Upstream { client: None }).map_err(|_| ())
            }) {
                Ok(u) => u,
                Err(()) => return self.answer_error(client, "502 Bad Gateway"),
            },
        };
        if let Some(Some(Conn { role: Role::Client { upstream: u }, .. })) = self.conns.get_mut(client) {
            *u = Some(upstream);
        }
        if let Some(Some(Conn { role: Role::Upstream { client: c }, .. })) = self.conns.get_mut(upstream) {
            *c = Some((client, answer));
        }
        self.send(upstream, &message);
    }

    /// Answers the client once the app's answer is whole.
    fn relay(&mut self, upstream: usize) {
        let Some(conn) = self.conns.get_mut(upstream).and_then(Option::as_mut) else { return };
        let Role::Upstream { client: Some((_, answer)) } = &mut conn.role else { return self.close(upstream) };
        let read = answer.feed(&conn.input);
        conn.input.clear();
        match read {
            Ok(false) => return,
            Err(_) => return self.close(upstream),
            Ok(true) => {}
        }
        let Role::Upstream { client: Some((client, answer)) } = std::mem::replace(&mut conn.role, Role::Upstream { client: None }) else {
            return;
        };
        let mut out = Vec::with_capacity(answer.body().len() + 128);
        http1::write_answer(&mut out, &answer);
        self.idle.push(upstream);
        if let Some(Some(Conn { role: Role::Client { upstream: u }, .. })) = self.conns.get_mut(client) {
            *u = None;
        }
        self.send(client, &out);
        self.dispatch(client);
    }

    fn run(&mut self, listener: &TcpListener) -> std::io::Result<()> {
        let mut events = poll::Events::with_capacity(256);
        loop {
            self.poll.wait(&mut events)?;
            for (token, flags) in events.iter() {
                if token == LISTENER {
                    while let Ok((s, _)) = listener.accept() {
                        let _ = self.add(s, Role::Client { upstream: None });
                    }
                    continue;
                }
                let id = token as usize;
                if flags & WRITE != 0 {
                    self.flush(id);
                }
                if flags & !WRITE == 0 {
                    continue;
                }
                let open = self.fill(id);
                let is_client = matches!(self.conns.get(id), Some(Some(Conn { role: Role::Client { .. }, .. })));
                if is_client {
                    self.dispatch(id);
                } else {
                    self.relay(id);
                }
                if !open {
                    self.close(id);
                }
            }
        }
    }
}

fn main() {
    let mut upstream: Option<u16> = None;
    let mut fields = DEFAULT_FIELDS.to_string();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--upstream" => upstream = args.next().and_then(|p| p.parse().ok()),
            "--fields" => fields = args.next().unwrap_or_default(),
            _ => {}
        }
    }
    let Some(port) = upstream else {
        eprintln!("usage: kcm-native-floor --upstream PORT [--fields $.a.b,...]");
        std::process::exit(2);
    };
    let result = (|| -> Result<(), String> {
        let sealer = Sealer::new(&fields)?;
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        listener.set_nonblocking(true).map_err(|e| e.to_string())?;
        let poll = Poll::new().map_err(|e| e.to_string())?;
        poll.add(listener.as_raw_fd(), LISTENER, READ).map_err(|e| e.to_string())?;
        let local = listener.local_addr().map_err(|e| e.to_string())?;
        println!("{{\"http\":{}}}", local.port());
        let mut floor = Floor {
            poll,
            conns: Vec::new(),
            free: Vec::new(),
            idle: Vec::new(),
            app: SocketAddr::from(([127, 0, 0, 1], port)),
            sealer,
        };
        floor.run(&listener).map_err(|e| e.to_string())
    })();
    if let Err(e) = result {
        eprintln!("kcm-native-floor: {e}");
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORDER: &str = r#"{"id":"o1","card":{"number":"4111 1111 1111 1111","cvv":"737","brand":"visa"},"customer":{"email":"ada@example.com","phone":"+44 20","taxId":"GB1"},"n":[1,2]}"#;

    #[test]
    fn seals_the_five_fields_and_leaves_the_rest() {
        let sealer = Sealer::new(DEFAULT_FIELDS).unwrap();
        let out = String::from_utf8(sealer.seal(ORDER.as_bytes()).unwrap()).unwrap();
        for secret in ["4111 1111 1111 1111", "737", "ada@example.com", "+44 20", "GB1"] {
            assert!(!out.contains(secret), "{secret} left in clear");
        }
        assert_eq!(out.matches("\"okcm:v1:").count(), 5);
        assert!(out.starts_with(r#"{"id":"o1","card":{"number":"okcm:v1:"#));
        assert!(out.ends_with(r#""n":[1,2]}"#));
        assert!(out.contains(r#""brand":"visa""#));
    }

    #[test]
    fn declines_what_it_does_not_seal() {
        let sealer = Sealer::new(DEFAULT_FIELDS).unwrap();
        assert!(sealer.seal(br#"{"card":{"number":4111}}"#).is_none(), "a number");
        assert!(sealer.seal(br#"{"card":{"number":"1""#).is_none(), "malformed");
        assert!(sealer.seal(b"{\"card\":{\"number\":\"\xff\"}}").is_none(), "not UTF-8");
    }

    #[test]
    fn rewrites_the_head_it_read_for_the_app() {
        let whole = b"POST /orders HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nX-Tenant-Id: t\r\n\r\nabcd";
        let Parsed::Head(head) = http1_request::parse_request_head(whole, REQUEST_LIMITS) else { panic!("not read") };
        let mut out = Vec::new();
        http1::write_request_head(&mut out, whole, &head, 9);
        assert_eq!(out, b"POST /orders HTTP/1.1\r\nhost: app\r\nX-Tenant-Id: t\r\ncontent-length: 9\r\n\r\n");
    }

    #[test]
    fn writes_the_answer_it_read() {
        let mut answer = AnswerParser::new(ANSWER_LIMITS, false);
        let chunked = b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n";
        assert_eq!(answer.feed(chunked), Ok(true));
        let mut out = Vec::new();
        http1::write_answer(&mut out, &answer);
        assert_eq!(out, b"HTTP/1.1 201 \r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}");
    }
}
