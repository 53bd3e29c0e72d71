//! Request encryption on the native front (decision 0001, step 3): the
//! routes whose request rules the front serves, the tenants' L3 keys it may
//! seal under, and the one call that seals a body, as
//! gateway/src/proxy/proxy-transforms.ts `encryptRequestBody` does on its
//! fast path (native target scan, then one seal-and-splice under a fresh
//! data key). Every case that path would not take, or would answer with an
//! error, is a decline: the pipeline answers it.
//!
//! Keys are copies: TypeScript (native-front/front-keys.ts) copies a
//! tenant's active L3 version into a slot of locked key memory here, with a
//! deadline (never past its lease's end), checks the ones in use against its
//! lease cache, and removes a tenant's at once when its keys change
//! (revocation, rotation). A request for a key the ring does not hold, or
//! holds past its deadline, waits a moment while its key is asked for (the
//! loop parks it), then is declined.

use std::collections::HashMap;
use std::time::Instant;

use crate::json_targets::{self, CompiledRules};
use crate::keys::Slot;
use crate::seal_splice;
use crate::splice::SpliceHeads;

/// Most bytes one field's plaintext may have (common/src/format/envelope.ts `MAX_FIELD_PLAINTEXT`).
const MAX_FIELD_PLAINTEXT: u32 = 1 << 20;

/// Target type of a plain string, and the flag of one with an escape (json-targets.ts).
const TARGET_STRING: u32 = 3;

/// The decline reason of a request whose key the ring lacks (the loop parks it a while).
pub const NO_KEY: &str = "no key";

/// What a route with request rules needs to seal a body.
pub struct SealRoute {
    pub rules: CompiledRules,
    /// The context of each rule (field-context.ts, no record id).
    pub contexts: Vec<Vec<u8>>,
    pub key_id: Vec<u8>,
    pub text_head: Vec<u8>,
    pub max_depth: usize,
    pub max_fields: usize,
}

impl std::fmt::Debug for SealRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealRoute").field("key_id", &self.key_id).finish_non_exhaustive()
    }
}

/// One tenant's active L3 version of one key id, as the front seals under it.
pub struct RingKey {
    pub slot: Slot,
    pub version: u32,
    pub wrap_aad: Vec<u8>,
    pub header: Vec<u8>,
    pub aad_head: Vec<u8>,
    pub until: Instant,
}

/// (tenant, key id).
pub type KeyName = (Vec<u8>, Vec<u8>);

/// The keys the front holds, and what it tells TypeScript about them.
#[derive(Default)]
pub struct KeyRing {
    pub keys: HashMap<KeyName, RingKey>,
    /// Keys TypeScript could not give (not leasable now), until when: declined at once meanwhile.
    pub refused: HashMap<KeyName, Instant>,
    /// Keys a request needed and the ring did not hold (or held expired).
    pub wanted: Vec<KeyName>,
    /// Requests sealed per (tenant, key id, version) since the last drain: one L3 use each.
    pub uses: HashMap<(KeyName, u32), u64>,
}

impl KeyRing {
    /// Removes every key of `tenant` (every key when `tenant` is empty).
    pub fn forget(&mut self, tenant: &[u8]) {
        if tenant.is_empty() {
            self.keys.clear();
            self.refused.clear();
        } else {
            self.keys.retain(|(t, _), _| t != tenant);
            self.refused.retain(|(t, _), _| t != tenant);
        }
    }

    fn want(&mut self, name: KeyName) {
        if !self.wanted.contains(&name) && self.wanted.len() < 4096 {
            self.wanted.push(name);
        }
    }
}

