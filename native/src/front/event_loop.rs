//! The native front's event loop: one thread, level-triggered epoll,
//! keep-alive on both sides (docs/decisions/0001-native-data-plane.md,
//! step 2).
//!
//! A client connection starts **serving**: each request is read whole
//! (head by `http1_request`, body by its Content-Length), and either served
//! (route.rs says so: forwarded to its upstream, the answer relayed) or
//! **declined**. A declined connection becomes a byte tunnel to the
//! pipeline's internal uWS listener for the rest of its life: a PROXY v2
//! header naming the client, then every byte from the declined request on,
//! both ways. So whatever the front does not serve, the pipeline answers as
//! it answers the uWS front.
//!
//! Upstream connections are pooled per upstream address as the gateway's
//! HTTP/1.1 client pools them (gateway/src/upstream/h1-client.ts): at most
//! `connections` per address, a bounded FIFO wait queue (`maxQueue`,
//! `queueMs`), connect / headers / body-silence deadlines, idle connections
//! closed after `keepAliveMs` or the upstream's own `Keep-Alive: timeout`
//! less a second, the most recently used idle connection taken first, and one
//! retry on a fresh connection for an idempotent request whose reused
//! connection failed before any answer byte. Failures answer as the pipeline
//! does (502 / 503 / 504, wire.rs `upstream_error`).
//!
//! Bounds: a request is read up to [`MAX_REQUEST`] (past it, declined); a
//! client's unread input while a request is in flight, and a tunnel's bytes
//! waiting on the other side, stop reading at [`PAUSE_AT`] bytes; a tunnel
//! carrying the PROXY v2 signature from the client is closed (uWS would
//! read it as a new header at a request boundary). Clients idle for
//! [`CLIENT_IDLE`] are closed, as uWS closes them.

use std::collections::{HashMap, VecDeque};
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::poll::{Events, Poll, HUP, READ, WRITE};
use super::route::{self, Served};
use super::seal;
use super::table::Table;
use super::uws::Clock;
use super::wire::{self, Failure, PROXY_V2_SIGNATURE};
use super::Shared;
use crate::http1_answer::{self, AnswerLimits, AnswerParser};
use crate::http1_request::{self, Parsed, RequestLimits, MAX_HEAD, MAX_HEADERS};

/// Largest request (head and body) the front reads; larger ones are declined.
pub const MAX_REQUEST: usize = 1 << 20;
/// Unsent bytes past which the side feeding them stops being read.
pub const PAUSE_AT: usize = 256 * 1024;
/// uWS closes an HTTP connection idle for 10 s.
pub const CLIENT_IDLE: Duration = Duration::from_secs(10);
/// Upstream answer heads are read up to this (h1-connection.ts: the pool's default `maxHeadBytes`).
pub const MAX_ANSWER_HEAD: usize = 64 * 1024;
/// How long a stopped listener (out of descriptors) waits before accepting again.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);
/// Longest a declined connection waits for room in the pipeline listener's backlog.
const TUNNEL_WAIT: Duration = Duration::from_secs(2);
/// How long before an upstream's announced keep-alive timeout a connection stops being reused (h1-connection.ts).
const KEEP_ALIVE_MARGIN: Duration = Duration::from_millis(1000);
/// Deadlines are checked this often.
const SWEEP: Duration = Duration::from_millis(20);
/// Longest a request waits for its key to be copied in before the pipeline takes it.
const PARK_MAX: Duration = Duration::from_millis(500);

const LISTENER: u64 = u64::MAX;
const WAKER: u64 = u64::MAX - 1;
const REQUEST_LIMITS: RequestLimits = RequestLimits { max_head: MAX_HEAD, max_headers: MAX_HEADERS };
const IDEMPOTENT: [&[u8]; 5] = [b"GET", b"HEAD", b"OPTIONS", b"PUT", b"DELETE"];

type Token = u64;

fn index(t: Token) -> usize {
    (t & 0xffff_ffff) as usize
}

enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    fn fd(&self) -> i32 {
        match self {
            Stream::Tcp(s) => s.as_raw_fd(),
            Stream::Unix(s) => s.as_raw_fd(),
        }
    }
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }
    fn shutdown_write(&self) {
        let _ = match self {
            Stream::Tcp(s) => s.shutdown(Shutdown::Write),
            Stream::Unix(s) => s.shutdown(Shutdown::Write),
        };
    }
    fn take_error(&self) -> io::Result<Option<io::Error>> {
        match self {
            Stream::Tcp(s) => s.take_error(),
            Stream::Unix(s) => s.take_error(),
        }
    }
}

/// One request being served.
struct Exchange {
    table: Arc<Table>,
    route: usize,
    head_request: bool,
    idempotent: bool,
    /// The client asked to close after this answer.
    close: bool,
    started: Instant,
    correlation: Vec<u8>,
    /// The request for the upstream; kept until the exchange ends (a retry sends it again).
    message: Vec<u8>,
    retried: bool,
    /// The upstream connection carrying it, once it has one.
    conn: Option<Token>,
}

impl Exchange {
    /// The upstream its route forwards to.
    fn upstream(&self) -> &super::table::Upstream {
        &self.table.upstreams[self.table.routes[self.route].upstream]
    }

    /// The id of its route's metrics name.
    fn name(&self) -> u32 {
        self.table.routes[self.route].name
    }
}

enum ClientState {
    /// Reading the next request.
    Idle,
    /// A request waiting for a connection or its answer.
    Exchange(Box<Exchange>),
    /// Declined: bytes go to and from `peer`. `tail`: the last bytes sent
    /// through, to find the PROXY v2 signature across reads.
    Tunnel { peer: Token, tail: Vec<u8> },
}

struct Client {
    peer: SocketAddr,
    local: SocketAddr,
    state: ClientState,
    /// Since when the request at the head of `input` waits for its key (seal.rs).
    parked: Option<Instant>,
}

