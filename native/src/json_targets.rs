//! The values a list of field rules selects in a JSON body, found in one
//! native pass: the gateway's scanner (gateway/src/pipeline/json-scan.ts) and
//! target walk (field-targets.ts `collectTargets`) for the common case, with
//! the JavaScript pair as the reference.
//!
//! This pass only ever answers what the reference would answer, or declines
//! (`None`): the caller then runs the reference, which also produces every
//! error with its message. It declines on anything the reference reports as
//! an error (malformed JSON, too deep, a repeated or case-variant member on a
//! selected path, a required field absent, a wrong shape, too many fields)
//! and on what it does not handle itself: a member name with a backslash
//! escape or a byte ≥ 0x80 in an object the rules step into (the reference
//! decodes and case-folds those). The body must already be valid UTF-8.
//!
//! Rules come encoded by the caller (`encode_rules` in the gateway's
//! json-targets.ts), all integers little-endian:
//!
//! ```text
//! u16 rule count; per rule: u8 onMissing (0 skip, 1 error), u8 segment count,
//!   per segment: u8 kind (0 member, 1 each); a member: u16 name length, the
//!   name's UTF-8, u16 fold length (0xffff: no ASCII fold), the fold's bytes
//! ```
//!
//! where a member's fold is the reference's `foldName` of its name when that
//! is ASCII. Each target is 4 numbers: rule index, value start, value end,
//! and flags (type: 1 object, 2 array, 3 string, 4 number, 5 boolean, 6 null;
//! 8 added for a string with a backslash escape), in the reference's order
//! (rule by rule, document order within a rule).

use crate::error::{Error, Result};

const OBJECT: u32 = 1;
const ARRAY: u32 = 2;
const STRING: u32 = 3;
const NUMBER: u32 = 4;
const BOOLEAN: u32 = 5;
const NULL: u32 = 6;
/// Added to a string's type when it holds a backslash escape.
pub const ESCAPED: u32 = 8;

enum Step {
    Member {
        name: Vec<u8>,
        fold: Option<Vec<u8>>,
    },
    Each,
}

struct Rule {
    required: bool,
    steps: Vec<Step>,
}

/// One trie node of the rules' steps (shared prefixes share nodes).
#[derive(Default)]
struct Plan {
    members: Vec<(Vec<u8>, usize)>,
    folds: Vec<Vec<u8>>,
    each: Option<usize>,
}

/// A value on a planned path.
struct Node {
    kind: u32,
    start: usize,
    end: usize,
    /// Objects: (member name, node) for planned members.
    members: Vec<(usize, usize)>,
    /// Arrays: element nodes.
    items: Vec<usize>,
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8]> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.b.len());
        let end = end.ok_or_else(|| Error::arg("jsonTargets: rules are truncated"))?;
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16> {
        let s = self.take(2)?;
        Ok(u16::from_le_bytes([s[0], s[1]]))
    }
}

fn parse_rules(encoded: &[u8]) -> Result<Vec<Rule>> {
    let mut r = Reader { b: encoded, at: 0 };
    let count = r.u16()?;
    let mut rules = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let required = r.u8()? == 1;
        let n = r.u8()?;
        let mut steps = Vec::with_capacity(n as usize);
        for _ in 0..n {
            match r.u8()? {
                0 => {
                    let len = r.u16()? as usize;
                    let name = r.take(len)?.to_vec();
                    let fold_len = r.u16()?;
                    let fold = if fold_len == 0xffff {
                        None
                    } else {
                        Some(r.take(fold_len as usize)?.to_vec())
                    };
                    steps.push(Step::Member { name, fold });
                }
                1 => steps.push(Step::Each),
                _ => return Err(Error::arg("jsonTargets: unknown step kind")),
            }
        }
        if steps.is_empty() {
            return Err(Error::arg("jsonTargets: a rule without steps"));
        }
        rules.push(Rule { required, steps });
    }
    if r.at != encoded.len() {
        return Err(Error::arg("jsonTargets: trailing bytes after the rules"));
    }
    Ok(rules)
}