/// `application/json` or `application/<x>+json`, with at most `charset=utf-8`
/// parameters (json-body.ts `isJsonMediaType`).
pub fn json_media_type(v: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(v) else { return false };
    let mut parts = text.split(';').map(|s| s.trim().to_ascii_lowercase());
    let Some(t) = parts.next() else { return false };
    let Some(sub) = t.strip_prefix("application/") else { return false };
    let ok_type = sub == "json"
        || sub.strip_suffix("+json").is_some_and(|x| {
            !x.is_empty() && x.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b".+-".contains(&c))
        });
    ok_type
        && parts.all(|p| {
            let v = p.strip_prefix("charset=").unwrap_or("");
            v == "utf-8" || v == "\"utf-8\"" || v == "utf-8\"" || v == "\"utf-8"
        })
}

/// The sealed body, None to forward `body` as it is (empty, or no field
/// present), or why the front declines. `ring`: locked by the caller.
pub fn seal_body(
    route: &SealRoute,
    ring: &mut KeyRing,
    tenant: &[u8],
    content_type: Option<&[u8]>,
    content_encoding: Option<&[u8]>,
    body: &[u8],
    now: Instant,
) -> Result<Option<Vec<u8>>, &'static str> {
    if body.is_empty() {
        return Ok(None);
    }
    if content_encoding.is_some_and(|e| {
        let e = e.trim_ascii();
        !e.is_empty() && !e.eq_ignore_ascii_case(b"identity")
    }) {
        return Err("compressed body");
    }
    if !content_type.is_some_and(json_media_type) {
        return Err("not JSON");
    }
    if std::str::from_utf8(body).is_err() {
        return Err("not UTF-8");
    }
    let targets = match json_targets::json_targets(body, &route.rules, route.max_depth, route.max_fields) {
        Ok(Some(t)) => t,
        _ => return Err("scan declined"),
    };
    if targets.is_empty() {
        return Ok(None);
    }
    // Value start, value end, plaintext start, plaintext end, rule: in body order.
    let mut items: Vec<[u32; 5]> = Vec::with_capacity(targets.len() / 4);
    for t in targets.chunks_exact(4) {
        let (rule, start, end, flags) = (t[0], t[1], t[2], t[3]);
        if flags != TARGET_STRING || end - start < 2 || end - start - 2 > MAX_FIELD_PLAINTEXT {
            return Err("target not a plain string");
        }
        items.push([start, end, start + 1, end - 1, rule]);
    }
    items.sort_unstable();
    let mut contexts: Vec<&[u8]> = Vec::with_capacity(items.len());
    for it in &items {
        contexts.push(route.contexts.get(it[4] as usize).ok_or("rule context")?);
    }
    let spans: Vec<u32> = items.iter().flat_map(|it| it[..4].iter().copied()).collect();
    let name: KeyName = (tenant.to_vec(), route.key_id.clone());
    let Some(key) = ring.keys.get(&name).filter(|k| k.until > now) else {
        if ring.refused.get(&name).is_some_and(|&until| until > now) {
            return Err("key refused");
        }
        ring.want(name);
        return Err(NO_KEY);
    };
    let heads = SpliceHeads { aad_head: &key.aad_head, text_head: &route.text_head, header: &key.header };
    let items = seal_splice::items_from_spans(&spans, body.len()).map_err(|_| "spans")?;
    let len = seal_splice::output_len(body.len(), &items, &heads).map_err(|_| "length")?;
    let mut out = vec![0u8; len];
    seal_splice::seal_splice(key.slot.bytes(), &key.wrap_aad, body, &items, &contexts, &heads, &mut out)
        .map_err(|_| "seal")?;
    let version = key.version;
    *ring.uses.entry((name, version)).or_insert(0) += 1;
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_as_the_reference() {
        for ok in ["application/json", "Application/JSON", "application/vnd.x+json", "application/json; charset=utf-8", "application/json;charset=\"UTF-8\""] {
            assert!(json_media_type(ok.as_bytes()), "{ok}");
        }
        for no in ["text/json", "application/jsonx", "application/+json", "application/json; charset=latin1", "application/json; q=1", ""] {
            assert!(!json_media_type(no.as_bytes()), "{no}");
        }
    }
}
