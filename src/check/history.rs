//! A recorded history of key-value operations: what each client invoked, when, and how it
//! ended (`ok`, `fail` when it certainly had no effect, `info` when it may have), written and
//! read as Jepsen-style JSON lines. Plain data: no I/O beyond the file, no cluster.

use crate::error::{Error, Result};
use serde_json::{json, Value};
use std::collections::HashMap;

/// What a client asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    Read,
    Write(String),
    /// Compare-and-swap: `expected` (`None`: absent) to `new`.
    Cas(Option<String>, String),
}

/// How an operation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Done; a read carries what it saw.
    Ok(Option<String>),
    /// Certainly had no effect. `conflict` is a cas whose expected value was not there (a
    /// claim about the state the checker can use); other refusals only say "nothing happened".
    Fail { conflict: bool },
    /// May or may not have taken effect (timed out, unreachable after sending).
    Info,
}

/// One operation from invocation to completion. `invoke` and `complete` are positions in one
/// total order of events shared by every client (real time), `*_us` the wall times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Op {
    pub process: u64,
    pub key: String,
    pub call: Call,
    pub outcome: Outcome,
    pub invoke: u64,
    pub complete: u64,
    pub invoke_us: u64,
    pub complete_us: u64,
}

impl Op {
    pub fn f(&self) -> &'static str {
        match self.call {
            Call::Read => "read",
            Call::Write(_) => "write",
            Call::Cas(..) => "cas",
        }
    }

    pub fn outcome_name(&self) -> &'static str {
        match self.outcome {
            Outcome::Ok(_) => "ok",
            Outcome::Fail { .. } => "fail",
            Outcome::Info => "info",
        }
    }

    fn invoke_value(&self) -> Value {
        match &self.call {
            Call::Read => Value::Null,
            Call::Write(v) => json!(v),
            Call::Cas(e, n) => json!([e, n]),
        }
    }

    /// What the op is, as a person reads it: `write 3-7`, `cas 3-7→4-1`, `read → 3-7`.
    pub fn describe(&self) -> String {
        let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "∅".into());
        match (&self.call, &self.outcome) {
            (Call::Read, Outcome::Ok(v)) => format!("read → {}", show(v)),
            (Call::Read, _) => "read".into(),
            (Call::Write(v), _) => format!("write {v}"),
            (Call::Cas(e, n), _) => format!("cas {}→{n}", show(e)),
        }
    }

    /// The two JSON lines of this op: its invocation and its completion.
    pub fn to_lines(&self) -> [Value; 2] {
        let invoke = json!({"type": "invoke", "process": self.process, "f": self.f(), "key": self.key,
            "value": self.invoke_value(), "time": self.invoke_us * 1000, "index": self.invoke});
        let value = match (&self.call, &self.outcome) {
            (Call::Read, Outcome::Ok(v)) => json!(v),
            _ => self.invoke_value(),
        };
        let mut done = json!({"type": self.outcome_name(), "process": self.process, "f": self.f(), "key": self.key,
            "value": value, "time": self.complete_us * 1000, "index": self.complete});
        if let Outcome::Fail { conflict: true } = self.outcome {
            done["error"] = json!("conflict");
        }
        [invoke, done]
    }
}

