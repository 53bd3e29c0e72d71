//! The route table the native front serves from: compiled by TypeScript
//! from the policies and the gateway configuration
//! (gateway/src/native-front/front-table.ts writes it), read here once per
//! load or reload. The encoding is length-prefixed binary, little-endian:
//!
//! ```text
//! "KFT1"
//! options      u32 × 8   connections, maxQueue, connectMs, headersMs, bodyMs,
//!                        keepAliveMs, queueMs, maxResponseBytes
//! errors       (u16 status, bytes message) × 4: upstream_unavailable,
//!                        upstream_timeout, upstream_busy, upstream_bad_response
//!                        (messages as JSON string content)
//! reserved     list<bytes>          first path segments of the direct API (lower case)
//! trust        u8 loopback, list<cidr>     the gateway's trusted peers (`trust`)
//! reasons      list<u16 status, bytes>     status line texts
//! upstreams    list<bytes host, addr16, u16 port, bytes base, bytes label>
//! routes       list<route>
//! route        u32 name id (metrics), u8 serve, bytes method, list<segment>, u16 upstream, u32 bodyLimit,
//!              u8 tenant kind (0 cert, 1 header, 2 path parameter), bytes header name
//!              (lower case), u16 parameter index, list<cidr> trusted peers,
//!              u8 identityEncoding, u8 seal (0: none; 1: then bytes encoded rules
//!              (json_targets.rs), list<bytes> rule contexts, bytes key id, bytes
//!              envelope text head, u32 maxDepth, u32 maxFields)
//! segment      u8 kind (0 literal, 1 parameter, 2 rest), bytes folded, bytes text
//!              (a literal's forms; empty for the others)
//! cidr         u8 family (4 or 6), addr16, u8 prefix (of the family's bits)
//! bytes        u32 length, then the bytes;  list<T>  u32 count, then the items
//! addr16       16 bytes: an IPv6 address, an IPv4 one as ::ffff:a.b.c.d
//! ```
//!
//! Anything malformed is refused whole (a table is never half read).

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use super::seal::SealRoute;
use crate::json_targets;

/// The upstream pool's limits, as the gateway's `upstream` configuration sets them.
#[derive(Clone, Copy, Debug)]
pub struct PoolOptions {
    pub connections: usize,
    pub max_queue: usize,
    pub connect_ms: u64,
    pub headers_ms: u64,
    pub body_ms: u64,
    pub keep_alive_ms: u64,
    pub queue_ms: u64,
    pub max_response: usize,
}

/// An upstream error as the error table has it: its status, and its message
/// as JSON string content (escaped by the writer).
#[derive(Clone, Debug)]
pub struct ErrorSpec {
    pub status: u16,
    pub message: Vec<u8>,
}

/// The upstream errors the front answers itself (common/src/errors.ts).
#[derive(Clone, Debug)]
pub struct ErrorStatuses {
    pub unavailable: ErrorSpec,
    pub timeout: ErrorSpec,
    pub busy: ErrorSpec,
    pub bad_response: ErrorSpec,
}

#[derive(Debug)]
pub struct Upstream {
    /// The `host` header value (the URL's host and port as written).
    pub host: Vec<u8>,
    pub addr: SocketAddr,
    /// The URL's path prefix, no trailing slash.
    pub base: Vec<u8>,
    /// How error messages name it (`upstream app`), never its URL.
    pub label: Vec<u8>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Segment {
    /// `folded`: as route-pattern.ts folds it (lower case, ASCII escapes decoded);
    /// `text`: as the pattern writes it (what an exact reading compares).
    Literal { folded: Vec<u8>, text: Vec<u8> },
    Param,
    Rest,
}

#[derive(Debug)]
pub struct Cidr {
    pub v4: bool,
    pub addr: [u8; 16],
    pub prefix: u8,
}

#[derive(Debug)]
pub enum TenantSource {
    /// From a client certificate: never on this front (it has no TLS).
    Cert,
    Header { name: Vec<u8>, peers: Vec<Cidr> },
    /// The index of the parameter among the pattern's `:param` segments.
    PathParam(usize),
}

#[derive(Debug)]
pub struct Route {
    /// The id of the route's metrics name (TypeScript keeps the names; ids are never reused).
    pub name: u32,
    /// The native front answers this route's requests itself; otherwise it declines them.
    pub serve: bool,
    /// Upper case, or `*`.
    pub method: Vec<u8>,
    pub segments: Vec<Segment>,
    pub upstream: usize,
    pub body_limit: u64,
    pub tenant: TenantSource,
    /// Ask the upstream for an uncompressed answer (routes with response rules).
    pub identity_encoding: bool,
    /// The request rules the front seals (seal.rs), when the route has them.
    pub seal: Option<SealRoute>,
}

#[derive(Debug)]
pub struct Trust {
    /// 127.0.0.0/8 and ::1 (IPv4-mapped forms included).
    pub loopback: bool,
    /// Addresses and blocks, as [`in_cidrs`] reads them.
    pub peers: Vec<Cidr>,
}

#[derive(Debug)]
pub struct Table {
    pub options: PoolOptions,
    pub statuses: ErrorStatuses,
    pub reserved: Vec<Vec<u8>>,
    pub trust: Trust,
    pub reasons: Vec<(u16, Vec<u8>)>,
    pub upstreams: Vec<Upstream>,
    pub routes: Vec<Route>,
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

type R<T> = Result<T, String>;

/// Most items of any list, and most bytes of any string: far past any real table.
const MAX_ITEMS: u32 = 1 << 16;
const MAX_BYTES: u32 = 1 << 16;

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> R<&'a [u8]> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.b.len()).ok_or("table truncated")?;
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u8(&mut self) -> R<u8> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> R<u16> {
        let s = self.take(2)?;
        Ok(u16::from_le_bytes([s[0], s[1]]))
    }
    fn u32(&mut self) -> R<u32> {
        let s = self.take(4)?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }
    fn count(&mut self) -> R<usize> {
        let n = self.u32()?;
        if n > MAX_ITEMS {
            return Err("table list too long".into());
        }
        Ok(n as usize)
    }
    fn bytes(&mut self) -> R<Vec<u8>> {
        let n = self.u32()?;
        if n > MAX_BYTES {
            return Err("table string too long".into());
        }
        Ok(self.take(n as usize)?.to_vec())
    }
    fn addr16(&mut self) -> R<[u8; 16]> {
        let mut a = [0u8; 16];
        a.copy_from_slice(self.take(16)?);
        Ok(a)
    }
    fn list<T>(&mut self, mut item: impl FnMut(&mut Self) -> R<T>) -> R<Vec<T>> {
        let n = self.count()?;
        let mut out = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            out.push(item(self)?);
        }
        Ok(out)
    }
}