/// The trie of the rules' steps; node 0 is the root.
fn compile(rules: &[Rule]) -> Vec<Plan> {
    let mut plans = vec![Plan::default()];
    for rule in rules {
        let mut at = 0;
        for step in &rule.steps {
            at = match step {
                Step::Each => match plans[at].each {
                    Some(next) => next,
                    None => {
                        plans.push(Plan::default());
                        let next = plans.len() - 1;
                        plans[at].each = Some(next);
                        next
                    }
                },
                Step::Member { name, fold } => {
                    if let Some(&(_, next)) = plans[at].members.iter().find(|(n, _)| n == name) {
                        next
                    } else {
                        plans.push(Plan::default());
                        let next = plans.len() - 1;
                        plans[at].members.push((name.clone(), next));
                        if let Some(f) = fold {
                            if !plans[at].folds.contains(f) {
                                plans[at].folds.push(f.clone());
                            }
                        }
                        next
                    }
                }
            };
        }
    }
    plans
}

/// Encodes rules as the gateway's `encodeRules` does, for Rust callers
/// (tests, bench/native-floor, the fuzz targets): per rule (required, steps),
/// a step `*` is "each", any other a member whose fold is its ASCII lower
/// case. For trusted, small rule lists: lengths are not checked (names of
/// ASCII only, under 64 KiB, at most 255 steps and 65,535 rules).
pub fn encode_rules(rules: &[(bool, &[&str])]) -> Vec<u8> {
    let mut out = (rules.len() as u16).to_le_bytes().to_vec();
    for (required, steps) in rules {
        out.push(u8::from(*required));
        out.push(steps.len() as u8);
        for s in *steps {
            if *s == "*" {
                out.push(1);
            } else {
                out.push(0);
                out.extend((s.len() as u16).to_le_bytes());
                out.extend(s.as_bytes());
                let fold = s.to_ascii_lowercase();
                out.extend((fold.len() as u16).to_le_bytes());
                out.extend(fold.as_bytes());
            }
        }
    }
    out
}

/// Rules decoded and compiled once (a route's rules serve every request).
pub struct CompiledRules {
    rules: Vec<Rule>,
    plans: Vec<Plan>,
}

/// Decodes and compiles encoded rules; `[invalid_argument]` when they do not decode.
pub fn compile_rules(encoded: &[u8]) -> Result<CompiledRules> {
    let rules = parse_rules(encoded)?;
    let plans = compile(&rules);
    Ok(CompiledRules { rules, plans })
}

/// Why the pass stopped without an answer; never surfaced (the reference says why).
struct Decline;

type Scan<T> = std::result::Result<T, Decline>;

struct Frame {
    object: bool,
    /// Plan and node when on the plan.
    on: Option<(usize, usize)>,
    /// Objects on the plan: the planned member whose value is being read.
    key: Option<usize>,
}

struct Scanner<'a> {
    b: &'a [u8],
    plans: &'a [Plan],
    nodes: Vec<Node>,
    max_depth: usize,
    /// Most values kept on the plan before the pass declines.
    max_nodes: usize,
}

/// The start of the first 8-byte word from `i` that holds a quote, a
/// backslash or a control character, or of the last whole word's end when
/// fewer than 8 bytes remain: a string's plain run, skipped a word at a
/// time (the caller reads on byte by byte). Bytes ≥ 0x80 are never flagged.
fn skip_plain(b: &[u8], mut i: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    while let Some(chunk) = b.get(i..i + 8) {
        let mut a = [0u8; 8];
        a.copy_from_slice(chunk);
        let w = u64::from_le_bytes(a);
        // Bytes < 0x20: w − 0x20 borrows into the high bit only for them (bytes ≥ 0x80 have it set in w, masked by !w).
        let control = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
        if has_zero(w ^ (ONES * u64::from(b'"')))
            | has_zero(w ^ (ONES * u64::from(b'\\')))
            | control
            != 0
        {
            break;
        }
        i += 8;
    }
    i
}

fn is_ws(c: u8) -> bool {
    matches!(c, b' ' | b'\n' | b'\r' | b'\t')
}