enum UpState {
    Connecting,
    Busy(AnswerParser),
    Idle { since: Instant },
}

struct Upstream {
    addr: SocketAddr,
    /// Set while it carries a client's exchange.
    client: Option<Token>,
    state: UpState,
    /// It carried an exchange before this one.
    reused: bool,
    /// How long it may stay idle after an answer.
    idle_limit: Duration,
}

enum Kind {
    Client(Client),
    Upstream(Upstream),
    /// The pipeline's side of a tunnel.
    Uws { client: Token },
}

struct Conn {
    stream: Stream,
    token: Token,
    input: Vec<u8>,
    output: Vec<u8>,
    interest: u32,
    /// Stop reading (the other side has too much to send).
    paused: bool,
    /// Close once `output` is sent.
    close_after: bool,
    /// Shut the write side down once `output` is sent (a tunnel's client half-closed).
    shutdown_after: bool,
    deadline: Option<Instant>,
    /// While output waits: when the peer must have taken some of it (a client that stops
    /// reading is closed, as uWS closes it).
    write_deadline: Option<Instant>,
    kind: Kind,
}

#[derive(Default)]
struct Pool {
    open: usize,
    /// Most recently used last.
    idle: Vec<Token>,
    /// Clients waiting for a connection, oldest first, with the time they started waiting.
    queue: VecDeque<(Token, Instant)>,
}

pub struct Loop {
    shared: Arc<Shared>,
    poll: Poll,
    listener: TcpListener,
    tunnel_path: PathBuf,
    conns: Vec<Option<Conn>>,
    generations: Vec<u32>,
    free: Vec<usize>,
    pools: HashMap<SocketAddr, Pool>,
    clock: Clock,
    prefix: [u8; 12],
    seq: u64,
    buf: Vec<u8>,
    last_sweep: Instant,
    /// Set while the listener is out of epoll (accept failed: out of descriptors).
    accept_paused: Option<Instant>,
}

impl Loop {
    pub fn new(shared: Arc<Shared>, listener: TcpListener, tunnel_path: PathBuf) -> io::Result<Loop> {
        listener.set_nonblocking(true)?;
        let poll = Poll::new()?;
        poll.add(listener.as_raw_fd(), LISTENER, READ)?;
        poll.add(shared.waker.fd(), WAKER, READ)?;
        let mut raw = [0u8; 6];
        crate::ossl::random_bytes(&mut raw).map_err(|_| io::Error::other("no random bytes"))?;
        let mut prefix = [0u8; 12];
        for (i, b) in raw.iter().enumerate() {
            prefix[2 * i] = b"0123456789abcdef"[usize::from(b >> 4)];
            prefix[2 * i + 1] = b"0123456789abcdef"[usize::from(b & 15)];
        }
        Ok(Loop {
            shared,
            poll,
            listener,
            tunnel_path,
            conns: Vec::new(),
            generations: Vec::new(),
            free: Vec::new(),
            pools: HashMap::new(),
            clock: Clock::new(),
            prefix,
            seq: 0,
            buf: vec![0u8; 64 * 1024],
            last_sweep: Instant::now(),
            accept_paused: None,
        })
    }

