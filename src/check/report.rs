//! A checked run as data (the `--json` shape of SPEC §8) and a violation's window as a
//! per-client timeline. Formatting only: the shell decides where it goes.

use super::history::Op;
use super::kv::KvRun;
use super::linear::KeyVerdict;
use serde_json::{json, Value};

fn op_json(o: &Op) -> Value {
    json!({"process": o.process, "f": o.f(), "op": o.describe(), "type": o.outcome_name(),
        "invoke_ms": o.invoke_us as f64 / 1000.0, "complete_ms": o.complete_us as f64 / 1000.0,
        "index": o.invoke})
}

pub fn key_json(k: &KeyVerdict) -> Value {
    json!({"key": k.key, "ops": k.ops, "valid": k.valid,
        "window": if k.valid { Value::Null } else { Value::Array(k.window.iter().map(op_json).collect()) }})
}

/// `valid`, `ops`, `outcomes`, `by_kind`, `faults`, `keys`, latencies and rate.
pub fn kv_json(r: &KvRun) -> Value {
    let counts = |(ok, fail, info): (usize, usize, usize)| json!({"ok": ok, "fail": fail, "info": info});
    let (p50, p99, max) = r.latency_ms();
    let secs = r.elapsed.as_secs_f64().max(1e-9);
    json!({
        "valid": r.valid(),
        "ops": r.ops.len(),
        "outcomes": counts(r.outcomes(None)),
        "by_kind": {"read": counts(r.outcomes(Some("read"))), "write": counts(r.outcomes(Some("write"))),
            "cas": counts(r.outcomes(Some("cas")))},
        "faults": r.faults.iter().map(|f| f.to_json()).collect::<Vec<_>>(),
        "keys": r.keys.iter().map(key_json).collect::<Vec<_>>(),
        "ops_per_sec": (r.ops.len() as f64 / secs * 10.0).round() / 10.0,
        "p50_ms": p50, "p99_ms": p99, "max_ms": max,
        "duration_ms": r.elapsed.as_millis() as u64,
        "interrupted": r.interrupted,
    })
}

/// The window as one row per client, a bar per op on a common time axis:
///
/// ```text
///   p3   |====write 3-7=====|              ok
///   p1              |=read → 1-2=|         ok
/// ```
pub fn timeline(window: &[Op], width: usize) -> String {
    if window.is_empty() {
        return String::new();
    }
    let t0 = window.iter().map(|o| o.invoke_us).min().unwrap_or(0);
    // An info op's end is unknown: its bar runs to the end of the window.
    let end = |o: &Op| if o.outcome_name() == "info" { None } else { Some(o.complete_us) };
    let t1 = window.iter().filter_map(end).chain(window.iter().map(|o| o.invoke_us)).max().unwrap_or(t0).max(t0 + 1);
    let col = |t: u64| ((t.saturating_sub(t0)) as f64 / (t1 - t0) as f64 * (width - 1) as f64).round() as usize;
    let mut lines = vec![format!(
        "  {:<6}{:<w$}  outcome",
        "client",
        format!("0 … {:.1} ms", (t1 - t0) as f64 / 1000.0),
        w = width
    )];
    for o in window {
        let (a, b) = (col(o.invoke_us), end(o).map_or(width - 1, col).max(col(o.invoke_us)));
        let mut bar: Vec<char> = vec![' '; width];
        for c in bar.iter_mut().take(b + 1).skip(a) {
            *c = '=';
        }
        bar[a] = '|';
        bar[b] = if end(o).is_some() { '|' } else { '…' };
        let label: Vec<char> = format!(" {} ", o.describe()).chars().collect();
        if label.len() + 2 <= b.saturating_sub(a) {
            let start = a + 1 + (b - a - 1 - label.len()) / 2;
            bar[start..start + label.len()].copy_from_slice(&label);
        }
        let bar: String = bar.into_iter().collect();
        let after = if label.len() + 2 <= b.saturating_sub(a) { String::new() } else { format!("  {}", o.describe()) };
        lines.push(format!("  p{:<6}{bar}  {}{after}", o.process, o.outcome_name()));
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::history::{Call, Outcome};

    fn op(process: u64, call: Call, outcome: Outcome, from_ms: u64, to_ms: u64) -> Op {
        Op {
            process,
            key: "k".into(),
            call,
            outcome,
            invoke: from_ms,
            complete: to_ms,
            invoke_us: from_ms * 1000,
            complete_us: to_ms * 1000,
        }
    }

    #[test]
    fn the_timeline_has_a_row_per_op_in_time_order_with_its_client_and_outcome() {
        let window = [
            op(3, Call::Write("a".into()), Outcome::Ok(None), 0, 40),
            op(1, Call::Read, Outcome::Ok(Some("b".into())), 50, 60),
            op(7, Call::Write("b".into()), Outcome::Info, 10, 20),
        ];
        let t = timeline(&window, 40);
        let rows: Vec<&str> = t.lines().collect();
        assert_eq!(rows.len(), 4, "{t}");
        assert!(rows[0].contains("60.0 ms"), "{t}");
        assert!(
            rows[1].trim_start().starts_with("p3") && rows[1].contains("write a") && rows[1].ends_with("ok"),
            "{t}"
        );
        assert!(rows[2].contains("read → b"), "{t}");
        // An op in doubt runs to the end of the window.
        assert!(rows[3].contains('…') && rows[3].contains("info"), "{t}");
    }
}
