//! Queues with at-least-once delivery. Owns the `queue_items`, `queue_ready` and
//! `queue_stats` tables. A popped item is in flight until acked; when its visibility timeout
//! (log time) passes, the deadline index brings it back here and it becomes ready again, to be
//! delivered with its delivery count raised. An acked item is deleted and never returns.
//!
//! It must not read a clock, and must not deduplicate deliveries: a consumer may see an item
//! twice (that is what at-least-once means), and acks by id make the second one harmless.

use super::tables::{dec, enc, Applied, Fatal, Sys, Timer, Q_STATS};
use crate::error::{Error, ErrorKind};
use crate::proto::{QueueItem, QueueStat, Response};
use redb::{ReadTransaction, ReadableTable};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
struct Item {
    item: String,
    deliveries: u64,
    /// Some while in flight: when it becomes ready again.
    visible_at: Option<u64>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Stats {
    next_id: u64,
    ready: u64,
    in_flight: u64,
    delivered: u64,
    redelivered: u64,
    acked: u64,
}

fn stats(sys: &Sys, queue: &str) -> Result<Stats, Fatal> {
    sys.q_stats.get(queue)?.map_or(Ok(Stats::default()), |v| dec(v.value()))
}

fn put_stats(sys: &mut Sys, queue: &str, s: &Stats) -> Result<(), Fatal> {
    sys.q_stats.insert(queue, enc(s).as_slice())?;
    Ok(())
}

fn item(sys: &Sys, queue: &str, id: u64) -> Result<Option<Item>, Fatal> {
    sys.q_items.get((queue, id))?.map(|v| dec(v.value())).transpose()
}

pub(in crate::node) fn push(sys: &mut Sys, queue: &str, text: &str) -> Result<Applied, Fatal> {
    let mut s = stats(sys, queue)?;
    s.next_id += 1;
    s.ready += 1;
    let id = s.next_id;
    let it = Item { item: text.to_string(), deliveries: 0, visible_at: None };
    sys.q_items.insert((queue, id), enc(&it).as_slice())?;
    sys.q_ready.insert((queue, id), ())?;
    put_stats(sys, queue, &s)?;
    Ok(Ok(Response::QueuePushed { id }))
}

pub(in crate::node) fn pop(sys: &mut Sys, queue: &str, visibility_ms: u64) -> Result<Applied, Fatal> {
    let first = sys.q_ready.range((queue, 0)..=(queue, u64::MAX))?.next().transpose()?.map(|(k, _)| k.value().1);
    let Some(id) = first else {
        return Ok(Ok(Response::QueueItem(None)));
    };
    sys.q_ready.remove((queue, id))?;
    let mut it =
        item(sys, queue, id)?.ok_or_else(|| redb::Error::Corrupted(format!("{queue}/{id} ready but absent")))?;
    let visible_at = sys.now.saturating_add(visibility_ms);
    it.deliveries += 1;
    it.visible_at = Some(visible_at);
    sys.q_items.insert((queue, id), enc(&it).as_slice())?;
    sys.reschedule(&Timer::Item(queue.to_string(), id), None, Some(visible_at))?;
    let mut s = stats(sys, queue)?;
    s.ready -= 1;
    s.in_flight += 1;
    s.delivered += 1;
    if it.deliveries > 1 {
        s.redelivered += 1;
    }
    put_stats(sys, queue, &s)?;
    Ok(Ok(Response::QueueItem(Some(QueueItem {
        id,
        item: it.item,
        deliveries: it.deliveries,
        visible_at_ms: visible_at,
    }))))
}

pub(in crate::node) fn ack(sys: &mut Sys, queue: &str, id: u64) -> Result<Applied, Fatal> {
    let Some(it) = item(sys, queue, id)? else {
        return Ok(Err(Error::new(ErrorKind::NotFound, format!("no item {id} in {queue} (already acked?)"))));
    };
    let mut s = stats(sys, queue)?;
    match it.visible_at {
        Some(at) => {
            sys.reschedule(&Timer::Item(queue.to_string(), id), Some(at), None)?;
            s.in_flight -= 1;
        }
        // Its visibility ran out but the slow consumer finished after all: the work is done.
        None => {
            sys.q_ready.remove((queue, id))?;
            s.ready -= 1;
        }
    }
    s.acked += 1;
    sys.q_items.remove((queue, id))?;
    put_stats(sys, queue, &s)?;
    Ok(Ok(Response::QueueAcked { id }))
}

/// Called when an in-flight item's visibility timeout is due: it becomes ready again.
pub(in crate::node) fn expire(sys: &mut Sys, queue: &str, id: u64) -> Result<(), Fatal> {
    let Some(mut it) = item(sys, queue, id)? else { return Ok(()) };
    if it.visible_at.is_none_or(|at| at > sys.now) {
        return Ok(());
    }
    sys.notes.push(("redelivery", format!("{queue} item {id} was not acked in time: ready again")));
    it.visible_at = None;
    sys.q_items.insert((queue, id), enc(&it).as_slice())?;
    sys.q_ready.insert((queue, id), ())?;
    let mut s = stats(sys, queue)?;
    s.in_flight -= 1;
    s.ready += 1;
    put_stats(sys, queue, &s)
}

pub(in crate::node) fn all_stats(tx: &ReadTransaction) -> Result<Vec<QueueStat>, Fatal> {
    let t = tx.open_table(Q_STATS)?;
    let mut out = Vec::new();
    for item in t.iter()? {
        let (k, v) = item?;
        let s: Stats = dec(v.value())?;
        out.push(QueueStat {
            queue: k.value().to_string(),
            ready: s.ready,
            in_flight: s.in_flight,
            delivered: s.delivered,
            redelivered: s.redelivered,
            acked: s.acked,
        });
    }
    Ok(out)
}
