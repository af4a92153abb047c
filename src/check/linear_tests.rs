//! Hand-made histories (acceptance 2): violations found, tricky valid ones accepted.

use super::*;

/// `(process, call, outcome, invoke, complete)`, positions in one total order.
fn op(process: u64, call: Call, outcome: Outcome, invoke: u64, complete: u64) -> Op {
    Op { process, key: "k".into(), call, outcome, invoke, complete, invoke_us: invoke, complete_us: complete }
}

fn w(v: &str) -> Call {
    Call::Write(v.into())
}

fn ok() -> Outcome {
    Outcome::Ok(None)
}

fn saw(v: &str) -> Outcome {
    Outcome::Ok(Some(v.into()))
}

#[test]
fn a_read_of_a_value_never_written_is_caught() {
    let h = [op(0, w("a"), ok(), 0, 1), op(1, Call::Read, saw("zzz"), 2, 3)];
    let v = check_key("k", &h);
    assert!(!v.valid);
    assert!(v.window.iter().any(|o| o.describe() == "read → zzz"), "{:?}", v.window);
}

#[test]
fn a_read_of_an_old_value_after_a_completed_overwrite_is_caught() {
    let h = [
        op(0, w("a"), ok(), 0, 1),
        op(0, w("b"), ok(), 2, 3),
        op(2, Call::Read, saw("b"), 4, 5),
        op(1, Call::Read, saw("a"), 6, 7),
    ];
    let v = check_key("k", &h);
    assert!(!v.valid);
    // Two reads in a row, `b` then `a`, with no write in between: the smallest proof.
    let shown: Vec<String> = v.window.iter().map(Op::describe).collect();
    assert_eq!(shown, ["read → b", "read → a"]);
}

#[test]
fn a_cas_that_succeeded_against_a_value_that_was_gone_is_caught() {
    let h = [
        op(0, w("a"), ok(), 0, 1),
        op(0, w("b"), ok(), 2, 3),
        op(1, Call::Cas(Some("a".into()), "c".into()), ok(), 4, 5),
    ];
    assert!(!check_key("k", &h).valid);
}

#[test]
fn a_refused_cas_whose_value_was_there_is_caught() {
    let h = [
        op(0, w("a"), ok(), 0, 1),
        op(1, Call::Cas(Some("a".into()), "c".into()), Outcome::Fail { conflict: true }, 2, 3),
    ];
    assert!(!check_key("k", &h).valid);
}

#[test]
fn an_info_write_seen_later_is_valid() {
    let h = [
        op(0, w("a"), ok(), 0, 1),
        op(1, w("b"), Outcome::Info, 2, 3),
        op(2, Call::Read, saw("b"), 10, 11),
        op(2, Call::Read, saw("b"), 12, 13),
    ];
    assert!(check_key("k", &h).valid);
}

#[test]
fn an_info_write_never_seen_is_valid() {
    let h = [
        op(0, w("a"), ok(), 0, 1),
        op(1, w("b"), Outcome::Info, 2, 3),
        op(2, Call::Read, saw("a"), 10, 11),
        op(2, Call::Read, saw("a"), 12, 13),
    ];
    assert!(check_key("k", &h).valid);
}

#[test]
fn an_info_write_seen_then_unseen_is_caught() {
    let h = [
        op(0, w("a"), ok(), 0, 1),
        op(1, w("b"), Outcome::Info, 2, 3),
        op(2, Call::Read, saw("b"), 10, 11),
        op(2, Call::Read, saw("a"), 12, 13),
    ];
    assert!(!check_key("k", &h).valid);
}

#[test]
fn concurrent_writes_may_be_seen_in_either_order() {
    let h = [
        op(0, w("a"), ok(), 0, 10),
        op(1, w("b"), ok(), 1, 11),
        op(2, Call::Read, saw("b"), 2, 3),
        op(2, Call::Read, saw("a"), 4, 5),
    ];
    assert!(check_key("k", &h).valid);
}

#[test]
fn a_read_of_absent_before_any_write_is_valid() {
    let h = [op(0, Call::Read, Outcome::Ok(None), 0, 1), op(1, w("a"), ok(), 2, 3)];
    assert!(check_key("k", &h).valid);
}

#[test]
fn the_window_of_a_long_history_is_small() {
    let mut h = Vec::new();
    let mut t = 0;
    for i in 0..200 {
        h.push(op(0, w(&format!("v{i}")), ok(), t, t + 1));
        h.push(op(1, Call::Read, saw(&format!("v{i}")), t + 2, t + 3));
        t += 4;
    }
    h.push(op(1, Call::Read, saw("v3"), t, t + 1));
    let v = check_key("k", &h);
    assert!(!v.valid);
    assert!(v.window.len() < h.len() / 2, "window of {} ops", v.window.len());
    assert_eq!(v.window.last().unwrap().describe(), "read → v3");
}

/// A simulated register under 5 clients with a share of `info` writes (half of them applied):
/// thousands of ops are checked in seconds, not left to an exponential search.
#[test]
fn a_long_concurrent_history_with_info_writes_is_checked_quickly() {
    use crate::check::schedule::Rng;
    let mut rng = Rng::new(3);
    let (mut state, mut ops, mut t) = (None::<String>, Vec::new(), 0u64);
    let mut open: Vec<Option<(u64, Call, u64)>> = vec![None; 5];
    let mut n = 0;
    while ops.len() < 3000 {
        let p = rng.below(5) as usize;
        t += 1;
        match open[p].take() {
            None => {
                n += 1;
                let call = if rng.below(2) == 0 { Call::Read } else { w(&format!("v{n}")) };
                open[p] = Some((t, call, p as u64 + 5 * n));
            }
            Some((invoke, call, process)) => {
                // The op takes effect now, inside its interval.
                let info = matches!(call, Call::Write(_)) && rng.below(20) == 0;
                let outcome = match &call {
                    Call::Read => Outcome::Ok(state.clone()),
                    Call::Write(v) => {
                        if !info || rng.below(2) == 0 {
                            state = Some(v.clone());
                        }
                        if info {
                            Outcome::Info
                        } else {
                            ok()
                        }
                    }
                    Call::Cas(..) => unreachable!(),
                };
                ops.push(op(process, call, outcome, invoke, t));
            }
        }
    }
    let started = std::time::Instant::now();
    assert!(check_key("k", &ops).valid);
    assert!(started.elapsed() < std::time::Duration::from_secs(20), "took {:?}", started.elapsed());
}
