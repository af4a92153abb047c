//! Linearizability of one key's history, as a register with compare-and-swap, searched by the
//! Wing–Gong / Lowe algorithm of `todc-utils`. An `info` operation may have taken effect or
//! not: its response is placed after every other event (+∞), as Knossos and Porcupine do, so
//! it can be linearized anywhere after its invocation, including "never" (last). For a
//! violation this module also finds a small window of operations that still cannot be
//! linearized. Pure computation: no clock, no I/O.

use super::history::{Call, Op, Outcome};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use todc_utils::linearizability::history::{Action, History};
use todc_utils::linearizability::WGLChecker;
use todc_utils::specifications::Specification;

/// Values are interned to small numbers per key so states hash and compare cheaply.
type V = u32;

#[derive(Clone, Debug)]
enum RegOp {
    Read(Option<V>),
    Write(V),
    Cas(Option<V>, V),
    /// A cas refused as a conflict: at its point the register did not hold the expected value.
    CasRefused(Option<V>),
    /// A cas that may have happened: it took effect if the value matched where it is placed.
    CasMaybe(Option<V>, V),
}

/// A register with compare-and-swap. With `ANY` it starts in an unknown state (`None`), which
/// the first operation that tells (a read, a write, a cas) fixes: how a window cut out of the
/// middle of a history is checked without the operations before it.
struct Register<const ANY: bool>;

impl<const ANY: bool> Specification for Register<ANY> {
    type State = Option<Option<V>>;
    type Operation = RegOp;

    fn init() -> Self::State {
        if ANY {
            None
        } else {
            Some(None)
        }
    }

    fn apply(op: &RegOp, state: &Self::State) -> (bool, Self::State) {
        let Some(s) = state else {
            // Unknown: whatever a completed op saw or swapped from was there.
            return match op {
                RegOp::Read(v) => (true, Some(*v)),
                RegOp::Write(v) | RegOp::Cas(_, v) => (true, Some(Some(*v))),
                RegOp::CasRefused(_) | RegOp::CasMaybe(..) => (true, None),
            };
        };
        let (ok, next) = match op {
            RegOp::Read(v) => (v == s, *s),
            RegOp::Write(v) => (true, Some(*v)),
            RegOp::Cas(e, n) if e == s => (true, Some(*n)),
            RegOp::Cas(..) => (false, *s),
            RegOp::CasRefused(e) => (e != s, *s),
            RegOp::CasMaybe(e, n) => (true, if e == s { Some(*n) } else { *s }),
        };
        (ok, Some(next))
    }
}

/// The operation the checker sees, or `None` for one that constrains nothing (a read that did
/// not return, a refusal before sending).
fn reg_op(op: &Op, ids: &mut HashMap<String, V>) -> Option<RegOp> {
    let mut id = |v: &Option<String>| {
        v.as_ref().map(|s| {
            let n = ids.len() as V;
            *ids.entry(s.clone()).or_insert(n)
        })
    };
    Some(match (&op.call, &op.outcome) {
        (Call::Read, Outcome::Ok(v)) => RegOp::Read(id(v)),
        (Call::Read, _) => return None,
        (Call::Write(_), Outcome::Fail { .. }) => return None,
        (Call::Write(v), _) => RegOp::Write(id(&Some(v.clone())).unwrap_or(0)),
        (Call::Cas(e, n), Outcome::Ok(_)) => RegOp::Cas(id(e), id(&Some(n.clone())).unwrap_or(0)),
        (Call::Cas(e, _), Outcome::Fail { conflict: true }) => RegOp::CasRefused(id(e)),
        (Call::Cas(..), Outcome::Fail { conflict: false }) => return None,
        (Call::Cas(e, n), Outcome::Info) => RegOp::CasMaybe(id(e), id(&Some(n.clone())).unwrap_or(0)),
    })
}

/// Whether these operations (one key's, on a key that starts absent) can be linearized.
pub fn linearizable(ops: &[&Op]) -> bool {
    search(ops, false)
}

fn search(ops: &[&Op], from_anywhere: bool) -> bool {
    let mut ids = HashMap::new();
    let checked: Vec<(&Op, RegOp)> = ops.iter().filter_map(|o| reg_op(o, &mut ids).map(|r| (*o, r))).collect();
    if checked.is_empty() {
        return true;
    }
    // (position, is_response, process, op): each op is its own process for the pairing, and
    // an info op's response comes after everything.
    let mut events: Vec<(u64, bool, usize, RegOp)> = Vec::with_capacity(checked.len() * 2);
    for (p, (op, r)) in checked.iter().enumerate() {
        events.push((op.invoke, false, p, r.clone()));
        let at = if op.outcome == Outcome::Info { u64::MAX } else { op.complete };
        events.push((at, true, p, r.clone()));
    }
    events.sort_by_key(|(at, resp, p, _)| (*at, *resp, *p));
    let actions = events
        .into_iter()
        .map(|(_, resp, p, r)| (p, if resp { Action::Response(r) } else { Action::Call(r) }))
        .collect();
    let history = History::from_actions(actions);
    match from_anywhere {
        false => WGLChecker::<Register<false>>::is_linearizable(history),
        true => WGLChecker::<Register<true>>::is_linearizable(history),
    }
}

