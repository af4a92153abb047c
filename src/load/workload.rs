//! What one load operation is: the workload's settings, and how operation number `i` turns into
//! requests to dsh (through `client` and `proto` only) or to etcd. It owns keys and values:
//! every written value is unique to its operation, so a stale or lost write is detectable by
//! `--verify`. It must not time, count or pace operations: that is the runner's and the
//! recorder's job, and keeping it out of here keeps both loops measuring the same thing.

use super::Etcd;
use crate::client::{Client, Target};
use crate::error::{Error, Result};
use crate::proto::{NodeId, Request, Response};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadOp {
    Put,
    Get,
    /// Half puts, half gets, alternating by operation number (even: put, odd: get), so the mix
    /// is exact at any count and the same on every run.
    Mixed,
    Chat,
    Lock,
    Queue,
}

impl LoadOp {
    pub const NAMES: &'static str = "put, get, mixed, chat, lock, queue";

    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "put" => Ok(LoadOp::Put),
            "get" => Ok(LoadOp::Get),
            "mixed" => Ok(LoadOp::Mixed),
            "chat" => Ok(LoadOp::Chat),
            "lock" => Ok(LoadOp::Lock),
            "queue" => Ok(LoadOp::Queue),
            other => Err(Error::usage(format!("load: unknown operation `{other}` ({})", Self::NAMES))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            LoadOp::Put => "put",
            LoadOp::Get => "get",
            LoadOp::Mixed => "mixed",
            LoadOp::Chat => "chat",
            LoadOp::Lock => "lock",
            LoadOp::Queue => "queue",
        }
    }
}

#[derive(Debug, Clone)]
pub struct LoadSpec {
    pub op: LoadOp,
    /// Stop after this many operations…
    pub count: Option<u64>,
    /// …or after this long.
    pub duration: Option<Duration>,
    /// Operations in flight at most (closed loop: exactly).
    pub concurrency: usize,
    /// Open loop: operations started per second, on a fixed schedule.
    pub rate: Option<f64>,
    /// Keys are `load:0` … `load:{keys-1}`.
    pub keys: u64,
    pub value_size: usize,
    /// Remember acknowledged writes and read them all back at the end.
    pub verify: bool,
}

impl LoadSpec {
    pub fn check(&self, backend: &Backend) -> Result<()> {
        if self.concurrency == 0 || self.keys == 0 {
            return Err(Error::usage("load: --concurrency and --keys must be at least 1"));
        }
        if self.count.is_none() && self.duration.is_none() {
            return Err(Error::usage("load: give --count or --duration"));
        }
        if self.rate.is_some_and(|r| !(r > 0.0 && r.is_finite())) {
            return Err(Error::usage("load: --rate must be above 0"));
        }
        if self.verify && self.op != LoadOp::Put {
            return Err(Error::usage("load: --verify checks writes: use it with `load put`"));
        }
        if let Backend::Etcd(_) = backend {
            if !matches!(self.op, LoadOp::Put | LoadOp::Get | LoadOp::Mixed) || self.verify {
                return Err(Error::usage("load --etcd: only put, get and mixed, without --verify"));
            }
        }
        Ok(())
    }

    pub fn key(&self, i: u64) -> String {
        format!("load:{}", i % self.keys)
    }

    /// `--value-size` bytes that start with the operation number, so no two writes are equal.
    pub fn value(&self, i: u64, pad: &str) -> String {
        let mut v = format!("{i:x}.");
        let fill = self.value_size.saturating_sub(v.len()).min(pad.len());
        v.push_str(&pad[..fill]);
        v
    }
}

/// What the operations go to.
#[derive(Clone)]
pub enum Backend {
    Dsh(Arc<Client>),
    Etcd(Arc<Etcd>),
}

/// A write the cluster acknowledged, for `--verify`.
pub struct Ack {
    pub key: String,
    pub value: String,
    pub revision: u64,
}

/// What one successful operation tells the recorder.
pub struct Done {
    pub node: Option<NodeId>,
    pub ack: Option<Ack>,
}

/// One worker's way to the backend: dsh shares the client; etcd needs a connection per worker.
pub enum Conn {
    Dsh(Arc<Client>, Worker),
    Etcd(super::etcd::EtcdConn),
}

/// Who a dsh worker is to the cluster: lock owners and chat message ids must not collide
/// between workers, nor with an earlier run (chat ids are deduplicated by the cluster).
pub struct Worker {
    owner: String,
    /// High half: this run; low half: the operation number.
    chat_base: u64,
}

/// Lock leases outlive a failed release by this much; a wait for a lock gives up after this.
const LOCK_TTL_MS: u64 = 10_000;
const LOCK_WAIT_MS: u64 = 5_000;
/// A popped job not acked within this is delivered again.
const QUEUE_VISIBILITY_MS: u64 = 30_000;

