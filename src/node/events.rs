//! The node's record of what happened to it: elections, leader changes, snapshots, followers
//! falling behind and catching up, recovery, faults set on it, damage and repair. Kept in a
//! bounded ring in memory (a restarted node starts a new record, told apart by `boot_ms`) and
//! served to `events` by long poll. Raft-related events are derived by watching openraft's
//! metrics; this module only observes and never changes Raft state.

use super::types::Raft;
use crate::proto::{node_name, wall_ms, Event, NodeId};
use openraft::ServerState;
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::watch;

const KEEP: usize = 1000;
/// A follower this many entries behind the leader is behind, however briefly.
const FAR_BEHIND: u64 = 64;
/// A follower that acknowledges nothing for this long while entries wait for it is behind; a
/// live one acknowledges within a heartbeat (50 ms).
const BEHIND_FOR: Duration = Duration::from_millis(250);

pub struct Events {
    node: NodeId,
    pub boot_ms: u64,
    ring: Mutex<VecDeque<Event>>,
    /// The newest sequence number, for long polls to wait on.
    last: watch::Sender<u64>,
    /// Whether this node leads, so that what every node applies is told by one of them.
    leading: AtomicBool,
}

impl Events {
    pub fn new(node: NodeId) -> Self {
        Events {
            node,
            boot_ms: wall_ms(),
            ring: Mutex::default(),
            last: watch::Sender::new(0),
            leading: AtomicBool::new(false),
        }
    }

    pub fn leading(&self) -> bool {
        self.leading.load(Ordering::Relaxed)
    }

    pub fn push(&self, kind: &str, text: impl Into<String>) {
        let text = text.into();
        tracing::info!(kind, %text, "event");
        let mut ring = self.ring.lock().unwrap();
        let seq = ring.back().map_or(1, |e| e.seq + 1);
        ring.push_back(Event { seq, at_ms: wall_ms(), node: self.node, kind: kind.into(), text });
        if ring.len() > KEEP {
            ring.pop_front();
        }
        self.last.send_replace(seq);
    }

    /// Events after `after`, waiting up to `wait` for the first one if there are none yet.
    pub async fn after(&self, after: u64, wait: Duration) -> Vec<Event> {
        let mut rx = self.last.subscribe();
        let _ = tokio::time::timeout(wait, rx.wait_for(|&last| last > after)).await;
        self.ring.lock().unwrap().iter().filter(|e| e.seq > after).cloned().collect()
    }
}

/// Turns changes in openraft's metrics into events until `shutdown`.
pub async fn watch_raft(raft: Raft, events: std::sync::Arc<Events>, mut shutdown: watch::Receiver<bool>) {
    let mut rx = raft.metrics();
    let mut prev = rx.borrow().clone();
    let mut followers: BTreeMap<NodeId, Follower> = BTreeMap::new();
    // This node's last log index when it last became leader.
    let mut took_office: Option<u64> = None;
    loop {
        // The tick notices a follower that stalls while nothing else changes.
        tokio::select! {
            changed = rx.changed() => if changed.is_err() { return },
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            _ = shutdown.changed() => return,
        }
        let m = rx.borrow_and_update().clone();
        events.leading.store(m.state == ServerState::Leader, Ordering::Relaxed);
        if m.state != prev.state || m.current_term != prev.current_term {
            match m.state {
                ServerState::Candidate => {
                    events.push("election", format!("started an election for term {}", m.current_term))
                }
                ServerState::Leader if prev.state != ServerState::Leader => {
                    events.push("election", format!("won the election: leader of term {}", m.current_term))
                }
                _ => {}
            }
        }
        if m.current_leader != prev.current_leader && m.state != ServerState::Leader {
            if let Some(l) = m.current_leader {
                events.push("leader", format!("follows {} (term {})", node_name(l), m.current_term));
            }
        }
        if m.state == ServerState::Leader && prev.state != ServerState::Leader {
            followers.clear();
            took_office = m.last_log_index;
        }
        if m.snapshot != prev.snapshot {
            if let Some(s) = m.snapshot {
                events.push("snapshot", format!("snapshot at index {}", s.index));
            }
        }
        if let Some(repl) = &m.replication {
            let last = m.last_log_index.unwrap_or(0);
            // A new leader knows nothing of what a follower holds until it answers. Counting
            // that as nothing would call every current follower far behind after each
            // election; it is taken as holding what the leader held when it took office, so
            // only what it fails to acknowledge since then (a dead node's silence) counts.
            let took_office = took_office.unwrap_or(last);
            for (&id, matched) in repl.iter().filter(|(&id, _)| id != m.id) {
                let matched = matched.map_or(took_office, |l| l.index);
                followers.entry(id).or_default().observe(id, matched, last.saturating_sub(matched), &events);
            }
        }
        prev = m;
    }
}

/// Whether one follower keeps up, seen from the leader.
#[derive(Default)]
struct Follower {
    matched: u64,
    /// Since when entries have been waiting for this follower without it acknowledging any.
    waiting_since: Option<Instant>,
    behind: bool,
    most: u64,
}

impl Follower {
    fn observe(&mut self, id: NodeId, matched: u64, lag: u64, events: &Events) {
        let now = Instant::now();
        if matched != self.matched || lag == 0 {
            self.matched = matched;
            self.waiting_since = None;
        }
        if lag > 0 {
            self.waiting_since.get_or_insert(now);
        }
        let stalled = self.waiting_since.is_some_and(|t| now - t >= BEHIND_FOR);
        if !self.behind && (lag >= FAR_BEHIND || stalled) {
            self.behind = true;
            events.push("behind", format!("{} is {} behind", node_name(id), entries(lag)));
        }
        self.most = if self.behind { self.most.max(lag) } else { 0 };
        // A few entries in flight is keeping up.
        if self.behind && lag <= 2 && !stalled {
            self.behind = false;
            events
                .push("caught-up", format!("{} caught up (it was up to {} behind)", node_name(id), entries(self.most)));
        }
    }
}

/// `1 entry`, `12 entries`.
fn entries(n: u64) -> String {
    if n == 1 {
        "1 entry".into()
    } else {
        format!("{n} entries")
    }
}