/// The address `a` (16 bytes) as an IpAddr: IPv4-mapped ones as IPv4.
pub fn ip_of(a: [u8; 16]) -> IpAddr {
    let v6 = Ipv6Addr::from(a);
    match v6.to_ipv4_mapped() {
        Some(v4) => IpAddr::V4(v4),
        None => IpAddr::V6(v6),
    }
}

/// The canonical 16-byte form of `ip` (IPv4 as mapped).
pub fn addr16(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

fn cidr(r: &mut Reader<'_>) -> R<Cidr> {
    let family = r.u8()?;
    let addr = r.addr16()?;
    let prefix = r.u8()?;
    let v4 = match family {
        4 => true,
        6 => false,
        _ => return Err("cidr family".into()),
    };
    if prefix > if v4 { 32 } else { 128 } {
        return Err("cidr prefix".into());
    }
    Ok(Cidr { v4, addr, prefix })
}

fn route(r: &mut Reader<'_>, upstreams: usize) -> R<Route> {
    let name_id = r.u32()?;
    let serve = r.u8()? == 1;
    let method = r.bytes()?;
    let segments = r.list(|r| {
        let kind = r.u8()?;
        let folded = r.bytes()?;
        let text = r.bytes()?;
        match kind {
            0 => Ok(Segment::Literal { folded, text }),
            1 => Ok(Segment::Param),
            2 => Ok(Segment::Rest),
            _ => Err("segment kind".into()),
        }
    })?;
    let upstream = usize::from(r.u16()?);
    if upstream >= upstreams {
        return Err("route upstream".into());
    }
    let body_limit = u64::from(r.u32()?);
    let kind = r.u8()?;
    let header = r.bytes()?;
    let param = usize::from(r.u16()?);
    let peers = r.list(cidr)?;
    let params = segments.iter().filter(|s| **s == Segment::Param).count();
    let tenant = match kind {
        0 => TenantSource::Cert,
        1 => TenantSource::Header { name: header, peers },
        2 if param < params => TenantSource::PathParam(param),
        _ => return Err("tenant source".into()),
    };
    let identity_encoding = r.u8()? == 1;
    let seal = match r.u8()? {
        0 => None,
        _ => {
            let encoded = r.bytes()?;
            let rules = json_targets::compile_rules(&encoded).map_err(|_| "seal rules")?;
            let contexts = r.list(|r| r.bytes())?;
            let key_id = r.bytes()?;
            let text_head = r.bytes()?;
            let max_depth = r.u32()? as usize;
            let max_fields = r.u32()? as usize;
            Some(SealRoute { rules, contexts, key_id, text_head, max_depth, max_fields })
        }
    };
    Ok(Route { name: name_id, serve, method, segments, upstream, body_limit, tenant, identity_encoding, seal })
}

/// Reads a table (see the module notes); an error names what was malformed.
pub fn decode(b: &[u8]) -> R<Table> {
    let mut r = Reader { b, at: 0 };
    if r.take(4)? != b"KFT1" {
        return Err("not a front table".into());
    }
    let mut o = [0u32; 8];
    for v in &mut o {
        *v = r.u32()?;
    }
    let options = PoolOptions {
        connections: (o[0] as usize).max(1),
        max_queue: o[1] as usize,
        connect_ms: u64::from(o[2]),
        headers_ms: u64::from(o[3]),
        body_ms: u64::from(o[4]),
        keep_alive_ms: u64::from(o[5]),
        queue_ms: u64::from(o[6]),
        max_response: o[7] as usize,
    };
    let spec = |r: &mut Reader<'_>| -> R<ErrorSpec> { Ok(ErrorSpec { status: r.u16()?, message: r.bytes()? }) };
    let statuses = ErrorStatuses {
        unavailable: spec(&mut r)?,
        timeout: spec(&mut r)?,
        busy: spec(&mut r)?,
        bad_response: spec(&mut r)?,
    };
    let reserved = r.list(|r| r.bytes())?;
    let loopback = r.u8()? == 1;
    let peers = r.list(cidr)?;
    let reasons = r.list(|r| Ok((r.u16()?, r.bytes()?)))?;
    let upstreams = r.list(|r| {
        let host = r.bytes()?;
        let ip = ip_of(r.addr16()?);
        let port = r.u16()?;
        Ok(Upstream { host, addr: SocketAddr::new(ip, port), base: r.bytes()?, label: r.bytes()? })
    })?;
    let n = upstreams.len();
    let routes = r.list(|r| route(r, n))?;
    if r.at != b.len() {
        return Err("bytes after the table".into());
    }
    Ok(Table { options, statuses, reserved, trust: Trust { loopback, peers }, reasons, upstreams, routes })
}

impl Trust {
    /// The gateway's `trust`: the listed peers, and loopback when so configured.
    pub fn has(&self, peer: IpAddr) -> bool {
        let loopback = match ip_of(addr16(peer)) {
            IpAddr::V4(v4) => v4.octets()[0] == 127,
            IpAddr::V6(v6) => v6 == Ipv6Addr::LOCALHOST,
        };
        (self.loopback && loopback) || in_cidrs(&self.peers, peer)
    }
}

/// Whether the first `bits` bits of `a` and `b` agree.
fn prefix_eq(a: &[u8], b: &[u8], bits: u8) -> bool {
    let full = usize::from(bits / 8);
    if a[..full] != b[..full] {
        return false;
    }
    let rest = bits % 8;
    rest == 0 || {
        let mask = 0xffu8 << (8 - rest);
        a[full] & mask == b[full] & mask
    }
}

/// Whether `peer` is in `peers` (tenant-source.ts TrustedPeers): IPv4 peers
/// (mapped ones included) match IPv4 entries, IPv6 peers IPv6 entries.
pub fn in_cidrs(peers: &[Cidr], peer: IpAddr) -> bool {
    match ip_of(addr16(peer)) {
        IpAddr::V4(v4) => peers.iter().any(|c| c.v4 && prefix_eq(&v4.octets(), &c.addr[12..], c.prefix)),
        IpAddr::V6(v6) => peers.iter().any(|c| !c.v4 && prefix_eq(&v6.octets(), &c.addr, c.prefix)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
        IpAddr::V4(std::net::Ipv4Addr::new(a, b, c, d))
    }

    #[test]
    fn cidrs_keep_the_families_apart() {
        let mut a = [0u8; 16];
        a[12..].copy_from_slice(&[10, 1, 0, 0]);
        let peers = [Cidr { v4: true, addr: a, prefix: 16 }, Cidr { v4: false, addr: [0; 16], prefix: 0 }];
        assert!(in_cidrs(&peers, v4(10, 1, 9, 9)));
        assert!(!in_cidrs(&peers[..1], v4(10, 2, 0, 1)));
        assert!(in_cidrs(&peers, "::2".parse().unwrap()), "::/0 holds every IPv6 peer");
        assert!(!in_cidrs(&peers[1..], v4(10, 2, 0, 1)), "and no IPv4 one");
        assert!(in_cidrs(&peers[..1], "::ffff:10.1.2.3".parse().unwrap()), "a mapped peer is IPv4");
    }

    #[test]
    fn trust_is_the_listed_peers_plus_loopback() {
        let t = Trust { loopback: true, peers: vec![Cidr { v4: true, addr: addr16(v4(10, 0, 0, 5)), prefix: 32 }] };
        assert!(t.has(v4(127, 9, 9, 9)) && t.has("::1".parse().unwrap()) && t.has(v4(10, 0, 0, 5)));
        assert!(t.has("::ffff:10.0.0.5".parse().unwrap()) && t.has("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!t.has(v4(10, 0, 0, 6)));
        assert!(!Trust { loopback: false, peers: vec![] }.has(v4(127, 0, 0, 1)));
    }

    #[test]
    fn refuses_a_truncated_table() {
        assert!(decode(b"KFT1\0\0").is_err());
        assert!(decode(b"XXXX").is_err());
    }
}
