//! Size limits that nodes and clients agree on: how long a key may be, the value cap a node is
//! started with, the largest cap it may be given, and what an operation weighs in a log entry.
//! Checking a write here, before it reaches the proposer, is what keeps every log entry small
//! enough to replicate. Pure functions: no I/O, and nothing here knows which side calls it.

use super::command::Op;
use super::frame::MAX_FRAME;
use super::message::Request;
use crate::error::{Error, Result};

/// The value cap a node has unless started with `--max-value`.
pub const DEFAULT_MAX_VALUE: usize = 1 << 20;
/// The largest `--max-value`: one operation carrying two values (a `cas`) and its keys must fit
/// one log entry, and that entry alone one AppendEntries frame, with room to spare.
pub const MAX_VALUE_LIMIT: usize = MAX_FRAME / 4;
/// Keys, and the names of locks, queues and chat senders.
pub const MAX_KEY: usize = 4096;
/// What an operation costs beyond its strings once encoded (variant and field names, integers).
const OP_OVERHEAD: usize = 64;

/// Validates a `--max-value` setting.
pub fn check_cap(cap: usize) -> Result<usize> {
    if cap == 0 || cap > MAX_VALUE_LIMIT {
        return Err(Error::usage(format!("--max-value must be between 1 and {MAX_VALUE_LIMIT} bytes, not {cap}")));
    }
    Ok(cap)
}

/// Refuses an operation whose key or value is over the limits, naming the limit.
pub fn check_op(op: &Op, max_value: usize) -> Result<()> {
    let (names, values) = op_fields(op);
    check(&names, &values, max_value)
}

/// Refuses a request that carries a key or value over the limits. Requests that write nothing
/// are only held to the frame cap.
pub fn check_request(req: &Request, max_value: usize) -> Result<()> {
    let (names, values) = request_fields(req);
    check(&names, &values, max_value)
}

/// Roughly how many bytes an operation adds to an encoded log entry (never much less).
pub fn op_bytes(op: &Op) -> usize {
    let (names, values) = op_fields(op);
    OP_OVERHEAD + names.iter().chain(&values).map(|s| s.len()).sum::<usize>()
}

fn check(names: &[&str], values: &[&str], max_value: usize) -> Result<()> {
    if let Some(n) = names.iter().find(|n| n.len() > MAX_KEY) {
        return Err(Error::denied(format!("a key of {} bytes is over the {MAX_KEY}-byte cap", n.len())));
    }
    if let Some(v) = values.iter().find(|v| v.len() > max_value) {
        return Err(Error::denied(format!(
            "a value of {} bytes is over the {max_value}-byte cap (set by `dsh node --max-value`)",
            v.len()
        )));
    }
    Ok(())
}

type Fields<'a> = (Vec<&'a str>, Vec<&'a str>);

fn op_fields(op: &Op) -> Fields<'_> {
    match op {
        Op::Put { key, value } => (vec![key], vec![value]),
        Op::Del { key } => (vec![key], vec![]),
        Op::Cas { key, expected, new } => {
            (vec![key], expected.iter().map(String::as_str).chain([new.as_str()]).collect())
        }
        Op::ChatSend { from, text, .. } => (vec![from], vec![text]),
        Op::LockAcquire { name, owner, .. } | Op::LockRelease { name, owner } => (vec![name, owner], vec![]),
        Op::QueuePush { queue, item } => (vec![queue], vec![item]),
        Op::QueuePop { queue, .. } | Op::QueueAck { queue, .. } => (vec![queue], vec![]),
        Op::Tick => (vec![], vec![]),
    }
}

fn request_fields(req: &Request) -> Fields<'_> {
    match req {
        Request::Put { key, value } | Request::CachePut { key, value, .. } => (vec![key], vec![value]),
        Request::Del { key } | Request::Corrupt { key } => (vec![key], vec![]),
        Request::Cas { key, expected, new } => {
            (vec![key], expected.iter().map(String::as_str).chain([new.as_str()]).collect())
        }
        Request::ChatSend { from, text, .. } => (vec![from], vec![text]),
        Request::LockAcquire { name, owner, .. } | Request::LockRelease { name, owner } => (vec![name, owner], vec![]),
        Request::QueuePush { queue, item } => (vec![queue], vec![item]),
        Request::QueuePop { queue, .. } | Request::QueueAck { queue, .. } => (vec![queue], vec![]),
        Request::Repair { set, remove } => (
            set.iter().map(|kv| kv.key.as_str()).chain(remove.iter().map(String::as_str)).collect(),
            set.iter().map(|kv| kv.value.as_str()).collect(),
        ),
        _ => (vec![], vec![]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_keys_over_their_caps_are_denied_naming_the_cap() {
        let put = |k: usize, v: usize| Op::Put { key: "k".repeat(k), value: "v".repeat(v) };
        assert!(check_op(&put(10, 1000), 1000).is_ok());
        let e = check_op(&put(10, 1001), 1000).unwrap_err();
        assert_eq!(e.kind, crate::error::ErrorKind::Denied);
        assert!(e.message.contains("1000-byte cap"), "{e}");
        let e = check_op(&put(MAX_KEY + 1, 1), 1000).unwrap_err();
        assert!(e.message.contains(&format!("{MAX_KEY}-byte cap")), "{e}");

        let cas = Op::Cas { key: "k".into(), expected: Some("x".repeat(11)), new: "y".into() };
        assert!(check_op(&cas, 10).is_err(), "the expected value counts too");
        let req = Request::QueuePush { queue: "q".into(), item: "i".repeat(11) };
        assert!(check_request(&req, 10).is_err());
        assert!(check_request(&Request::Get { key: "k".repeat(MAX_KEY + 1), stale: true }, 10).is_ok());
    }

    #[test]
    fn an_operation_weighs_at_least_its_strings() {
        let op = Op::ChatSend { id: 1, from: "ann".into(), text: "x".repeat(5000) };
        let encoded = crate::proto::encode(&op).unwrap().len();
        assert!(op_bytes(&op) >= encoded, "{} < {encoded}", op_bytes(&op));
        assert!(op_bytes(&op) < encoded + 100);
    }

    #[test]
    fn the_largest_cap_leaves_a_cas_room_in_one_frame() {
        assert!(check_cap(0).is_err());
        assert!(check_cap(MAX_VALUE_LIMIT + 1).is_err());
        let v = "v".repeat(MAX_VALUE_LIMIT);
        let op = Op::Cas { key: "k".repeat(MAX_KEY), expected: Some(v.clone()), new: v };
        assert!(op_bytes(&op) < MAX_FRAME * 3 / 4, "{} bytes", op_bytes(&op));
    }
}
