//! Following what happens in the cluster: every node's event record, merged in time order. Each
//! node is long-polled on its own task; a node that stops answering (crashed, paused, cut off
//! from us) shows up as a `down` event of our own, and as `up` when it answers again. A node
//! that restarted starts a new record, which is followed from its beginning. The tasks belong
//! to the `EventFeed` and stop when it is dropped. This module hands out events; it never
//! prints them.

use super::{Client, Target};
use crate::error::{Error, Result};
use crate::proto::{wall_ms, Event, NodeId, Request, Response};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// How long a node holds a poll open when nothing happens.
const POLL_WAIT: Duration = Duration::from_millis(1000);
/// How long an event waits for events from other nodes that happened before it but are still
/// on their way, so that they come out in the order they happened. 250 ms was not enough on a
/// busy 2-core machine: during an election one node's long poll came back more than 250 ms
/// after another's, and two "started an election" lines printed out of order (CI, events.rs).
const SETTLE: Duration = Duration::from_millis(500);

pub struct EventFeed {
    rx: mpsc::Receiver<Event>,
    /// Events not handed out yet, by time and then arrival, with the wall time they are due.
    held: BTreeMap<(u64, u64), (Event, u64)>,
    arrived: u64,
    _tasks: JoinSet<()>,
}

impl EventFeed {
    /// Starts following every node. With `history`, what nodes recorded before now comes first.
    pub fn start(client: Arc<Client>, history: bool) -> Self {
        let (tx, rx) = mpsc::channel(1024);
        let mut tasks = JoinSet::new();
        for id in client.node_ids() {
            tasks.spawn(follow_node(client.clone(), id, history, tx.clone()));
        }
        EventFeed { rx, held: BTreeMap::new(), arrived: 0, _tasks: tasks }
    }

    /// The next event in time order: each is held until `SETTLE` after it happened (or arrived,
    /// if a node's clock runs ahead of ours), and handed out earliest first. An event arriving
    /// later than that still comes out, as soon as it arrives.
    pub async fn next(&mut self) -> Option<Event> {
        loop {
            let now = wall_ms();
            let due = match self.held.first_key_value() {
                Some((_, (_, due))) if *due <= now => return self.held.pop_first().map(|(_, (e, _))| e),
                Some((_, (_, due))) => Some(*due),
                None => None,
            };
            let wait = due.map_or(Duration::from_secs(3600), |d| Duration::from_millis(d - now));
            tokio::select! {
                e = self.rx.recv() => match e {
                    Some(e) => self.hold(e, now),
                    None => return self.held.pop_first().map(|(_, (e, _))| e),
                },
                _ = tokio::time::sleep(wait), if due.is_some() => {}
            }
        }
    }

    fn hold(&mut self, e: Event, now: u64) {
        self.arrived += 1;
        let due = e.at_ms.min(now) + SETTLE.as_millis() as u64;
        self.held.insert((e.at_ms, self.arrived), (e, due));
    }
}

fn stopped(e: &Error) -> String {
    match e.kind {
        crate::error::ErrorKind::Unreachable | crate::error::ErrorKind::Timeout => "stopped answering".into(),
        _ => format!("stopped answering: {e}"),
    }
}

fn observed(node: NodeId, kind: &str, text: String) -> Event {
    Event { seq: 0, at_ms: wall_ms(), node, kind: kind.into(), text }
}

async fn poll(client: &Client, id: NodeId, after: u64, wait: Duration) -> Result<(u64, Vec<Event>)> {
    let request = Request::Events { after, wait_ms: wait.as_millis() as u32 };
    match client.call_within(Target::Node(id), request, wait + Duration::from_millis(500)).await?.value {
        Response::Events { boot_ms, events } => Ok((boot_ms, events)),
        other => Err(Error::internal(format!("unexpected reply {other:?}"))),
    }
}

async fn follow_node(client: Arc<Client>, id: NodeId, history: bool, tx: mpsc::Sender<Event>) {
    let (mut after, mut boot, mut up) = (0, None, None);
    // The news that a silent node answers again waits for what the node recorded meanwhile (a
    // restarted node's recovery), so that both go out in the order they happened.
    let mut back: Option<Event> = None;
    let mut wait = POLL_WAIT;
    loop {
        match poll(&client, id, after, wait).await {
            Ok((boot_ms, events)) => {
                wait = POLL_WAIT;
                if up == Some(false) && back.is_none() {
                    let restarted = boot.is_some_and(|b| b != boot_ms);
                    let text = if restarted { "restarted: answers again" } else { "answers again" };
                    back = Some(observed(id, "up", text.into()));
                }
                if boot != Some(boot_ms) {
                    // First contact skips the past unless asked for. A restarted node numbers
                    // from 1 again and answered only what came after our old position, so it
                    // is asked again, at once, for its whole record.
                    let skip = boot.is_none() && !history;
                    let asked_from = after;
                    after = if skip { events.last().map_or(0, |e| e.seq) } else { 0 };
                    boot = Some(boot_ms);
                    if skip || asked_from > 0 {
                        wait = Duration::ZERO;
                        continue;
                    }
                }
                let from = after;
                let mut batch: Vec<Event> = events.into_iter().filter(|e| e.seq > from).collect();
                after = batch.last().map_or(after, |e| e.seq);
                batch.extend(back.take());
                up = Some(true);
                batch.sort_by_key(|e| e.at_ms);
                for e in batch {
                    if tx.send(e).await.is_err() {
                        return;
                    }
                }
            }
            Err(e) => {
                // Answered once and went silent again before that was told: it never came back.
                back = None;
                if up != Some(false) && tx.send(observed(id, "down", stopped(&e))).await.is_err() {
                    return;
                }
                up = Some(false);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// The last `n` events the nodes that answer have recorded, oldest first.
pub async fn recent(client: &Client, n: usize) -> Vec<Event> {
    let polls = client.node_ids().into_iter().map(|id| poll(client, id, 0, Duration::ZERO));
    let mut all: Vec<Event> =
        futures::future::join_all(polls).await.into_iter().flatten().flat_map(|(_, events)| events).collect();
    all.sort_by_key(|e| (e.at_ms, e.node, e.seq));
    let skip = all.len().saturating_sub(n);
    all.split_off(skip)
}