impl Scanner<'_> {
    fn at(&self, i: usize) -> Option<u8> {
        self.b.get(i).copied()
    }

    fn ws(&self, mut i: usize) -> usize {
        while self.at(i).is_some_and(is_ws) {
            i += 1;
        }
        i
    }

    /// The string whose opening quote is at `i`: (index after the closing quote, escaped).
    fn string(&self, mut i: usize) -> Scan<(usize, bool)> {
        let mut escaped = false;
        i += 1;
        loop {
            i = skip_plain(self.b, i);
            match self.at(i).ok_or(Decline)? {
                b'"' => return Ok((i + 1, escaped)),
                b'\\' => {
                    escaped = true;
                    match self.at(i + 1).ok_or(Decline)? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => i += 2,
                        b'u' => {
                            for k in i + 2..i + 6 {
                                if !self.at(k).is_some_and(|h| h.is_ascii_hexdigit()) {
                                    return Err(Decline);
                                }
                            }
                            i += 6;
                        }
                        _ => return Err(Decline),
                    }
                }
                c if c < 0x20 => return Err(Decline),
                _ => i += 1,
            }
        }
    }

    fn digits(&self, mut i: usize) -> Scan<usize> {
        if !self.at(i).is_some_and(|c| c.is_ascii_digit()) {
            return Err(Decline);
        }
        while self.at(i).is_some_and(|c| c.is_ascii_digit()) {
            i += 1;
        }
        Ok(i)
    }

    fn number(&self, mut i: usize) -> Scan<usize> {
        if self.at(i) == Some(b'-') {
            i += 1;
        }
        if self.at(i) == Some(b'0') {
            i += 1;
        } else {
            i = self.digits(i)?;
        }
        if self.at(i) == Some(b'.') {
            i = self.digits(i + 1)?;
        }
        if matches!(self.at(i), Some(b'e' | b'E')) {
            i += 1;
            if matches!(self.at(i), Some(b'+' | b'-')) {
                i += 1;
            }
            i = self.digits(i)?;
        }
        Ok(i)
    }

    fn literal(&self, i: usize, text: &[u8]) -> Scan<usize> {
        if self.b.get(i..i + text.len()) == Some(text) {
            Ok(i + text.len())
        } else {
            Err(Decline)
        }
    }

    /// The member name at `i` of `frame` up to past its colon: (index of the
    /// value, the value's plan). Sets `frame.key` for a planned member.
    fn key(&self, frame: &mut Frame, i: usize) -> Scan<(usize, Option<usize>)> {
        if self.at(i) != Some(b'"') {
            return Err(Decline);
        }
        let (end, escaped) = self.string(i)?;
        let mut child = None;
        if let Some((plan, node)) = frame.on {
            let p = &self.plans[plan];
            if !p.members.is_empty() {
                let name = &self.b[i + 1..end - 1];
                if escaped || name.iter().any(|&c| c >= 0x80) {
                    return Err(Decline); // the reference decodes and folds it
                }
                if let Some(k) = p.members.iter().position(|(n, _)| n.as_slice() == name) {
                    if self.nodes[node].members.iter().any(|&(m, _)| m == k) {
                        return Err(Decline); // a repeated planned member
                    }
                    frame.key = Some(k);
                    child = Some(p.members[k].1);
                } else if p.folds.iter().any(|f| {
                    f.len() == name.len()
                        && f.iter()
                            .zip(name)
                            .all(|(&f, &c)| f == c.to_ascii_lowercase())
                }) {
                    return Err(Decline); // a case variant of a planned member
                }
            }
        }
        let i = self.ws(end);
        if self.at(i) != Some(b':') {
            return Err(Decline);
        }
        Ok((self.ws(i + 1), child))
    }

    fn push_node(&mut self, kind: u32, start: usize, end: usize) -> Scan<usize> {
        // Many values on the plan (a huge array under `[*]`): decline before
        // holding them all; the reference then answers (often too_many_fields).
        if self.nodes.len() >= self.max_nodes {
            return Err(Decline);
        }
        self.nodes.push(Node {
            kind,
            start,
            end,
            members: Vec::new(),
            items: Vec::new(),
        });
        Ok(self.nodes.len() - 1)
    }

    /// Scans the whole body; the root node when the root is on the plan.
    fn scan(&mut self) -> Scan<Option<usize>> {
        let mut stack: Vec<Frame> = Vec::with_capacity(16);
        let mut i = self.ws(0);
        let mut value_plan = Some(0usize);
        loop {
            let mut done: Option<usize> = None;
            let c = self.at(i).ok_or(Decline)?;
            if c == b'{' || c == b'[' {
                if stack.len() == self.max_depth {
                    return Err(Decline);
                }
                let object = c == b'{';
                let kind = if object { OBJECT } else { ARRAY };
                let on = match value_plan {
                    Some(plan) => Some((plan, self.push_node(kind, i, 0)?)),
                    None => None,
                };
                let mut frame = Frame {
                    object,
                    on,
                    key: None,
                };
                i = self.ws(i + 1);
                if self.at(i) != Some(if object { b'}' } else { b']' }) {
                    if object {
                        let (next, plan) = self.key(&mut frame, i)?;
                        i = next;
                        value_plan = plan;
                    } else {
                        value_plan = frame.on.and_then(|(p, _)| self.plans[p].each);
                    }
                    stack.push(frame);
                    continue;
                }
                i += 1;
                if let Some((_, node)) = frame.on {
                    self.nodes[node].end = i;
                    done = Some(node);
                }
            } else if c == b'"' {
                let start = i;
                let (end, escaped) = self.string(i)?;
                i = end;
                if value_plan.is_some() {
                    let kind = if escaped { STRING | ESCAPED } else { STRING };
                    done = Some(self.push_node(kind, start, end)?);
                }
            } else {
                let start = i;
                let kind;
                if c == b'-' || c.is_ascii_digit() {
                    i = self.number(i)?;
                    kind = NUMBER;
                } else if c == b't' {
                    i = self.literal(i, b"true")?;
                    kind = BOOLEAN;
                } else if c == b'f' {
                    i = self.literal(i, b"false")?;
                    kind = BOOLEAN;
                } else if c == b'n' {
                    i = self.literal(i, b"null")?;
                    kind = NULL;
                } else {
                    return Err(Decline);
                }
                if value_plan.is_some() {
                    done = Some(self.push_node(kind, start, i)?);
                }
            }
            // The value is complete: record it, then close every container it completes.
            loop {
                let Some(top) = stack.last_mut() else {
                    return if self.ws(i) == self.b.len() {
                        Ok(done)
                    } else {
                        Err(Decline)
                    };
                };
                if let (Some(d), Some((_, node))) = (done, top.on) {
                    if top.object {
                        if let Some(k) = top.key.take() {
                            self.nodes[node].members.push((k, d));
                        }
                    } else {
                        self.nodes[node].items.push(d);
                    }
                }
                let object = top.object;
                let on = top.on;
                i = self.ws(i);
                let sep = self.at(i);
                if sep == Some(b',') {
                    i = self.ws(i + 1);
                    if object {
                        let mut frame = stack.pop().ok_or(Decline)?;
                        frame.key = None;
                        let (next, plan) = self.key(&mut frame, i)?;
                        stack.push(frame);
                        i = next;
                        value_plan = plan;
                    } else {
                        value_plan = on.and_then(|(p, _)| self.plans[p].each);
                    }
                    break;
                }
                if sep != Some(if object { b'}' } else { b']' }) {
                    return Err(Decline);
                }
                i += 1;
                stack.pop();
                done = on.map(|(_, node)| {
                    self.nodes[node].end = i;
                    node
                });
            }
        }
    }
}

