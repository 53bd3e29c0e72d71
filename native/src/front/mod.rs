//! The native front (docs/decisions/0001-native-data-plane.md): an HTTP/1.1
//! listener run by an event loop on its own thread inside the gateway
//! process. It serves the requests it can answer exactly as the JavaScript
//! pipeline would, and tunnels every other connection to the pipeline's
//! internal uWS listener (event_loop.rs has the rules).
//!
//! - [`table`]: the route table TypeScript compiles from the policies;
//! - [`route`]: serve or decline one request;
//! - [`wire`], [`uws`]: the bytes written upstream and to the client;
//! - [`event_loop`]: sockets, pools, deadlines, tunnels;
//! - [`poll`], [`net`]: epoll, eventfd and non-blocking connects.
//!
//! The JavaScript side holds a [`Front`]: it starts the thread, swaps the
//! table (a policy reload), drains the request records for `/metrics`, and
//! stops the loop, which closes every connection it holds.

pub mod event_loop;
pub mod net;
pub mod poll;
pub mod route;
pub mod seal;
pub mod table;
pub mod uws;
pub mod wire;

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use table::Table;

/// Most request records kept between two drains; past it they are counted as lost.
pub const MAX_RECORDS: usize = 1 << 20;

/// Counters the loop keeps (read at any time).
#[derive(Default)]
pub struct Stats {
    /// Client connections open.
    pub connections: AtomicU64,
    /// Requests served natively.
    pub served: AtomicU64,
    /// Connections handed to the pipeline.
    pub declined: AtomicU64,
    /// Records dropped because nobody drained them.
    pub lost: AtomicU64,
    /// Requests served natively and not yet answered.
    pub in_flight: AtomicU64,
}

/// What the loop thread and the JavaScript thread share.
pub struct Shared {
    table: Mutex<Option<Arc<Table>>>,
    pub stopping: AtomicBool,
    pub waker: poll::Waker,
    pub stats: Stats,
    /// One per request answered or aborted: the route's name id (24 bits,
    /// table.rs), status (10; 0: the client left), latency in µs (30, at most
    /// about 18 minutes).
    records: Mutex<Vec<u64>>,
    /// Why the loop stopped, when it stopped on an error.
    pub failure: Mutex<Option<String>>,
    /// The L3 keys requests are sealed under (seal.rs).
    pub keys: Mutex<seal::KeyRing>,
}

impl Shared {
    /// The table requests are served from now (None before the first).
    pub fn table(&self) -> Option<Arc<Table>> {
        self.table.lock().ok().and_then(|t| t.clone())
    }

    fn push(&self, record: u64) {
        let Ok(mut r) = self.records.lock() else { return };
        if r.len() >= MAX_RECORDS {
            self.stats.lost.fetch_add(1, Ordering::Relaxed);
            return;
        }
        r.push(record);
    }

    fn micros(d: Duration) -> u64 {
        u64::try_from(d.as_micros()).unwrap_or(u64::MAX).min((1 << 30) - 1)
    }

    /// A request of the route named `name` answered `status` after `took`.
    pub fn record(&self, name: u32, status: u16, took: Duration) {
        let status = u64::from(status.min(1023));
        self.push((u64::from(name & 0xff_ffff) << 40) | (status << 30) | Self::micros(took));
    }

    /// A request of the route named `name` whose client left before its answer.
    pub fn record_abort(&self, name: u32, took: Duration) {
        self.push((u64::from(name & 0xff_ffff) << 40) | Self::micros(took));
    }
}

/// A running native front.
pub struct Front {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
    pub local: SocketAddr,
}

impl Front {
    /// Binds `listen`, and starts the loop thread serving from `table`;
    /// declined connections go to the Unix socket at `tunnel`.
    pub fn start(listen: SocketAddr, tunnel: PathBuf, table: Table) -> std::io::Result<Front> {
        let listener = TcpListener::bind(listen)?;
        let local = listener.local_addr()?;
        let shared = Arc::new(Shared {
            table: Mutex::new(Some(Arc::new(table))),
            stopping: AtomicBool::new(false),
            waker: poll::Waker::new()?,
            stats: Stats::default(),
            records: Mutex::new(Vec::new()),
            keys: Mutex::new(seal::KeyRing::default()),
            failure: Mutex::new(None),
        });
        let mut lp = event_loop::Loop::new(shared.clone(), listener, tunnel)?;
        let shared_in_thread = shared.clone();
        let thread = std::thread::Builder::new().name("kcm-native-front".into()).spawn(move || {
            // An epoll failure ends the loop; its connections close with it, and stats() says why.
            if let Err(e) = lp.run() {
                if let Ok(mut f) = shared_in_thread.failure.lock() {
                    *f = Some(format!("event loop stopped: {e}"));
                }
            }
        })?;
        Ok(Front { shared, thread: Mutex::new(Some(thread)), local })
    }

    /// Serves from `table` from the next request on (requests in flight finish on the old one).
    pub fn set_table(&self, table: Table) {
        if let Ok(mut t) = self.shared.table.lock() {
            *t = Some(Arc::new(table));
        }
    }

    /// The records since the last drain (see [`Shared`]).
    pub fn drain(&self) -> Vec<u64> {
        self.shared.records.lock().map(|mut r| std::mem::take(&mut *r)).unwrap_or_default()
    }

    /// The key ring (seal.rs), locked.
    pub fn keys(&self) -> std::sync::MutexGuard<'_, seal::KeyRing> {
        self.shared.keys.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Why the loop stopped, if it stopped on an error.
    pub fn failure(&self) -> Option<String> {
        self.shared.failure.lock().ok().and_then(|f| f.clone())
    }

    pub fn stats(&self) -> &Stats {
        &self.shared.stats
    }

    /// Stops the loop and waits for its thread: every connection is closed. Idempotent.
    pub fn stop(&self) {
        self.shared.stopping.store(true, Ordering::Release);
        self.shared.waker.wake();
        let handle = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
}

impl Drop for Front {
    fn drop(&mut self) {
        self.stop();
    }
}
