//! The native front's JS surface (see `native/ts/backend.ts` `NativeFront`):
//! start, table swap, record drain, stats and stop of a [`front::Front`].

use std::net::{IpAddr, SocketAddr};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::atomic::Ordering;

use crate::error::{code, Error, Result};
use std::time::{Duration, Instant};

use crate::front::seal::RingKey;
use crate::front::{table, Front};
use crate::keys::{KeyHandle, Slot};
use crate::napi::{Env, RawValue, Tagged, TypeTag};

// SAFETY: this tag is used for no other type; it marks externals whose data
// is a Box<Front> (see `Env::new_external`).
unsafe impl Tagged for Front {
    const TAG: TypeTag = TypeTag {
        lower: 0x6b63_6d66_726f_6e74,
        upper: 0x5e2b_91d4_07c6_a38f,
    };
}

fn front<'cb>(env: &Env<'cb>, value: RawValue, what: &str) -> Result<&'cb Front> {
    env.external::<Front>(value, code::INVALID_ARGUMENT, what)
}

fn decode_table(bytes: &[u8], what: &str) -> Result<table::Table> {
    table::decode(bytes).map_err(|e| Error::arg(format!("{what}: {e}")))
}

/// `frontStart(host, port, tunnelPath, table)` → a front handle: binds
/// `host` (an IP address, as a Buffer of its text) and `port` (0: any), and
/// starts the loop thread serving from `table` (bytes written by
/// gateway/src/native-front/front-table.ts); declined connections go to the
/// Unix socket at `tunnelPath` (Buffer). Throws `invalid_argument` for a bad
/// address or table, `internal_error` when the port cannot be bound.
pub fn front_start(env: Env<'_>, args: &[RawValue]) -> Result<RawValue> {
    let [host, port, tunnel, table_bytes] = *args else {
        return Err(Error::arg("frontStart(host, port, tunnelPath, table)"));
    };
    let host = env.bytes(host, "frontStart: host")?;
    let ip: IpAddr = std::str::from_utf8(host)
        .ok()
        .and_then(|h| h.parse().ok())
        .ok_or_else(|| Error::arg("frontStart: host must be an IP address"))?;
    let port = env.number_or_nan(port)?;
    if !(port.fract() == 0.0 && (0.0..=65535.0).contains(&port)) {
        return Err(Error::arg("frontStart: port must be an integer from 0 to 65535"));
    }
    let tunnel = PathBuf::from(std::ffi::OsStr::from_bytes(env.bytes(tunnel, "frontStart: tunnelPath")?));
    let table = decode_table(env.bytes(table_bytes, "frontStart: table")?, "frontStart: table")?;
    let started = Front::start(SocketAddr::new(ip, port as u16), tunnel, table)
        .map_err(|e| Error::internal(format!("native front could not start: {e}")))?;
    env.new_external(Box::new(started))
}

/// `frontTable(front, table)`: serve from `table` from the next request on.
pub fn front_table(env: Env<'_>, args: &[RawValue]) -> Result<RawValue> {
    let [f, table_bytes] = *args else {
        return Err(Error::arg("frontTable(front, table)"));
    };
    let f = front(&env, f, "frontTable: front")?;
    f.set_table(decode_table(env.bytes(table_bytes, "frontTable: table")?, "frontTable: table")?);
    env.undefined()
}

/// `frontDrain(front)` → Buffer: the request records since the last drain,
/// one little-endian u64 each (name id << 40 | status << 30 | µs; status 0: aborted).
pub fn front_drain(env: Env<'_>, args: &[RawValue]) -> Result<RawValue> {
    let [f] = *args else {
        return Err(Error::arg("frontDrain(front)"));
    };
    let records = front(&env, f, "frontDrain: front")?.drain();
    let (value, out) = env.new_buffer(records.len() * 8)?;
    for (dst, r) in out.chunks_exact_mut(8).zip(&records) {
        dst.copy_from_slice(&r.to_le_bytes());
    }
    Ok(value)
}

/// `frontStats(front)` → `{ port, connections, served, declined, lost, inFlight, failure }`
/// (`failure`: why the loop stopped, or null while it runs).
pub fn front_stats(env: Env<'_>, args: &[RawValue]) -> Result<RawValue> {
    let [f] = *args else {
        return Err(Error::arg("frontStats(front)"));
    };
    let f = front(&env, f, "frontStats: front")?;
    let s = f.stats();
    let n = |v: &std::sync::atomic::AtomicU64| env.number(v.load(Ordering::Relaxed) as f64);
    env.object(&[
        (c"port", env.number(f64::from(f.local.port()))?),
        (c"connections", n(&s.connections)?),
        (c"served", n(&s.served)?),
        (c"declined", n(&s.declined)?),
        (c"lost", n(&s.lost)?),
        (c"inFlight", n(&s.in_flight)?),
        (c"failure", match f.failure() {
            Some(why) => env.string(&why)?,
            None => env.null()?,
        }),
    ])
}