/// One key's verdict.
#[derive(Debug, Clone)]
pub struct KeyVerdict {
    pub key: String,
    pub ops: usize,
    pub valid: bool,
    /// For a violation: operations that cannot be linearized together, in invocation order.
    pub window: Vec<Op>,
}

/// Checks one key's operations; for a violation, finds its window.
pub fn check_key(key: &str, ops: &[Op]) -> KeyVerdict {
    let all: Vec<&Op> = ops.iter().collect();
    let valid = linearizable(&all);
    let window = if valid { Vec::new() } else { window(ops) };
    KeyVerdict { key: key.to_string(), ops: ops.len(), valid, window }
}

/// The history cut at a completion: the ops invoked before it, those still running then
/// turned into `info` (reads among them dropped). If the whole history can be linearized, so
/// can every such cut (its completed ops are linearized before the cut, and the pending ones,
/// now "maybe", can all go last), so a cut that cannot be linearized proves the violation.
fn cut(ops: &[Op], at: u64) -> Vec<Op> {
    ops.iter().filter(|o| o.invoke < at).filter_map(|o| maybe_after(o, at)).collect()
}

/// `o` as seen from a cut at `at`: unchanged if it completed before, else `info` (or nothing
/// for a read).
fn maybe_after(o: &Op, at: u64) -> Option<Op> {
    if o.complete <= at {
        return Some(o.clone());
    }
    (o.call != Call::Read).then(|| Op { outcome: Outcome::Info, ..o.clone() })
}

/// The ops of `set` from `from` on: those that completed before are dropped, those running
/// then become `info`, and the register starts unknown. Any linearization of `set` restricted
/// to what is kept, with the ops running at `from` moved last, is one of this, so a trimmed
/// set that cannot be linearized still proves the violation.
fn trim(set: &[Op], from: u64) -> Vec<Op> {
    set.iter()
        // An info op may take effect at any time after its invocation: never dropped.
        .filter(|o| o.outcome == Outcome::Info || o.complete >= from)
        .filter_map(|o| if o.invoke >= from { Some(o.clone()) } else { maybe_after(o, o.invoke) })
        .collect()
}

fn bad(set: &[Op], from_anywhere: bool) -> bool {
    !search(&set.iter().collect::<Vec<_>>(), from_anywhere)
}

/// The first index of `points` at which `is_bad` holds, given that it then holds for every
/// later one (monotone), or `None`.
fn first_bad(points: &[u64], is_bad: impl Fn(u64) -> bool) -> Option<usize> {
    let (mut lo, mut hi) = (0, points.len());
    while lo < hi {
        let mid = (lo + hi) / 2;
        if is_bad(points[mid]) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    (hi < points.len()).then_some(hi)
}

/// The smallest cut that cannot be linearized, its front trimmed while it still cannot, then
/// reads and refusals dropped while it still cannot (removing an op that changes nothing cannot
/// make a valid set invalid, so what remains is still a proof). Bounded in time.
fn window(ops: &[Op]) -> Vec<Op> {
    let mut ends: Vec<u64> = ops.iter().filter(|o| o.outcome != Outcome::Info).map(|o| o.complete).collect();
    ends.sort_unstable();
    let Some(hi) = first_bad(&ends, |e| bad(&cut(ops, e), false)) else { return ops.to_vec() };
    let culprit = ends[hi];
    let whole = cut(ops, culprit);
    // The latest start (an invocation) that still fails: failing is monotone as the start
    // moves earlier.
    let mut starts: Vec<u64> = whole.iter().map(|o| o.invoke).collect();
    starts.sort_unstable_by(|a, b| b.cmp(a));
    let (mut set, anywhere) = match first_bad(&starts, |s| bad(&trim(&whole, s), true)) {
        Some(i) => (trim(&whole, starts[i]), true),
        None => (whole, false),
    };
    let deadline = Instant::now() + Duration::from_secs(2);
    let removable = |o: &Op| {
        o.complete != culprit
            && matches!((&o.call, &o.outcome), (Call::Read, _) | (Call::Cas(..), Outcome::Fail { .. }))
    };
    let mut chunk = set.iter().filter(|o| removable(o)).count().max(1);
    loop {
        let mut start = 0;
        loop {
            let candidates: Vec<usize> = (0..set.len()).filter(|&i| removable(&set[i])).collect();
            if start >= candidates.len() || Instant::now() >= deadline {
                break;
            }
            let drop = &candidates[start..(start + chunk).min(candidates.len())];
            let trial: Vec<Op> =
                set.iter().enumerate().filter(|(i, _)| !drop.contains(i)).map(|(_, o)| o.clone()).collect();
            if bad(&trial, anywhere) {
                set = trial;
            } else {
                start += chunk;
            }
        }
        if chunk == 1 || Instant::now() >= deadline {
            break;
        }
        chunk /= 2;
    }
    // Shown as they happened: an op weakened to `info` for the proof completed in fact, and
    // its real outcome only adds constraints, so the set stays one that cannot be linearized.
    let mut shown: Vec<Op> =
        set.iter().map(|w| ops.iter().find(|o| o.invoke == w.invoke).cloned().unwrap_or_else(|| w.clone())).collect();
    shown.sort_by_key(|o| o.invoke);
    shown
}

#[cfg(test)]
#[path = "linear_tests.rs"]
mod tests;
