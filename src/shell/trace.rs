//! `--trace` on a write (SPEC §9): the `Trace` a write brought back, as a table of stages for
//! people and a `trace` object for `--json` and Rhai. Both come from one list of rows, so they
//! always name the same stages in the same order: each with the time it ended, in ms since the
//! leader received the request, and how long it took.

use super::output::{table, Output, Style};
use crate::proto::{node_name, Trace};
use serde_json::{json, Value};

/// One stage: `at_us` when it ended (leader's clock, since it received the request), `us` how
/// long it took; either is missing when the nodes did not see it (see `proto/trace.rs`).
#[derive(Debug, Clone, PartialEq)]
struct Row {
    stage: String,
    span: String,
    at_us: Option<u64>,
    us: Option<u64>,
}

fn row(stage: impl Into<String>, span: impl Into<String>, at_us: Option<u64>, us: Option<u64>) -> Row {
    Row { stage: stage.into(), span: span.into(), at_us, us }
}

/// `to − from` when both were seen.
fn between(from: Option<u64>, to: Option<u64>) -> Option<u64> {
    Some(to?.saturating_sub(from?))
}

fn rows(t: &Trace) -> Vec<Row> {
    let (took, leader) = (node_name(t.took), node_name(t.leader));
    let mut rows = vec![row("network", format!("client ↔ {took}, both ways"), None, t.network_us())];
    if let Some(us) = t.forward_us() {
        rows.push(row("forward", format!("{took} ↔ leader {leader}, both ways"), None, Some(us)));
    }
    let proposed = Some(t.proposed_us);
    rows.push(row("proposer", format!("{leader} received → handed to Raft"), proposed, proposed));
    rows.push(row("append", "Raft core → log writer", t.appended_us, between(proposed, t.appended_us)));
    rows.push(row("fsync", "log writer → durable on the leader", t.flushed_us, between(t.appended_us, t.flushed_us)));
    for a in &t.acks {
        let span = format!("leader durable → {} acknowledged", node_name(a.node));
        rows.push(row(format!("ack {}", node_name(a.node)), span, Some(a.at_us), between(t.flushed_us, Some(a.at_us))));
    }
    rows.push(row(
        "commit",
        "leader durable → a majority holds it",
        t.committed_us,
        between(t.flushed_us, t.committed_us),
    ));
    rows.push(row("apply", "committed → applied", t.applied_us, between(t.committed_us, t.applied_us)));
    let replied = Some(t.replied_us);
    rows.push(row("reply", "applied → answer ready", replied, between(t.applied_us, replied)));
    rows.push(row("total", "as the client saw it", None, t.total_us()));
    rows
}

fn ms(us: Option<u64>) -> Value {
    us.map_or(Value::Null, |us| json!((us as f64) / 1000.0))
}

fn cell(us: Option<u64>) -> String {
    us.map_or("–".into(), |us| format!("{:.3}", us as f64 / 1000.0))
}

/// The `trace` field: who took the write, who led, where it landed, and the stages in order.
pub fn to_json(t: &Trace) -> Value {
    let stages: Vec<Value> = rows(t)
        .into_iter()
        .map(|r| json!({"stage": r.stage, "span": r.span, "at_ms": ms(r.at_us), "ms": ms(r.us)}))
        .collect();
    let acks: Vec<Value> =
        t.acks.iter().map(|a| json!({"node": node_name(a.node), "at_ms": ms(Some(a.at_us))})).collect();
    json!({
        "took": node_name(t.took),
        "leader": node_name(t.leader),
        "term": t.term,
        "index": t.index,
        "stages": stages,
        "acks": acks,
        "total_ms": ms(t.total_us()),
        "held_ms": ms(Some(t.hold_us)),
    })
}

/// The trace as people read it: a heading line, then one table row per stage.
pub fn to_text(t: &Trace, style: Style) -> String {
    let head = format!(
        "took {}, leader {}, term {}, log index {} (ms since the leader received it)",
        node_name(t.took),
        node_name(t.leader),
        t.term,
        t.index
    );
    let cells = rows(t).into_iter().map(|r| vec![r.stage, r.span, cell(r.at_us), cell(r.us)]).collect();
    format!("{head}\n{}", table(style, &["stage", "from → to", "at ms", "took ms"], cells))
}

/// Adds a write's trace, when it brought one, to its result.
pub fn attach(out: Output, trace: Option<&Trace>, style: Style) -> Output {
    match trace {
        Some(t) => {
            let text = format!("{}\n{}", out.text, to_text(t, style));
            out.field("trace", to_json(t)).text(text)
        }
        None => out,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::TraceAck;

    fn sample() -> Trace {
        Trace {
            took: 2,
            leader: 1,
            term: 3,
            index: 42,
            proposed_us: 20,
            appended_us: Some(50),
            flushed_us: Some(300),
            acks: vec![TraceAck { node: 2, at_us: 420 }, TraceAck { node: 3, at_us: 700 }],
            committed_us: Some(430),
            applied_us: None,
            replied_us: 500,
            node_us: 650,
            hold_us: 210,
            client_us: Some(1000),
        }
    }

    #[test]
    fn stages_come_in_order_with_durations_between_stamps() {
        let r = rows(&sample());
        let names: Vec<&str> = r.iter().map(|r| r.stage.as_str()).collect();
        let order =
            ["network", "forward", "proposer", "append", "fsync", "ack n2", "ack n3", "commit", "apply", "reply"];
        assert_eq!(names[..10], order);
        assert_eq!(names[10], "total");
        let took = |name: &str| r.iter().find(|r| r.stage == name).unwrap().us;
        // 1000 µs at the client, 650 on n2 and 210 held for n3's ack: 140 on the wire.
        assert_eq!(took("network"), Some(140));
        assert_eq!(took("forward"), Some(150), "n2 spent 650 µs, the leader 500 of them");
        assert_eq!(took("fsync"), Some(250));
        assert_eq!(took("ack n2"), Some(120));
        assert_eq!(took("commit"), Some(130));
        assert_eq!(took("apply"), None, "no apply stamp, so no duration either side of it");
        assert_eq!(took("reply"), None);
        assert_eq!(took("total"), Some(790), "the hold for n3 is not the client's cost");
    }

    #[test]
    fn json_and_table_show_the_same_trace() {
        let t = sample();
        let j = to_json(&t);
        assert_eq!((j["took"].as_str(), j["leader"].as_str()), (Some("n2"), Some("n1")));
        assert_eq!((j["term"].as_u64(), j["index"].as_u64()), (Some(3), Some(42)));
        assert_eq!(j["stages"][4]["stage"], "fsync");
        assert_eq!(j["stages"][4]["at_ms"], 0.3);
        assert_eq!(j["stages"][4]["ms"], 0.25);
        assert_eq!(j["acks"][1], json!({"node": "n3", "at_ms": 0.7}));
        assert!(j["stages"][8]["ms"].is_null(), "apply unseen: null, not zero");

        let text = to_text(&t, Style::Plain);
        assert!(text.starts_with("took n2, leader n1, term 3, log index 42"), "{text}");
        for needle in ["fsync", "0.300", "0.250", "ack n3", "0.700", "total", "0.790", "–"] {
            assert!(text.contains(needle), "{needle} missing from\n{text}");
        }

        let out = attach(Output::new("put").text("OK revision=7 node=n2"), Some(&t), Style::Plain);
        assert!(out.text.starts_with("OK revision=7 node=n2\ntook n2"), "{}", out.text);
        assert_eq!(out.fields["trace"], j);
        assert!(!attach(Output::new("put"), None, Style::Plain).fields.contains_key("trace"));
    }
}
