//! From a log operation to the system that owns it, and the expiry of whatever fell due by the
//! entry's log time. Keys are not handled here (see `state_machine`).

use super::tables::{Applied, Fatal, Sys, Timer};
use super::{chat, locks, once, queues};
use crate::proto::{Op, Response};

/// Whether applying `op` needs the systems' tables (`Once` does, for its record of ids).
pub(in crate::node) fn is_system(op: &Op) -> bool {
    !matches!(op, Op::Put { .. } | Op::Del { .. } | Op::Cas { .. })
}

/// Moves log time to the entry's `at_ms` and expires leases, waits and visibility timeouts
/// that are due by then, and request ids of clients idle too long, before the entry's own
/// operations see the state.
pub(in crate::node) fn begin_entry(sys: &mut Sys, at_ms: u64) -> Result<(), Fatal> {
    for timer in sys.advance(at_ms)? {
        match timer {
            Timer::Lock(name) => locks::expire(sys, &name)?,
            Timer::Item(queue, id) => queues::expire(sys, &queue, id)?,
        }
    }
    once::expire(sys)
}

pub(in crate::node) fn apply_op(sys: &mut Sys, op: &Op) -> Result<Applied, Fatal> {
    match op {
        Op::ChatSend { id, from, text } => chat::send(sys, *id, from, text),
        Op::LockAcquire { name, owner, shared, ttl_ms, wait_ms } => {
            locks::acquire(sys, name, owner, *shared, *ttl_ms, *wait_ms)
        }
        Op::LockRelease { name, owner } => locks::release(sys, name, owner),
        Op::QueuePush { queue, item } => queues::push(sys, queue, item),
        Op::QueuePop { queue, visibility_ms } => queues::pop(sys, queue, *visibility_ms),
        Op::QueueAck { queue, id } => queues::ack(sys, queue, *id),
        Op::Tick => Ok(Ok(Response::Ticked)),
        // Keys are the state machine's; `Once` wraps either kind, so it unwraps there.
        Op::Put { .. } | Op::Del { .. } | Op::Cas { .. } | Op::Once { .. } => {
            Err(redb::Error::Corrupted(format!("{op:?} reached the systems")))
        }
    }
}