struct Walker<'a> {
    nodes: &'a [Node],
    plans: &'a [Plan],
    max_fields: usize,
    out: Vec<u32>,
}

impl Walker<'_> {
    fn add(&mut self, rule: usize, node: &Node) -> Scan<()> {
        if self.out.len() / 4 == self.max_fields {
            return Err(Decline); // too many fields
        }
        self.out
            .extend([rule as u32, node.start as u32, node.end as u32, node.kind]);
        Ok(())
    }

    /// collectTargets' walk of `rule` from `node` (plan `plan`) at step `depth`.
    fn walk(
        &mut self,
        rules: &[Rule],
        rule: usize,
        node: usize,
        plan: usize,
        depth: usize,
    ) -> Scan<()> {
        let r = &rules[rule];
        let last = depth + 1 == r.steps.len();
        let n = &self.nodes[node];
        match &r.steps[depth] {
            Step::Member { name, .. } => {
                if n.kind != OBJECT {
                    return Err(Decline); // a wrong shape
                }
                let p = &self.plans[plan];
                let k = p
                    .members
                    .iter()
                    .position(|(m, _)| m == name)
                    .ok_or(Decline)?;
                let child_plan = p.members[k].1;
                match n.members.iter().find(|&&(m, _)| m == k) {
                    Some(&(_, child)) if self.nodes[child].kind != NULL => {
                        if last {
                            self.add(rule, &self.nodes[child])
                        } else {
                            self.walk(rules, rule, child, child_plan, depth + 1)
                        }
                    }
                    _ if r.required => Err(Decline), // a required field absent
                    _ => Ok(()),
                }
            }
            Step::Each => {
                if n.kind != ARRAY {
                    return Err(Decline);
                }
                let child_plan = self.plans[plan].each.ok_or(Decline)?;
                for &child in &self.nodes[node].items {
                    if self.nodes[child].kind == NULL {
                        if r.required {
                            return Err(Decline);
                        }
                    } else if last {
                        self.add(rule, &self.nodes[child])?;
                    } else {
                        self.walk(rules, rule, child, child_plan, depth + 1)?;
                    }
                }
                Ok(())
            }
        }
    }
}

