//! One round of questions to one node: status, the traffic seconds it completed, the events it
//! recorded, its network faults, now and then its metrics, and the process state this dsh can
//! tell. All are asked at once and the round ends at [`NODE_BUDGET`] whatever is missing, so a
//! node that stopped answering costs the model one budget, never a stall. It only asks; what
//! the answers mean is decided in `book`, `series` and `timeline`.

use super::model::Sources;
use crate::client::{Client, Target};
use crate::proto::{Event, Faults, NodeId, NodeMetrics, NodeStatus, Request, Response, SecondCounts};
use std::time::Duration;

/// How long one node may take to answer before the model goes on without it, so that one
/// silent node never stalls the picture of the others (and is shown down within a second).
pub const NODE_BUDGET: Duration = Duration::from_millis(400);
/// The budget of a node that missed its last round or is paused: short, so that while it is
/// silent the rounds keep their pace and a new leader elsewhere is shown at once.
pub const SILENT_BUDGET: Duration = Duration::from_millis(200);

/// Where the model is in a node's records.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cursor {
    /// The last traffic second received (Unix seconds).
    pub seconds_after: u64,
    /// The last event sequence number received in the node's current run.
    pub events_after: u64,
    pub metrics: bool,
    /// How long this node's questions may take this round.
    pub budget: Duration,
}

/// What one node said in one round; `None` where it did not answer in time.
#[derive(Debug, Default)]
pub struct Polled {
    pub id: NodeId,
    pub status: Option<NodeStatus>,
    /// The node's current second and the seconds it completed after the cursor.
    pub seconds: Option<(u64, Vec<SecondCounts>)>,
    /// The node's run (`boot_ms`) and its events after the cursor.
    pub events: Option<(u64, Vec<Event>)>,
    pub faults: Option<Faults>,
    pub metrics: Option<NodeMetrics>,
    /// `up`, `down` or `paused`, when the local cluster or a supervisor can tell.
    pub process: Option<String>,
}

async fn ask(client: &Client, id: NodeId, request: Request, budget: Duration) -> Option<Response> {
    let call = client.call_within(Target::Node(id), request, budget);
    tokio::time::timeout(budget, call).await.ok()?.ok().map(|s| s.value)
}

/// Asks one node everything at once, within the cursor's budget.
pub async fn poll_node(client: &Client, sources: &dyn Sources, id: NodeId, at: Cursor) -> Polled {
    let status = ask(client, id, Request::Status, at.budget);
    let seconds = ask(client, id, Request::Seconds { after: at.seconds_after }, at.budget);
    let events = ask(client, id, Request::Events { after: at.events_after, wait_ms: 0 }, at.budget);
    let faults = ask(client, id, Request::GetFaults, at.budget);
    let metrics = async {
        match at.metrics {
            true => ask(client, id, Request::Metrics, at.budget).await,
            false => None,
        }
    };
    let process = async { tokio::time::timeout(at.budget, sources.process_state(id)).await.ok().flatten() };
    let (status, seconds, events, faults, metrics, process) =
        tokio::join!(status, seconds, events, faults, metrics, process);
    Polled {
        id,
        status: match status {
            Some(Response::Status(s)) => Some(s),
            _ => None,
        },
        seconds: match seconds {
            Some(Response::Seconds { now_sec, seconds }) => Some((now_sec, seconds)),
            _ => None,
        },
        events: match events {
            Some(Response::Events { boot_ms, events }) => Some((boot_ms, events)),
            _ => None,
        },
        faults: match faults {
            Some(Response::Faults(f)) => Some(f),
            _ => None,
        },
        metrics: match metrics {
            Some(Response::Metrics(m)) => Some(m),
            _ => None,
        },
        process,
    }
}
