//! The properties of chat, locks and queues, judged on recorded histories (what the clients
//! were told, and what the nodes hold afterwards). Pure: each checker returns the problems it
//! found, none meaning the property held.

use crate::proto::{ChatMessage, NodeId};
use std::collections::{HashMap, HashSet};

/// A chat send and what its sender was told.
#[derive(Debug, Clone)]
pub struct Sent {
    pub id: u64,
    /// `Some(seq)` when acknowledged; `None` when it may or may not have been delivered.
    pub seq: Option<u64>,
}

/// Identical order on every node, with no gaps after `after_seq`, and each acknowledged
/// message exactly once, at the sequence number its sender was told.
pub fn check_chat(after_seq: u64, sent: &[Sent], logs: &[(NodeId, Vec<ChatMessage>)]) -> Vec<String> {
    let mut problems = Vec::new();
    let name = |n: NodeId| crate::proto::node_name(n);
    for (node, log) in logs {
        for (i, m) in log.iter().enumerate() {
            let want = after_seq + 1 + i as u64;
            if m.seq != want {
                problems.push(format!("{}: seq {} where {want} was due (a gap or a reorder)", name(*node), m.seq));
                break;
            }
        }
        let mut ids = HashSet::new();
        if let Some(m) = log.iter().find(|m| !ids.insert(m.id)) {
            problems.push(format!("{}: message {:x} delivered twice (again at seq {})", name(*node), m.id, m.seq));
        }
    }
    if let Some((first, reference)) = logs.first() {
        let key = |l: &[ChatMessage]| l.iter().map(|m| (m.seq, m.id)).collect::<Vec<_>>();
        for (node, log) in &logs[1..] {
            if key(log) != key(reference) {
                problems.push(format!("{} and {} hold different sequences", name(*first), name(*node)));
            }
        }
        let at: HashMap<u64, Vec<u64>> = reference.iter().fold(HashMap::new(), |mut m, x| {
            m.entry(x.id).or_default().push(x.seq);
            m
        });
        for s in sent {
            if let Some(seq) = s.seq {
                match at.get(&s.id).map(Vec::as_slice) {
                    Some([one]) if *one == seq => {}
                    Some(seen) => {
                        problems.push(format!("message {:x} acknowledged at seq {seq}, found at {seen:?}", s.id))
                    }
                    None => problems.push(format!("message {:x} acknowledged at seq {seq} is missing", s.id)),
                }
            }
        }
    }
    problems
}

/// One grant of an exclusive lock, in the client's real time (µs since the run began).
#[derive(Debug, Clone)]
pub struct Grant {
    pub owner: String,
    pub token: u64,
    pub invoked_us: u64,
    pub granted_us: u64,
    /// When the holder began to release it (it stops using the lock then), if it did.
    pub released_us: Option<u64>,
    pub ttl_us: u64,
}

impl Grant {
    /// When the holder may act as holder: from the answer until it releases, and never past
    /// its lease (which began no earlier than the request did).
    fn held(&self) -> (u64, u64) {
        let lease_end = self.invoked_us + self.ttl_us;
        (self.granted_us, self.released_us.unwrap_or(lease_end).min(lease_end))
    }
}

/// No two holders at once in real time, and tokens increasing with grants: a grant that
/// completed before another was requested has the smaller token.
pub fn check_locks(grants: &[Grant]) -> Vec<String> {
    let mut problems = Vec::new();
    // An owner acquiring again while it holds renews its grant, same token: one grant.
    let mut tokens: HashMap<u64, &str> = HashMap::new();
    for g in grants {
        if tokens.insert(g.token, &g.owner).is_some_and(|o| o != g.owner) {
            problems.push(format!("token {} granted twice", g.token));
        }
    }
    let mut by_start: Vec<&Grant> = grants.iter().filter(|g| g.held().0 < g.held().1).collect();
    by_start.sort_by_key(|g| g.held().0);
    for w in by_start.windows(2) {
        let (a, b) = (w[0].held(), w[1].held());
        if b.0 < a.1 && w[0].owner != w[1].owner {
            problems.push(format!(
                "{} (token {}) and {} (token {}) held the lock at once, {:.1} ms overlap",
                w[0].owner,
                w[0].token,
                w[1].owner,
                w[1].token,
                (a.1 - b.0) as f64 / 1000.0
            ));
        }
    }
    for a in grants {
        let renewal = |b: &Grant| b.token == a.token && b.owner == a.owner;
        if let Some(b) = grants.iter().find(|b| a.granted_us < b.invoked_us && a.token >= b.token && !renewal(b)) {
            problems.push(format!(
                "token {} granted after token {} was already granted: tokens must increase",
                b.token, a.token
            ));
            break;
        }
    }
    problems
}

/// A queue's history: what was pushed and acknowledged, what consumers got, what they acked.
#[derive(Debug, Clone, Default)]
pub struct QueueHistory {
    pub pushed: Vec<String>,
    /// Pushes that may or may not have landed.
    pub maybe_pushed: Vec<String>,
    /// (item, id, when the pop that delivered it was invoked).
    pub delivered: Vec<(String, u64, u64)>,
    /// (id, when its ack completed).
    pub acked: Vec<(u64, u64)>,
}

/// Every acknowledged push delivered, nothing delivered that was never pushed, and no item
/// delivered again by a pop begun after its ack was acknowledged.
pub fn check_queue(h: &QueueHistory) -> Vec<String> {
    let mut problems = Vec::new();
    let got: HashSet<&str> = h.delivered.iter().map(|(i, ..)| i.as_str()).collect();
    let lost: Vec<&String> = h.pushed.iter().filter(|i| !got.contains(i.as_str())).collect();
    if !lost.is_empty() {
        problems.push(format!("{} acknowledged pushes never delivered, e.g. {}", lost.len(), lost[0]));
    }
    let known: HashSet<&str> = h.pushed.iter().chain(&h.maybe_pushed).map(String::as_str).collect();
    if let Some((i, ..)) = h.delivered.iter().find(|(i, ..)| !known.contains(i.as_str())) {
        problems.push(format!("{i} delivered but never pushed"));
    }
    let acked: HashMap<u64, u64> = h.acked.iter().copied().collect();
    if let Some((i, id, at)) = h.delivered.iter().find(|(_, id, at)| acked.get(id).is_some_and(|done| done < at)) {
        problems.push(format!("{i} (id {id}) delivered again at {:.1} ms after its ack", *at as f64 / 1000.0));
    }
    problems
}

#[cfg(test)]
#[path = "systems_tests.rs"]
mod tests;
