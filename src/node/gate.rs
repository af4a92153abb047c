//! Who may use this node and how much: connections counted per certificate holder, and
//! refusals recorded as `denied` events. It decides nothing about requests themselves (that is
//! `net::authorize`, applied where `server` dispatches them) and never touches Raft or storage.

use super::events::Events;
use crate::error::{Error, Result};
use crate::net::{Principal, Role};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Connections one client or admin certificate may hold open at once. A shell holds one per
/// node; a presenter's terminals, a load run and a few scripts stay far below this, while one
/// holder can no longer exhaust the node. Connections of a process that died without closing
/// count until QUIC's idle timeout (1.5 s) drops them.
pub const MAX_CONNECTIONS: usize = 64;
/// Nodes dial each other once per peer (plus a join); generous, since every node is trusted.
pub const MAX_NODE_CONNECTIONS: usize = 256;
/// At most this many `denied` events a second, so a refused client flooding the node cannot
/// push everything else out of the event record.
const DENIED_EVENTS_PER_SECOND: u32 = 10;

pub struct Gate {
    open: Mutex<HashMap<Principal, usize>>,
    events: Arc<Events>,
    /// The start of the current second and the `denied` events recorded in it.
    recorded: Mutex<(Instant, u32)>,
}

/// One admitted connection; gives its place back when dropped.
pub struct Admitted {
    gate: Arc<Gate>,
    holder: Principal,
}

impl Gate {
    pub fn new(events: Arc<Events>) -> Arc<Self> {
        Arc::new(Gate { open: Mutex::default(), events, recorded: Mutex::new((Instant::now(), 0)) })
    }

    /// Counts a new connection of `holder`, or refuses it when the holder has too many open.
    pub fn admit(self: &Arc<Self>, holder: &Principal) -> Result<Admitted> {
        let limit = if holder.role == Role::Node { MAX_NODE_CONNECTIONS } else { MAX_CONNECTIONS };
        let mut open = self.open.lock().unwrap();
        let n = open.entry(holder.clone()).or_default();
        if *n >= limit {
            return Err(Error::denied(format!("{holder} already holds {limit} connections to this node")));
        }
        *n += 1;
        Ok(Admitted { gate: self.clone(), holder: holder.clone() })
    }

    /// Records a refusal as a `denied` event, unless too many were recorded this second.
    pub fn record(&self, text: impl Into<String>) {
        {
            let mut r = self.recorded.lock().unwrap();
            if r.0.elapsed() >= Duration::from_secs(1) {
                *r = (Instant::now(), 0);
            }
            if r.1 >= DENIED_EVENTS_PER_SECOND {
                return;
            }
            r.1 += 1;
        }
        self.events.push("denied", text);
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut open = self.gate.open.lock().unwrap();
        if let Some(n) = open.get_mut(&self.holder) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.holder);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_holder_gets_its_limit_of_connections_and_them_back_when_closed() {
        let gate = Gate::new(Arc::new(Events::new(1)));
        let alice = Principal { role: Role::Client, name: "alice".into() };
        let bob = Principal { role: Role::Client, name: "bob".into() };
        let held: Vec<_> = (0..MAX_CONNECTIONS).map(|_| gate.admit(&alice).unwrap()).collect();
        let e = gate.admit(&alice).err().expect("one too many");
        assert_eq!(e.kind, crate::error::ErrorKind::Denied);
        gate.admit(&bob).expect("others are not starved");
        drop(held);
        gate.admit(&alice).expect("closed connections count no more");
    }

    #[tokio::test]
    async fn refusals_are_recorded_but_not_without_bound() {
        let events = Arc::new(Events::new(1));
        let gate = Gate::new(events.clone());
        for i in 0..100 {
            gate.record(format!("refusal {i}"));
        }
        let denied = events.after(0, Duration::ZERO).await.into_iter().filter(|e| e.kind == "denied").count();
        assert_eq!(denied, DENIED_EVENTS_PER_SECOND as usize);
    }
}