impl Conn {
    pub fn new(backend: &Backend, worker: usize, run: u32) -> Self {
        match backend {
            Backend::Dsh(c) => Conn::Dsh(
                c.clone(),
                Worker { owner: format!("load-{run:08x}-{worker}"), chat_base: (run as u64) << 32 },
            ),
            Backend::Etcd(e) => Conn::Etcd(e.connection(worker)),
        }
    }

    /// Runs operation `i`: one request, or for `lock` (acquire, release) and `queue` (push,
    /// pop, ack) the whole cycle, timed as one operation.
    pub async fn op(&mut self, spec: &LoadSpec, i: u64, pad: &str) -> Result<Done> {
        let write = match spec.op {
            LoadOp::Put => true,
            LoadOp::Get => false,
            LoadOp::Mixed => i.is_multiple_of(2),
            LoadOp::Chat | LoadOp::Lock | LoadOp::Queue => {
                let Conn::Dsh(client, w) = self else {
                    return Err(Error::usage(format!("load {} --etcd: etcd has no such operation", spec.op.name())));
                };
                return systems(client, w, spec, i, pad).await;
            }
        };
        let key = spec.key(i);
        match self {
            Conn::Dsh(client, _) => {
                if write {
                    let value = spec.value(i, pad);
                    // Only `--verify` needs the key and value after the call: copy them only then.
                    let kept = spec.verify.then(|| (key.clone(), value.clone()));
                    let s = client.call(Target::Leader, Request::Put { key, value }).await?;
                    let ack = match (s.value, kept) {
                        (Response::Written { revision }, Some((key, value))) => Some(Ack { key, value, revision }),
                        _ => None,
                    };
                    Ok(Done { node: Some(s.node), ack })
                } else {
                    let s = client.call(Target::Leader, Request::Get { key, stale: false }).await?;
                    Ok(Done { node: Some(s.node), ack: None })
                }
            }
            Conn::Etcd(conn) => {
                if write {
                    conn.put(&key, &spec.value(i, pad)).await?;
                } else {
                    conn.get(&key).await?;
                }
                Ok(Done { node: None, ack: None })
            }
        }
    }
}

/// Chat, lock and queue operations (SPEC §3's replicated systems).
async fn systems(client: &Client, w: &Worker, spec: &LoadSpec, i: u64, pad: &str) -> Result<Done> {
    let unexpected = |r: Response| Error::internal(format!("load {}: unexpected reply {r:?}", spec.op.name()));
    match spec.op {
        LoadOp::Chat => {
            let req = Request::ChatSend {
                id: w.chat_base | (i & 0xffff_ffff),
                from: w.owner.clone(),
                text: spec.value(i, pad),
            };
            let s = client.call(Target::Leader, req).await?;
            match s.value {
                Response::ChatSent { .. } => Ok(Done { node: Some(s.node), ack: None }),
                other => Err(unexpected(other)),
            }
        }
        LoadOp::Lock => {
            let name = format!("load:{}", i % spec.keys);
            let req = Request::LockAcquire {
                name: name.clone(),
                owner: w.owner.clone(),
                shared: false,
                ttl_ms: LOCK_TTL_MS,
                wait_ms: LOCK_WAIT_MS,
                queue: false,
            };
            let wait = std::time::Duration::from_millis(LOCK_WAIT_MS);
            let s = client.call_within(Target::Leader, req, client.timeout() + wait).await?;
            if !matches!(s.value, Response::LockGranted { .. }) {
                return Err(unexpected(s.value));
            }
            let s = client.call(Target::Leader, Request::LockRelease { name, owner: w.owner.clone() }).await?;
            match s.value {
                Response::LockReleased { .. } => Ok(Done { node: Some(s.node), ack: None }),
                other => Err(unexpected(other)),
            }
        }
        LoadOp::Queue => {
            let queue = "load".to_string();
            let s = client
                .call(Target::Leader, Request::QueuePush { queue: queue.clone(), item: spec.value(i, pad) })
                .await?;
            if !matches!(s.value, Response::QueuePushed { .. }) {
                return Err(unexpected(s.value));
            }
            let pop = Request::QueuePop { queue: queue.clone(), visibility_ms: QUEUE_VISIBILITY_MS };
            let s = client.call(Target::Leader, pop).await?;
            // Another worker may have taken every ready job, this one's included: the cycle
            // then ends at the pop.
            let id = match s.value {
                Response::QueueItem(Some(item)) => item.id,
                Response::QueueItem(None) => return Ok(Done { node: Some(s.node), ack: None }),
                other => return Err(unexpected(other)),
            };
            let s = client.call(Target::Leader, Request::QueueAck { queue, id }).await?;
            match s.value {
                Response::QueueAcked { .. } => Ok(Done { node: Some(s.node), ack: None }),
                other => Err(unexpected(other)),
            }
        }
        LoadOp::Put | LoadOp::Get | LoadOp::Mixed => Err(Error::internal("not a chat, lock or queue operation")),
    }
}