/// `frontKey(front, tenant, keyId, kek, version, ttlMs, wrapAad, header, aadHead)`:
/// the front seals requests of `tenant` for `keyId` under a copy of `kek`
/// (version `version`, the envelope heads given) for at most `ttlMs`; `kek`
/// null removes the key (and, with `ttlMs` over 0, refuses it that long:
/// its requests go to the pipeline without waiting). Strings are Buffers. The copy lives in locked key
/// memory of its own: destroying `kek` later does not reach it (frontForget does).
pub fn front_key(env: Env<'_>, args: &[RawValue]) -> Result<RawValue> {
    let [f, tenant, key_id, kek, version, ttl, wrap_aad, header, aad_head] = *args else {
        return Err(Error::arg("frontKey(front, tenant, keyId, kek, version, ttlMs, wrapAad, header, aadHead)"));
    };
    let f = front(&env, f, "frontKey: front")?;
    let name = (env.bytes(tenant, "frontKey: tenant")?.to_vec(), env.bytes(key_id, "frontKey: keyId")?.to_vec());
    let ttl = env.number_or_nan(ttl)?;
    if !(0.0..=86_400_000.0).contains(&ttl) {
        return Err(Error::arg("frontKey: ttlMs must be from 0 to 86400000"));
    }
    if env.typeof_is_null(kek)? {
        // No key: removed, and with a ttl refused that long (its requests go to the pipeline at once).
        let mut ring = f.keys();
        ring.keys.remove(&name);
        if ttl > 0.0 {
            ring.refused.insert(name, Instant::now() + Duration::from_millis(ttl as u64));
        } else {
            ring.refused.remove(&name);
        }
        return env.undefined();
    }
    let kek = env.external::<KeyHandle>(kek, code::INVALID_KEY, "frontKey: kek")?;
    if kek.is_transport() {
        return Err(Error::new(code::INVALID_KEY, "frontKey: kek is a transport key"));
    }
    let version = env.number_or_nan(version)?;
    if !(version.fract() == 0.0 && (1.0..=4_294_967_295.0).contains(&version)) {
        return Err(Error::arg("frontKey: version must be a positive integer"));
    }
    let mut slot = Slot::alloc()?;
    kek.with_key(|k| {
        slot.bytes_mut().copy_from_slice(k);
        Ok(())
    })?;
    let key = RingKey {
        slot,
        version: version as u32,
        wrap_aad: env.bytes(wrap_aad, "frontKey: wrapAad")?.to_vec(),
        header: env.bytes(header, "frontKey: header")?.to_vec(),
        aad_head: env.bytes(aad_head, "frontKey: aadHead")?.to_vec(),
        until: Instant::now() + Duration::from_millis(ttl as u64),
    };
    let mut ring = f.keys();
    ring.refused.remove(&name);
    ring.keys.insert(name, key);
    env.undefined()
}

/// `frontForget(front, tenant)`: removes every key of `tenant` (Buffer) at once.
pub fn front_forget(env: Env<'_>, args: &[RawValue]) -> Result<RawValue> {
    let [f, tenant] = *args else {
        return Err(Error::arg("frontForget(front, tenant)"));
    };
    let f = front(&env, f, "frontForget: front")?;
    f.keys().forget(env.bytes(tenant, "frontForget: tenant")?);
    env.undefined()
}

/// `frontKeyDemand(front)` → `{ wanted: [tenant, keyId][], uses: [tenant, keyId, version, count][] }`:
/// the keys requests needed and the ring lacked, and the requests sealed per
/// key version, since the last call (Latin-1 strings).
pub fn front_key_demand(env: Env<'_>, args: &[RawValue]) -> Result<RawValue> {
    let [f] = *args else {
        return Err(Error::arg("frontKeyDemand(front)"));
    };
    let f = front(&env, f, "frontKeyDemand: front")?;
    let (wanted, uses) = {
        let mut ring = f.keys();
        // Copies past their deadline are dropped here (their slots wiped).
        let now = Instant::now();
        ring.keys.retain(|_, k| k.until > now);
        ring.refused.retain(|_, &mut until| until > now);
        (std::mem::take(&mut ring.wanted), std::mem::take(&mut ring.uses))
    };
    let text = |b: &[u8]| env.string(&b.iter().map(|&c| char::from(c)).collect::<String>());
    let mut w = Vec::with_capacity(wanted.len());
    for (t, k) in &wanted {
        w.push(env.array(&[text(t)?, text(k)?])?);
    }
    let mut u = Vec::with_capacity(uses.len());
    for (((t, k), v), n) in &uses {
        u.push(env.array(&[text(t)?, text(k)?, env.number(f64::from(*v))?, env.number(*n as f64)?])?);
    }
    env.object(&[(c"wanted", env.array(&w)?), (c"uses", env.array(&u)?)])
}

/// `frontStop(front)`: stops the loop and closes every connection it holds (idempotent).
pub fn front_stop(env: Env<'_>, args: &[RawValue]) -> Result<RawValue> {
    let [f] = *args else {
        return Err(Error::arg("frontStop(front)"));
    };
    front(&env, f, "frontStop: front")?.stop();
    env.undefined()
}