    /// Runs until [`Shared::stop`] is set; every connection is closed on return.
    pub fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(256);
        while !self.shared.stopping.load(Ordering::Acquire) {
            let timeout = if self.free.len() < self.conns.len() { SWEEP.as_millis() as i32 } else { -1 };
            self.poll.wait_for(&mut events, timeout)?;
            self.clock.tick();
            for (token, flags) in events.iter() {
                match token {
                    LISTENER => self.accept(),
                    WAKER => self.shared.waker.reset(),
                    t => self.event(t, flags),
                }
            }
            let now = Instant::now();
            if now.duration_since(self.last_sweep) >= SWEEP {
                self.last_sweep = now;
                self.sweep(now);
            }
        }
        Ok(())
    }

    fn conn(&mut self, t: Token) -> Option<&mut Conn> {
        self.conns.get_mut(index(t)).and_then(Option::as_mut).filter(|c| c.token == t)
    }

    fn add(&mut self, stream: Stream, kind: Kind, interest: u32) -> io::Result<Token> {
        let i = self.free.pop().unwrap_or_else(|| {
            self.conns.push(None);
            self.generations.push(0);
            self.conns.len() - 1
        });
        self.generations[i] = self.generations[i].wrapping_add(1);
        let token = (u64::from(self.generations[i]) << 32) | i as u64;
        if let Err(e) = self.poll.add(stream.fd(), token, interest) {
            self.free.push(i);
            return Err(e);
        }
        self.conns[i] = Some(Conn {
            stream,
            token,
            input: Vec::new(),
            output: Vec::new(),
            interest,
            paused: false,
            close_after: false,
            shutdown_after: false,
            deadline: None,
            write_deadline: None,
            kind,
        });
        Ok(token)
    }

    fn accept(&mut self) {
        loop {
            let (s, peer) = match self.listener.accept() {
                Ok(x) => x,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(_) => {
                    // Out of descriptors: the listener stays readable, so it leaves epoll a while
                    // (the sweep puts it back) rather than wake the loop without end.
                    let _ = self.poll.delete(self.listener.as_raw_fd());
                    self.accept_paused = Some(Instant::now());
                    return;
                }
            };
            let Ok(local) = s.local_addr() else { continue };
            if s.set_nonblocking(true).is_err() || s.set_nodelay(true).is_err() {
                continue;
            }
            let client = Client { peer, local, state: ClientState::Idle, parked: None };
            if let Ok(t) = self.add(Stream::Tcp(s), Kind::Client(client), READ) {
                if let Some(c) = self.conn(t) {
                    c.deadline = Some(Instant::now() + CLIENT_IDLE);
                }
                self.shared.stats.connections.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Sets the epoll interest `c` needs now: READ unless paused or closing, WRITE while output waits.
    fn interest(&mut self, t: Token) {
        let Some(c) = self.conn(t) else { return };
        let mut want = if c.paused || c.close_after { 0 } else { READ };
        if !c.output.is_empty() {
            want |= WRITE;
        }
        if want != c.interest {
            c.interest = want;
            let (fd, token) = (c.stream.fd(), c.token);
            if self.poll.modify(fd, token, want).is_err() {
                self.close(t);
            }
        }
    }

    fn event(&mut self, t: Token, flags: u32) {
        if self.conn(t).is_none() {
            return; // closed earlier in this batch
        }
        if flags & WRITE != 0 {
            self.writable(t);
        }
        if flags & (READ | HUP) != 0 && self.conn(t).is_some() {
            self.readable(t);
        }
    }

    /// Reads what the socket has into `input`; false when the peer closed or failed.
    fn fill(&mut self, t: Token) -> bool {
        let Some(i) = self.conn(t).map(|c| index(c.token)) else { return false };
        let Some(c) = self.conns[i].as_mut() else { return false };
        loop {
            match c.stream.read(&mut self.buf) {
                Ok(0) => return false,
                Ok(n) => {
                    extend_wiping(&mut c.input, &self.buf[..n]);
                    // The scratch may hold a field's plaintext: never left behind in it.
                    crate::keys::wipe(&mut self.buf[..n]);
                    if n < self.buf.len() || c.input.len() > MAX_REQUEST + PAUSE_AT {
                        return true;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
    }

    fn readable(&mut self, t: Token) {
        let kind = match self.conn(t).map(|c| &c.kind) {
            Some(Kind::Client(_)) => 0,
            Some(Kind::Upstream(_)) => 1,
            Some(Kind::Uws { .. }) => 2,
            None => return,
        };
        let open = self.fill(t);
        match kind {
            0 => self.client_input(t, open),
            1 => self.upstream_input(t, open),
            _ => self.uws_input(t, open),
        }
    }

    /// Writes `bytes` to `t` now, keeping what the socket does not take for EPOLLOUT.
    fn send(&mut self, t: Token, bytes: &[u8]) {
        let Some(c) = self.conn(t) else { return };
        if !c.output.is_empty() {
            c.output.extend_from_slice(bytes);
            return;
        }
        let mut at = 0;
        while at < bytes.len() {
            match c.stream.write(&bytes[at..]) {
                Ok(n) if n > 0 => at += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                _ if matches!(c.kind, Kind::Uws { .. }) => {
                    // The pipeline stopped reading (it answered and closes, e.g. 413): what it
                    // wrote is still to be read and relayed; the rest of the client's bytes are dropped.
                    c.output.clear();
                    c.paused = false;
                    return self.interest(t);
                }
                // A lost upstream connection: retried as the client retries (idempotent, reused, nothing read).
                _ if matches!(c.kind, Kind::Upstream(_)) => return self.upstream_failed(t, Failure::Unavailable),
                _ => return self.close(t),
            }
        }
        if at < bytes.len() {
            c.output.extend_from_slice(&bytes[at..]);
            if matches!(c.kind, Kind::Client(_)) && (at > 0 || c.write_deadline.is_none()) {
                c.write_deadline = Some(Instant::now() + CLIENT_IDLE);
            }
            self.interest(t);
        } else {
            c.write_deadline = None;
        }
    }

    fn writable(&mut self, t: Token) {
        let connecting = matches!(
            self.conn(t).map(|c| &c.kind),
            Some(Kind::Upstream(Upstream { state: UpState::Connecting, .. }))
        );
        if connecting {
            return self.connected(t);
        }
        let Some(c) = self.conn(t) else { return };
        let pending = std::mem::take(&mut c.output);
        self.interest(t);
        self.send(t, &pending);
        self.drained(t);
    }

    /// After a write: what waits on `t`'s output being empty.
    fn drained(&mut self, t: Token) {
        let Some(c) = self.conn(t) else { return };
        if !c.output.is_empty() {
            return;
        }
        if c.close_after {
            return self.close(t);
        }
        if c.shutdown_after {
            c.shutdown_after = false;
            c.stream.shutdown_write();
        }
        // A paused partner (tunnel) or a paused pipelined client may go on.
        let partner = match &c.kind {
            Kind::Client(Client { state: ClientState::Tunnel { peer, .. }, .. }) => Some(*peer),
            Kind::Uws { client } => Some(*client),
            _ => None,
        };
        if let Some(p) = partner {
            if let Some(pc) = self.conn(p) {
                if pc.paused {
                    pc.paused = false;
                    self.interest(p);
                    // Level-triggered: what it has buffered is read on the next wake.
                }
            }
        } else if matches!(self.conn(t).map(|c| &c.kind), Some(Kind::Client(Client { state: ClientState::Idle, .. }))) {
            self.next_request(t);
        }
    }

    // ---- clients ----

    fn client_input(&mut self, t: Token, open: bool) {
        let tunnel = match self.conn(t).map(|c| &c.kind) {
            Some(Kind::Client(Client { state: ClientState::Tunnel { peer, .. }, .. })) => Some(*peer),
            _ => None,
        };
        if let Some(peer) = tunnel {
            self.pump_to_uws(t, peer);
            if !open {
                // Half-close: uWS gets the rest, then EOF. uWS closes a connection on EOF (its answer
                // is not sent), as it does for a client of the uWS front that half-closes.
                if let Some(p) = self.conn(peer) {
                    if p.output.is_empty() {
                        p.stream.shutdown_write();
                    } else {
                        p.shutdown_after = true;
                    }
                }
                if let Some(c) = self.conn(t) {
                    c.paused = true;
                }
                self.interest(t);
            }
            return;
        }
        if !open {
            return self.close(t);
        }
        // The idle deadline is not moved by a read: a head sent a byte at a time is closed as uWS
        // closes it, 10 s after the connection opened or the last answer (next_request moves it
        // while a served request's body arrives).
        self.next_request(t);
    }

    /// Serves or declines the next whole request of client `t`, if it is idle and has one.
    fn next_request(&mut self, t: Token) {
        let Some(c) = self.conn(t) else { return };
        let Kind::Client(client) = &c.kind else { return };
        let busy = !matches!(client.state, ClientState::Idle);
        if busy || c.output.len() > PAUSE_AT {
            // Busy with a request, or the client reads its answers too slowly: read on once it catches up.
            if !busy || c.input.len() > PAUSE_AT {
                c.paused = true;
                self.interest(t);
            }
            return;
        }
        if c.paused {
            c.paused = false;
            self.interest(t);
        }
        // Borrowed through the field, not conn(): `shared` stays usable.
        let Some(c) = self.conns.get_mut(index(t)).and_then(Option::as_mut).filter(|c| c.token == t) else { return };
        if c.input.is_empty() {
            return;
        }
        let head = match http1_request::parse_request_head(&c.input, REQUEST_LIMITS) {
            Parsed::Partial => return,
            Parsed::Decline(why) => return self.decline(t, why),
            Parsed::Head(h) => h,
        };
        let total = head.len as u64 + head.content_length;
        if total > MAX_REQUEST as u64 {
            return self.decline(t, "request size");
        }
        let Kind::Client(client) = &c.kind else { return };
        let peer = client.peer;
        let Some(table) = self.shared.table() else { return self.decline(t, "no table") };
        // Decided on the head: a declined request streams to the pipeline, body and all.
        let served = match route::serve(&table, &c.input, &head, peer.ip()) {
            Ok(s) => s,
            Err(why) => return self.decline(t, why),
        };
        if c.input.len() < total as usize {
            // The body is coming: 10 s of silence closes the connection.
            c.deadline = Some(Instant::now() + CLIENT_IDLE);
            return;
        }
        self.start_exchange(t, table, &head, &served);
    }

    fn start_exchange(&mut self, t: Token, table: Arc<Table>, head: &http1_request::RequestHead, served: &Served) {
        let (seq, prefix) = (self.seq, self.prefix);
        // Borrowed through the field, not conn(): `seq` and `shared` stay usable.
        let Some(c) = self.conns.get_mut(index(t)).and_then(Option::as_mut).filter(|c| c.token == t) else { return };
        let Kind::Client(client) = &c.kind else { return };
        let peer = client.peer;
        let b = &c.input;
        let total = head.len + head.content_length as usize;
        let given = wire::given_correlation(b, head);
        let correlation = match given {
            Some(id) => id.to_vec(),
            None => {
                let mut id = prefix.to_vec();
                id.extend_from_slice(format!("{seq:x}").as_bytes());
                id
            }
        };
        let route = &table.routes[served.route];
        let upstream = &table.upstreams[route.upstream];
        let body = &b[head.len..total];
        let sealed = match &route.seal {
            None => None,
            Some(seal) => {
                let mut ring = self.shared.keys.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                let tenant = &b[served.tenant.0..served.tenant.1];
                let (ct, ce) = (route::header(b, head, b"content-type"), route::header(b, head, b"content-encoding"));
                let now = Instant::now();
                match seal::seal_body(seal, &mut ring, tenant, ct, ce, body, now) {
                    Ok(s) => s,
                    Err(seal::NO_KEY) => {
                        // Asked for: TypeScript copies it in within a tick or two. Until then the
                        // request waits, up to PARK_MAX; then the pipeline serves it.
                        drop(ring);
                        let Kind::Client(client) = &mut c.kind else { return };
                        let since = *client.parked.get_or_insert(now);
                        if now.duration_since(since) >= PARK_MAX {
                            client.parked = None;
                            return self.decline(t, seal::NO_KEY);
                        }
                        c.deadline = Some(now + SWEEP);
                        return;
                    }
                    Err(why) => {
                        drop(ring);
                        return self.decline(t, why);
                    }
                }
            }
        };
        let mut message = Vec::with_capacity(total + 256 + sealed.as_ref().map_or(0, Vec::len));
        wire::upstream_request(
            &mut message,
            b,
            head,
            served,
            upstream,
            route.identity_encoding,
            peer.ip(),
            &correlation,
            sealed.as_deref().unwrap_or(body),
        );
        let method = &b[head.method.0..head.method.1];
        let x = Exchange {
            route: served.route,
            head_request: method == b"HEAD",
            idempotent: IDEMPOTENT.contains(&method),
            close: head.close,
            started: Instant::now(),
            correlation,
            message,
            retried: false,
            conn: None,
            table: table.clone(),
        };
        if given.is_none() {
            self.seq += 1;
        }
        if let Kind::Client(client) = &mut c.kind {
            client.parked = None;
        }
        if sealed.is_some() {
            // The received bytes hold the plaintext: wiped now that the sealed body exists.
            crate::keys::wipe(&mut c.input[head.len..total]);
        }
        c.input.drain(..total);
        c.deadline = None;
        if let Kind::Client(client) = &mut c.kind {
            client.state = ClientState::Exchange(Box::new(x));
        }
        self.shared.stats.served.fetch_add(1, Ordering::Relaxed);
        self.shared.stats.in_flight.fetch_add(1, Ordering::Relaxed);
        self.dispatch(t, false);
    }

    /// Gives client `t`'s exchange a connection: an idle one (unless `fresh`), a new one, or a place in the queue.
    fn dispatch(&mut self, t: Token, fresh: bool) {
        let Some((addr, opts)) = self.exchange(t).map(|x| (x.upstream().addr, x.table.options)) else { return };
        let now = Instant::now();
        if !fresh {
            while let Some(u) = self.pools.get_mut(&addr).and_then(|p| p.idle.pop()) {
                let usable = match self.conns.get(index(u)).and_then(Option::as_ref) {
                    Some(Conn { kind: Kind::Upstream(up), .. }) => match up.state {
                        UpState::Idle { since } => now.duration_since(since) < up.idle_limit,
                        _ => false,
                    },
                    _ => false,
                };
                if usable {
                    return self.assign(t, u);
                }
                self.close_quiet(u); // past its idle limit: never written to
            }
        }
        let pool = self.pools.entry(addr).or_default();
        if pool.open < opts.connections {
            return self.open_upstream(t, addr);
        }
        // A retry was admitted already: it waits whatever the queue holds (h1-client.ts, `fresh`).
        if !fresh && pool.queue.len() >= opts.max_queue {
            self.purge_queue(addr);
        }
        let pool = self.pools.entry(addr).or_default();
        if fresh || pool.queue.len() < opts.max_queue {
            pool.queue.push_back((t, now));
            return;
        }
        self.fail(t, Failure::Busy);
    }

    /// Drops the waiters of `addr`'s queue whose client left (they no longer count against `maxQueue`).
    fn purge_queue(&mut self, addr: SocketAddr) {
        let Some(queue) = self.pools.get_mut(&addr).map(|p| std::mem::take(&mut p.queue)) else { return };
        let kept: VecDeque<(Token, Instant)> = queue.into_iter().filter(|(t, _)| self.exchange(*t).is_some()).collect();
        if let Some(p) = self.pools.get_mut(&addr) {
            p.queue = kept;
        }
    }

    fn exchange(&mut self, t: Token) -> Option<&mut Exchange> {
        match self.conn(t).map(|c| &mut c.kind) {
            Some(Kind::Client(Client { state: ClientState::Exchange(x), .. })) => Some(x),
            _ => None,
        }
    }

    fn open_upstream(&mut self, t: Token, addr: SocketAddr) {
        let Some(opts) = self.exchange(t).map(|x| x.table.options) else { return };
        let stream = match super::net::connect_tcp(addr) {
            Ok(s) => s,
            Err(_) => return self.fail(t, Failure::Unavailable),
        };
        let _ = stream.set_nodelay(true);
        let up = Upstream {
            addr,
            client: Some(t),
            state: UpState::Connecting,
            reused: false,
            idle_limit: Duration::from_millis(opts.keep_alive_ms),
        };
        let u = match self.add(Stream::Tcp(stream), Kind::Upstream(up), WRITE) {
            Ok(u) => u,
            Err(_) => return self.fail(t, Failure::Unavailable),
        };
        self.pools.entry(addr).or_default().open += 1;
        if let Some(c) = self.conn(u) {
            c.deadline = Some(Instant::now() + Duration::from_millis(opts.connect_ms));
        }
        if let Some(x) = self.exchange(t) {
            x.conn = Some(u);
        }
    }

    /// The connect of `u` finished: send its request, or fail it.
    fn connected(&mut self, u: Token) {
        let Some(c) = self.conn(u) else { return };
        let failed = !matches!(c.stream.take_error(), Ok(None));
        let client = match &c.kind {
            Kind::Upstream(up) => up.client,
            _ => None,
        };
        if failed {
            return self.upstream_failed(u, Failure::Unavailable);
        }
        c.interest = READ;
        let (fd, token) = (c.stream.fd(), c.token);
        if self.poll.modify(fd, token, READ).is_err() {
            return self.upstream_failed(u, Failure::Unavailable);
        }
        match client {
            Some(t) => self.write_request(t, u),
            None => self.close(u),
        }
    }

    /// Puts idle connection `u` to work for client `t`.
    fn assign(&mut self, t: Token, u: Token) {
        if let Some(c) = self.conn(u) {
            if let Kind::Upstream(up) = &mut c.kind {
                up.client = Some(t);
                up.reused = true;
            }
        }
        if let Some(x) = self.exchange(t) {
            x.conn = Some(u);
        }
        self.write_request(t, u);
    }

    fn write_request(&mut self, t: Token, u: Token) {
        let Some(x) = self.exchange(t) else { return self.close(u) };
        let (head_request, opts) = (x.head_request, x.table.options);
        let message = std::mem::take(&mut x.message);
        let limits = AnswerLimits { max_head: MAX_ANSWER_HEAD, max_body: opts.max_response };
        if let Some(c) = self.conn(u) {
            if let Kind::Upstream(up) = &mut c.kind {
                up.state = UpState::Busy(AnswerParser::new(limits, head_request));
            }
            c.deadline = Some(Instant::now() + Duration::from_millis(opts.headers_ms));
        }
        self.send(u, &message);
        if let Some(x) = self.exchange(t) {
            x.message = message;
        }
    }

    fn upstream_input(&mut self, u: Token, open: bool) {
        let Some(c) = self.conn(u) else { return };
        let input = std::mem::take(&mut c.input);
        let Kind::Upstream(up) = &mut c.kind else { return };
        let UpState::Busy(parser) = &mut up.state else {
            // Idle: the upstream closed it or sent unsolicited bytes.
            return self.close(u);
        };
        let mut done = parser.feed(&input);
        if done == Ok(false) && !open {
            done = parser.end().map(|()| true);
        }
        let started = parser.started();
        match done {
            Ok(true) => self.answered(u),
            Ok(false) => {
                if started {
                    let ms = self.conn_exchange_body_ms(u);
                    if let Some(c) = self.conn(u) {
                        c.deadline = Some(Instant::now() + Duration::from_millis(ms));
                    }
                }
            }
            Err(http1_answer::Failure::TooLarge) => self.upstream_failed(u, Failure::TooLarge),
            Err(http1_answer::Failure::BadResponse(_)) => self.upstream_failed(u, Failure::BadResponse),
            Err(http1_answer::Failure::Unavailable) => self.upstream_failed(u, Failure::Unavailable),
        }
    }

    fn conn_exchange_body_ms(&mut self, u: Token) -> u64 {
        let client = match self.conn(u).map(|c| &c.kind) {
            Some(Kind::Upstream(up)) => up.client,
            _ => None,
        };
        client.and_then(|t| self.exchange(t).map(|x| x.table.options.body_ms)).unwrap_or(30_000)
    }

    /// `u` read a whole answer: relay it, then reuse or close `u`.
    fn answered(&mut self, u: Token) {
        let Some(c) = self.conn(u) else { return };
        let Kind::Upstream(up) = &mut c.kind else { return };
        let client = up.client.take();
        let UpState::Busy(parser) = std::mem::replace(&mut up.state, UpState::Idle { since: Instant::now() }) else {
            return;
        };
        let addr = up.addr;
        let Some(t) = client else { return self.close(u) };
        let Some(x) = self.take_exchange(t) else { return self.close(u) };
        let keep = parser.keep_alive();
        let limit = idle_limit(&parser, Duration::from_millis(x.table.options.keep_alive_ms));
        let headers = wire::answer_headers(&parser, x.head_request, &x.correlation);
        let mut out = Vec::with_capacity(parser.body().len() + 512);
        wire::answer(&mut out, &x.table, parser.status(), &headers, parser.body(), x.head_request, false, self.clock.text());
        self.finish_exchange(t, &x, parser.status(), &out);
        // The connection goes back to its pool, or is closed.
        if keep && !limit.is_zero() {
            if let Some(c) = self.conn(u) {
                c.deadline = Some(Instant::now() + limit);
                if let Kind::Upstream(up) = &mut c.kind {
                    up.idle_limit = limit;
                }
            }
            self.pools.entry(addr).or_default().idle.push(u);
            self.serve_queue(addr);
        } else {
            self.close(u);
        }
    }

    /// Client `t`'s exchange, ended: its state back to reading.
    fn take_exchange(&mut self, t: Token) -> Option<Box<Exchange>> {
        let c = self.conn(t)?;
        let Kind::Client(client) = &mut c.kind else { return None };
        match std::mem::replace(&mut client.state, ClientState::Idle) {
            ClientState::Exchange(x) => {
                self.shared.stats.in_flight.fetch_sub(1, Ordering::Relaxed);
                Some(x)
            }
            other => {
                client.state = other;
                None
            }
        }
    }

    /// Sends `answer` to client `t`, records the request, and reads its next one.
    fn finish_exchange(&mut self, t: Token, x: &Exchange, status: u16, answer: &[u8]) {
        self.shared.record(x.name(), status, x.started.elapsed());
        self.send(t, answer);
        let Some(c) = self.conn(t) else { return };
        c.deadline = Some(Instant::now() + CLIENT_IDLE);
        if x.close {
            c.close_after = true;
            if c.output.is_empty() {
                return self.close(t);
            }
            return self.interest(t);
        }
        self.drained(t);
    }

    /// The exchange on `u` failed: retry it once (idempotent, reused, nothing read) or answer the failure.
    fn upstream_failed(&mut self, u: Token, failure: Failure) {
        let Some(c) = self.conn(u) else { return };
        let (client, retry_ok) = match &mut c.kind {
            Kind::Upstream(up) => {
                let started = matches!(&up.state, UpState::Busy(p) if p.started());
                (up.client.take(), up.reused && !started && failure == Failure::Unavailable)
            }
            _ => (None, false),
        };
        self.close(u);
        let Some(t) = client else { return };
        let retry = retry_ok
            && self.exchange(t).is_some_and(|x| {
                let again = x.idempotent && !x.retried;
                x.retried = true;
                x.conn = None;
                again
            });
        if retry {
            return self.dispatch(t, true);
        }
        self.fail(t, failure);
    }

    /// Answers client `t`'s exchange with the pipeline's error for `failure`.
    fn fail(&mut self, t: Token, failure: Failure) {
        let Some(x) = self.take_exchange(t) else { return };
        let upstream = x.upstream();
        let mut out = Vec::with_capacity(256);
        let status = wire::upstream_error(&mut out, &x.table, failure, upstream, &x.correlation, x.head_request, self.clock.text());
        self.finish_exchange(t, &x, status, &out);
    }

    /// Hands a freed connection capacity of `addr`'s pool to its oldest waiter.
    fn serve_queue(&mut self, addr: SocketAddr) {
        loop {
            let Some(pool) = self.pools.get_mut(&addr) else { return };
            let Some(&(t, _)) = pool.queue.front() else { return };
            let has_idle = !pool.idle.is_empty();
            let room = pool.open < self.exchange_connections(t);
            if !has_idle && !room {
                return;
            }
            if let Some(p) = self.pools.get_mut(&addr) {
                p.queue.pop_front();
            }
            if self.exchange(t).is_none() {
                continue; // gone while waiting
            }
            self.dispatch(t, false);
        }
    }

    fn exchange_connections(&mut self, t: Token) -> usize {
        self.exchange(t).map_or(usize::MAX, |x| x.table.options.connections)
    }

    // ---- tunnels ----

    /// Declines client `t`: from its current request on, a tunnel to the pipeline.
    fn decline(&mut self, t: Token, _why: &'static str) {
        let Some(c) = self.conn(t) else { return };
        let Kind::Client(client) = &c.kind else { return };
        let (peer, local) = (client.peer, client.local);
        if contains_signature(&[], &c.input) {
            return self.close(t);
        }
        let stream = match super::net::connect_unix(&self.tunnel_path) {
            Ok(s) => s,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                // The pipeline's backlog is full (its thread is busy): the connection waits its turn,
                // tried again at each sweep, as a client of the uWS front waits in its backlog.
                let now = Instant::now();
                let Some(c) = self.conn(t) else { return };
                let Kind::Client(client) = &mut c.kind else { return };
                let since = *client.parked.get_or_insert(now);
                if now.duration_since(since) >= TUNNEL_WAIT {
                    return self.close(t);
                }
                c.deadline = Some(now + SWEEP);
                return;
            }
            Err(_) => return self.close(t),
        };
        let p = match self.add(Stream::Unix(stream), Kind::Uws { client: t }, READ) {
            Ok(p) => p,
            Err(_) => return self.close(t),
        };
        self.shared.stats.declined.fetch_add(1, Ordering::Relaxed);
        let Some(c) = self.conn(t) else { return };
        let input = std::mem::take(&mut c.input);
        c.deadline = None;
        let tail = tail_of(&[], &input);
        if let Kind::Client(client) = &mut c.kind {
            client.parked = None;
            client.state = ClientState::Tunnel { peer: p, tail };
        }
        let mut first = Vec::with_capacity(input.len() + 52);
        wire::proxy_v2(&mut first, peer, local);
        first.extend_from_slice(&input);
        // A connect in progress takes the bytes once done (they wait in `output` for EPOLLOUT).
        self.send(p, &first);
        self.pause_if_full(p, t);
    }

    /// Client bytes in `t`'s input go to the pipeline `p`, unless they carry the PROXY v2 signature.
    fn pump_to_uws(&mut self, t: Token, p: Token) {
        let Some(c) = self.conn(t) else { return };
        let input = std::mem::take(&mut c.input);
        let Kind::Client(Client { state: ClientState::Tunnel { tail, .. }, .. }) = &mut c.kind else { return };
        if contains_signature(tail, &input) {
            self.close(p);
            return self.close(t);
        }
        *tail = tail_of(tail, &input);
        self.send(p, &input);
        self.pause_if_full(p, t);
    }

    fn uws_input(&mut self, p: Token, open: bool) {
        let Some(c) = self.conn(p) else { return };
        let input = std::mem::take(&mut c.input);
        let Kind::Uws { client } = c.kind else { return };
        self.send(client, &input);
        self.pause_if_full(client, p);
        if !open {
            // The pipeline closed: the client gets what was sent, then the connection closes.
            if let Some(c) = self.conn(client) {
                c.close_after = true;
                let done = c.output.is_empty();
                self.close_quiet(p);
                if done {
                    return self.close(client);
                }
                return self.interest(client);
            }
            self.close(p);
        }
    }

    /// Stops reading `from` while `to` holds more than [`PAUSE_AT`] unsent bytes.
    fn pause_if_full(&mut self, to: Token, from: Token) {
        let full = self.conn(to).is_some_and(|c| c.output.len() > PAUSE_AT);
        if full {
            if let Some(c) = self.conn(from) {
                c.paused = true;
            }
            self.interest(from);
        }
    }

    // ---- deadlines and closing ----

    fn sweep(&mut self, now: Instant) {
        if self.accept_paused.is_some_and(|since| now.duration_since(since) >= ACCEPT_PAUSE) {
            self.accept_paused = None;
            let _ = self.poll.add(self.listener.as_raw_fd(), LISTENER, READ);
        }
        let due: Vec<Token> = self
            .conns
            .iter()
            .filter_map(|c| c.as_ref())
            .filter(|c| c.deadline.is_some_and(|d| d <= now) || c.write_deadline.is_some_and(|d| d <= now))
            .map(|c| c.token)
            .collect();
        for t in due {
            let Some(c) = self.conn(t) else { continue };
            let stalled = c.write_deadline.is_some_and(|d| d <= now);
            match &c.kind {
                // A client that stopped reading its answers (served or tunnelled) is closed.
                Kind::Client(_) if stalled => self.close(t),
                // A request waiting for its key, or for room in the pipeline's backlog: tried again.
                Kind::Client(Client { parked: Some(_), .. }) => self.next_request(t),
                Kind::Client(_) | Kind::Uws { .. } => self.close(t),
                Kind::Upstream(Upstream { state: UpState::Idle { .. }, .. }) => self.close(t),
                Kind::Upstream(_) => self.upstream_failed(t, Failure::Timeout),
            }
        }
        // Waiters past the queue deadline: the oldest are at the front of each queue.
        let addrs: Vec<SocketAddr> = self.pools.keys().copied().collect();
        for addr in addrs {
            loop {
                let Some(&(t, since)) = self.pools.get(&addr).and_then(|p| p.queue.front()) else { break };
                let limit = self.exchange(t).map(|x| Duration::from_millis(x.table.options.queue_ms));
                match limit {
                    // Gone while waiting: dropped.
                    None => {}
                    Some(l) if now.duration_since(since) >= l => {}
                    Some(_) => break,
                }
                if let Some(p) = self.pools.get_mut(&addr) {
                    p.queue.pop_front();
                }
                if limit.is_some() {
                    self.fail(t, Failure::Timeout);
                }
            }
        }
    }

    /// Closes `t` without the knock-on effects on its partner (the caller handles them): its kind.
    fn close_quiet(&mut self, t: Token) -> Option<Kind> {
        let i = index(t);
        if !self.conns.get(i).and_then(Option::as_ref).is_some_and(|c| c.token == t) {
            return None;
        }
        let c = self.conns[i].take()?;
        let _ = self.poll.delete(c.stream.fd());
        self.free.push(i);
        match &c.kind {
            Kind::Upstream(up) => {
                if let Some(pool) = self.pools.get_mut(&up.addr) {
                    pool.open = pool.open.saturating_sub(1);
                    pool.idle.retain(|&x| x != t);
                }
            }
            Kind::Client(_) => {
                self.shared.stats.connections.fetch_sub(1, Ordering::Relaxed);
            }
            Kind::Uws { .. } => {}
        }
        Some(c.kind)
    }

    fn close(&mut self, t: Token) {
        let Some(kind) = self.close_quiet(t) else { return };
        match kind {
            Kind::Client(client) => match client.state {
                ClientState::Exchange(x) => {
                    self.shared.stats.in_flight.fetch_sub(1, Ordering::Relaxed);
                    self.shared.record_abort(x.name(), x.started.elapsed());
                    if let Some(u) = x.conn {
                        // The client left: the upstream exchange is cut, as the pipeline aborts it.
                        if let Some(Kind::Upstream(up)) = self.conn(u).map(|c| &mut c.kind) {
                            up.client = None;
                        }
                        self.close(u);
                    }
                    // A queued one is skipped when its turn comes (exchange() is None).
                }
                ClientState::Tunnel { peer, .. } => self.close(peer),
                ClientState::Idle => {}
            },
            Kind::Upstream(up) => {
                if let Some(client) = up.client {
                    // Closed under an exchange: answer it.
                    self.fail(client, Failure::Unavailable);
                }
                self.serve_queue(up.addr);
            }
            Kind::Uws { client } => self.close(client),
        }
    }
}

/// Appends `bytes` to `v`; when `v` must grow, the old allocation is wiped
/// before it is freed (a request's bytes may hold a field's plaintext).
fn extend_wiping(v: &mut Vec<u8>, bytes: &[u8]) {
    if v.capacity() - v.len() < bytes.len() {
        let mut grown = Vec::with_capacity((v.len() + bytes.len()).max(2 * v.capacity()).max(4096));
        grown.extend_from_slice(v);
        crate::keys::wipe(v);
        *v = grown;
    }
    v.extend_from_slice(bytes);
}

/// How long a connection may idle after `answer` (h1-connection.ts
/// `idleLimitMs`): `default`, or the upstream's `Keep-Alive: timeout=N` less
/// the margin (zero: do not reuse).
fn idle_limit(answer: &AnswerParser, default: Duration) -> Duration {
    let mut text: Vec<u8> = Vec::new();
    for (n, v) in answer.headers() {
        if n == b"keep-alive" {
            if !text.is_empty() {
                text.push(b',');
            }
            text.extend_from_slice(v);
        }
    }
    if text.is_empty() {
        return default;
    }
    match announced_seconds(&text) {
        Some(n) => default.min(Duration::from_secs(n).saturating_sub(KEEP_ALIVE_MARGIN)),
        None => default,
    }
}

/// `/(?:^|[,;\s])timeout\s*=\s*"?(\d{1,9})/i` of a Keep-Alive value.
fn announced_seconds(v: &[u8]) -> Option<u64> {
    let lower = v.to_ascii_lowercase();
    let mut from = 0;
    while let Some(i) = lower[from..].windows(7).position(|w| w == b"timeout").map(|i| i + from) {
        from = i + 1;
        if i > 0 && !matches!(lower[i - 1], b',' | b';' | b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) {
            continue;
        }
        let mut j = i + 7;
        while lower.get(j).is_some_and(|c| c.is_ascii_whitespace() || *c == 0x0b) {
            j += 1;
        }
        if lower.get(j) != Some(&b'=') {
            continue;
        }
        j += 1;
        while lower.get(j).is_some_and(|c| c.is_ascii_whitespace() || *c == 0x0b) {
            j += 1;
        }
        if lower.get(j) == Some(&b'"') {
            j += 1;
        }
        let digits: Vec<u8> = lower[j..].iter().take(9).take_while(|c| c.is_ascii_digit()).copied().collect();
        if digits.is_empty() {
            continue;
        }
        return std::str::from_utf8(&digits).ok()?.parse().ok();
    }
    None
}

/// Whether the PROXY v2 signature is in `tail` + `input` (`tail`: the last bytes before `input`).
fn contains_signature(tail: &[u8], input: &[u8]) -> bool {
    let n = PROXY_V2_SIGNATURE.len();
    if tail.is_empty() {
        return input.windows(n).any(|w| w == PROXY_V2_SIGNATURE);
    }
    let mut joined = tail.to_vec();
    joined.extend_from_slice(&input[..input.len().min(n - 1)]);
    joined.windows(n).any(|w| w == PROXY_V2_SIGNATURE) || input.windows(n).any(|w| w == PROXY_V2_SIGNATURE)
}

/// The last `len - 1` bytes of `tail` + `input`: what a signature split across reads needs.
fn tail_of(tail: &[u8], input: &[u8]) -> Vec<u8> {
    let keep = PROXY_V2_SIGNATURE.len() - 1;
    if input.len() >= keep {
        return input[input.len() - keep..].to_vec();
    }
    let from_tail = keep - input.len();
    let mut out = tail[tail.len().saturating_sub(from_tail)..].to_vec();
    out.extend_from_slice(input);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_signature_across_reads() {
        let sig = PROXY_V2_SIGNATURE;
        assert!(contains_signature(&[], &[b"GET / HTTP/1.1\r\n".as_slice(), sig].concat()));
        for cut in 1..sig.len() {
            let tail = tail_of(&[], &[b"abc".as_slice(), &sig[..cut]].concat());
            assert!(contains_signature(&tail, &sig[cut..]), "cut at {cut}");
        }
        assert!(!contains_signature(&tail_of(&[], b"\r\n\r\n"), b"\r\n\r\n{}"));
        // The tail is the last 11 bytes of everything sent, whatever the read sizes.
        let stream: Vec<u8> = (0u8..40).collect();
        for cut in 0..stream.len() {
            let (a, b) = stream.split_at(cut);
            let whole = &stream[stream.len().saturating_sub(sig.len() - 1)..];
            assert_eq!(tail_of(&tail_of(&[], a), b), whole, "cut at {cut}");
        }
    }

    #[test]
    fn reads_keep_alive_timeouts_as_the_reference() {
        assert_eq!(announced_seconds(b"timeout=5, max=100"), Some(5));
        assert_eq!(announced_seconds(b"max=100, Timeout = \"7\""), Some(7));
        assert_eq!(announced_seconds(b"xtimeout=5"), None);
        assert_eq!(announced_seconds(b"timeout=abc"), None);
    }
}