/// The targets of `compiled` in `body` (4 numbers each, see the module
/// notes), or `Ok(None)` when the pass declines. `[invalid_argument]` for a
/// body too large for 32-bit offsets.
pub fn json_targets(
    body: &[u8],
    compiled: &CompiledRules,
    max_depth: usize,
    max_fields: usize,
) -> Result<Option<Vec<u32>>> {
    if u32::try_from(body.len()).is_err() {
        return Err(Error::arg("jsonTargets: body over 4 GiB"));
    }
    let mut scanner = Scanner {
        b: body,
        plans: &compiled.plans,
        nodes: Vec::with_capacity(16),
        max_depth,
        max_nodes: max_fields.saturating_mul(4).saturating_add(4096),
    };
    let Ok(root) = scanner.scan() else {
        return Ok(None);
    };
    let Some(root) = root else {
        return Ok(None); // unreachable: the root is always on the plan (node 0)
    };
    let mut walker = Walker {
        nodes: &scanner.nodes,
        plans: &compiled.plans,
        max_fields,
        out: Vec::with_capacity(32),
    };
    for rule in 0..compiled.rules.len() {
        if walker.walk(&compiled.rules, rule, root, 0, 0).is_err() {
            return Ok(None);
        }
    }
    Ok(Some(walker.out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(rules: &[(bool, &[&str])]) -> Vec<u8> {
        encode_rules(rules)
    }

    fn targets(body: &str, rules: &[(bool, &[&str])]) -> Option<Vec<(u32, String, u32)>> {
        let compiled = compile_rules(&encode(rules)).unwrap();
        let out = json_targets(body.as_bytes(), &compiled, 64, 1000).unwrap()?;
        Some(
            out.chunks(4)
                .map(|t| (t[0], body[t[1] as usize..t[2] as usize].to_string(), t[3]))
                .collect(),
        )
    }

    #[test]
    fn finds_the_selected_values_rule_by_rule() {
        let body = r#" {"a":{"b":"x\"y","c":[{"d":null},{"x":1},{"d":"z"}]},"e":[ "p" , "q" ],"n":-1.5e+3} "#;
        let got = targets(
            body,
            &[
                (true, &["e", "*"]),
                (false, &["a", "c", "*", "d"]),
                (true, &["a", "b"]),
                (true, &["n"]),
            ],
        )
        .unwrap();
        assert_eq!(
            got,
            vec![
                (0, "\"p\"".into(), STRING),
                (0, "\"q\"".into(), STRING),
                (1, "\"z\"".into(), STRING),
                (2, r#""x\"y""#.into(), STRING | ESCAPED),
                (3, "-1.5e+3".into(), NUMBER),
            ]
        );
    }

    #[test]
    fn declines_what_the_reference_refuses_or_decodes() {
        let rules: &[(bool, &[&str])] = &[(true, &["card", "number"])];
        assert!(targets(r#"{"card":{"number":"1"}}"#, rules).is_some());
        for bad in [
            r#"{"card":{"number":"1"},"card":{}}"#, // repeated planned member
            r#"{"card":{"number":"1","Number":"2"}}"#, // case variant
            r#"{"card":{"n\u0075mber":"1"}}"#,      // escaped name in a planned object
            r#"{"card":{"númber":"1"}}"#,           // non-ASCII name in a planned object
            r#"{"card":{}}"#,                       // required field absent
            r#"{"card":{"number":null}}"#,          // null is absent
            r#"{"card":[]}"#,                       // wrong shape
            r#"{"card":{"number":"1"}"#,            // truncated
            r#"{"card":{"number":"1"}} x"#,         // trailing bytes
            r#"{"card":{"number":01}}"#,            // bad number
            "{\"card\":{\"number\":\"a\u{1}\"}}",   // control character
            r#"{"card":{"number":"\x"}}"#,          // bad escape
            r#"{"card":{"number":tru}}"#,           // bad literal
            r#"[1,]"#,
            "",
        ] {
            assert!(targets(bad, rules).is_none(), "{bad}");
        }
        // Non-ASCII names that fold to a planned ASCII name (ſ → s, Kelvin sign → k), with a skip rule.
        for (body, rule) in [
            (r#"{"s":"1","ſ":"2"}"#, "s"),
            ("{\"k\":\"1\",\"\u{212a}\":\"2\"}", "k"),
        ] {
            assert!(targets(body, &[(false, &[rule])]).is_none(), "{body}");
        }
        // Off the plan, repeats and case variants are the application's business.
        assert!(targets(r#"{"x":{"a":1,"a":2,"A":3},"card":{"number":"1"}}"#, rules).is_some());
        assert!(
            targets(r#"{"card":{"number":"1"}}"#, &[(false, &["card", "x"])])
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn skip_plain_stops_at_every_special_byte() {
        for special in [b'"', b'\\', 0x00, 0x1f, 0x0a] {
            for at in 0..24 {
                let mut b = vec![b'a'; 24];
                b[at] = special;
                let stop = skip_plain(&b, 0);
                assert!(
                    stop <= at && at < stop + 8,
                    "{special:#x} at {at}: stopped at {stop}"
                );
            }
        }
        // Plain bytes (ASCII, 0x20, 0x7f, UTF-8 continuation and lead bytes) are skipped.
        let plain: Vec<u8> = (0x20u8..=0xff)
            .filter(|&c| c != b'"' && c != b'\\')
            .collect();
        assert_eq!(skip_plain(&plain, 0), plain.len() / 8 * 8);
    }

    #[test]
    fn depth_and_field_limits() {
        let rules = compile_rules(&encode(&[(false, &["*"])])).unwrap();
        let deep = format!("{}{}", "[".repeat(64), "]".repeat(64));
        assert!(json_targets(deep.as_bytes(), &rules, 64, 10)
            .unwrap()
            .is_some());
        let deeper = format!("{}{}", "[".repeat(65), "]".repeat(65));
        assert!(json_targets(deeper.as_bytes(), &rules, 64, 10)
            .unwrap()
            .is_none());
        assert_eq!(
            json_targets(b"[1,2,3]", &rules, 64, 3)
                .unwrap()
                .map(|t| t.len()),
            Some(12)
        );
        assert!(json_targets(b"[1,2,3,4]", &rules, 64, 3).unwrap().is_none());
        // Values kept on the plan are bounded (4 × maxFields + 4096) even where none is a target.
        let skip = compile_rules(&encode(&[(false, &["*", "x"])])).unwrap();
        let many = format!("[{}{{}}]", "{},".repeat(8000));
        assert!(json_targets(many.as_bytes(), &skip, 64, 10)
            .unwrap()
            .is_none());
        let some = format!("[{}{{}}]", "{},".repeat(4000));
        assert_eq!(
            json_targets(some.as_bytes(), &skip, 64, 10)
                .unwrap()
                .map(|t| t.len()),
            Some(0)
        );
    }

    #[test]
    fn bad_rules_are_an_error_not_a_panic() {
        for bad in [
            &b""[..],
            b"\x01",
            b"\x01\x00\x01\x01\x00\x05\x00ab",
            b"\x01\x00\x00\x00",
            b"\x01\x00\x00\x01\x09",
        ] {
            assert!(compile_rules(bad).is_err(), "{bad:?}");
        }
    }
}