/// The whole history as JSON lines, events in index order.
pub fn to_jsonl(ops: &[Op]) -> String {
    let mut lines: Vec<(u64, String)> = Vec::with_capacity(ops.len() * 2);
    for op in ops {
        let [i, c] = op.to_lines();
        lines.push((op.invoke, i.to_string()));
        lines.push((op.complete, c.to_string()));
    }
    lines.sort_by_key(|(i, _)| *i);
    lines.into_iter().map(|(_, l)| l + "\n").collect()
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// Reads JSON lines back into ops: each completion is paired with its process's open
/// invocation; an invocation never completed counts as `info`, as Jepsen reads it.
pub fn from_jsonl(src: &str) -> Result<Vec<Op>> {
    let mut open: HashMap<u64, (Value, u64, u64)> = HashMap::new();
    let mut ops = Vec::new();
    let mut last = 0;
    for (n, line) in src.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let bad = |what: &str| Error::usage(format!("history line {}: {what}", n + 1));
        let e: Value = serde_json::from_str(line).map_err(|e| bad(&e.to_string()))?;
        // Jepsen's own nemesis writes lines for process `nemesis`: they are no operation.
        if e["process"].as_str() == Some("nemesis") {
            continue;
        }
        let process = e["process"].as_u64().ok_or_else(|| bad("no numeric `process`"))?;
        let index = e["index"].as_u64().unwrap_or(n as u64);
        let time_us = e["time"].as_u64().unwrap_or(0) / 1000;
        last = last.max(index);
        match e["type"].as_str() {
            Some("invoke") => {
                if open.insert(process, (e, index, time_us)).is_some() {
                    return Err(bad("a process invoked twice without completing"));
                }
            }
            Some(kind @ ("ok" | "fail" | "info")) => {
                let (inv, invoke, invoke_us) =
                    open.remove(&process).ok_or_else(|| bad("completion with no invocation"))?;
                ops.push(op_of(&inv, &e, kind, invoke, index, invoke_us, time_us).map_err(|m| bad(&m))?);
            }
            _ => return Err(bad("`type` must be invoke, ok, fail or info")),
        }
    }
    for (process, (inv, invoke, invoke_us)) in open {
        let info = json!({"type": "info", "process": process});
        ops.push(op_of(&inv, &info, "info", invoke, last + 1, invoke_us, u64::MAX / 1000).map_err(Error::usage)?);
    }
    ops.sort_by_key(|o| o.invoke);
    Ok(ops)
}

fn op_of(
    inv: &Value,
    done: &Value,
    kind: &str,
    invoke: u64,
    complete: u64,
    invoke_us: u64,
    complete_us: u64,
) -> std::result::Result<Op, String> {
    let key = text(&inv["key"]).unwrap_or_default();
    let call = match inv["f"].as_str() {
        Some("read") => Call::Read,
        Some("write") => Call::Write(text(&inv["value"]).ok_or("a write without a value")?),
        Some("cas") => {
            let pair = inv["value"].as_array().filter(|a| a.len() == 2).ok_or("a cas value must be [expected, new]")?;
            Call::Cas(text(&pair[0]), text(&pair[1]).ok_or("a cas without a new value")?)
        }
        other => return Err(format!("unknown f {other:?}")),
    };
    let outcome = match kind {
        "ok" => Outcome::Ok(if call == Call::Read { text(&done["value"]) } else { None }),
        "fail" => Outcome::Fail { conflict: done["error"].as_str() == Some("conflict") },
        _ => Outcome::Info,
    };
    let process = inv["process"].as_u64().unwrap_or(0);
    Ok(Op { process, key, call, outcome, invoke, complete, invoke_us, complete_us })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(process: u64, call: Call, outcome: Outcome, invoke: u64, complete: u64) -> Op {
        Op { process, key: "k".into(), call, outcome, invoke, complete, invoke_us: invoke, complete_us: complete }
    }

    #[test]
    fn jsonl_round_trips_every_kind_of_op() {
        let ops = vec![
            op(0, Call::Write("a".into()), Outcome::Ok(None), 0, 1),
            op(1, Call::Read, Outcome::Ok(Some("a".into())), 2, 5),
            op(2, Call::Cas(Some("a".into()), "b".into()), Outcome::Fail { conflict: true }, 3, 4),
            op(3, Call::Read, Outcome::Ok(None), 6, 7),
            op(4, Call::Cas(None, "c".into()), Outcome::Info, 8, 9),
        ];
        assert_eq!(from_jsonl(&to_jsonl(&ops)).unwrap(), ops);
    }

    #[test]
    fn nemesis_lines_are_skipped_and_bad_lines_are_located() {
        let src = "{\"type\":\"info\",\"process\":\"nemesis\",\"f\":\"start\"}\n{\"type\":\"ok\",\"process\":1}";
        let e = from_jsonl(src).unwrap_err();
        assert!(e.message.contains("line 2") && e.message.contains("no invocation"), "{e}");
    }

    #[test]
    fn an_invocation_never_completed_reads_back_as_info() {
        let src = r#"{"type":"invoke","process":3,"f":"write","key":"k","value":"x","time":1000,"index":0}"#;
        let ops = from_jsonl(src).unwrap();
        assert_eq!(ops[0].outcome, Outcome::Info);
        assert_eq!(ops[0].call, Call::Write("x".into()));
    }
}
