//! Failover measurement: keep writing, SIGKILL the leader, and time how long until a write
//! succeeds again. Works for a dsh cluster whose nodes run on this machine and, for comparison,
//! for etcd members whose pids the caller names.

use super::Etcd;
use crate::client::{Client, Target};
use crate::error::{Error, Result};
use crate::proto::{node_name, Request};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub enum FailoverTarget {
    Dsh(Arc<Client>),
    /// etcd endpoints and the pid of the member behind each, in the same order.
    Etcd(Arc<Etcd>, Vec<u32>),
}

#[derive(Debug, Clone)]
pub struct FailoverResult {
    /// Who was killed (`n1`, or an etcd endpoint).
    pub killed: String,
    pub pid: u32,
    /// From SIGKILL to the first write acknowledged after it.
    pub failover: Duration,
    /// Writes that failed in between.
    pub errors: u64,
}

const WARMUP: usize = 50;
const GIVE_UP: Duration = Duration::from_secs(15);

pub async fn failover(target: FailoverTarget) -> Result<FailoverResult> {
    let (killed, pid) = find_leader(&target).await?;
    let mut writer = Writer::new(&target);
    for _ in 0..WARMUP {
        writer.write().await?;
    }
    // SAFETY: plain syscall; the pid was reported by the leader itself or named by the caller.
    if unsafe { libc::kill(pid as i32, libc::SIGKILL) } != 0 {
        return Err(Error::internal(format!("kill {pid}: {}", std::io::Error::last_os_error())));
    }
    let killed_at = Instant::now();
    let mut errors = 0;
    loop {
        match writer.write().await {
            Ok(()) => return Ok(FailoverResult { killed, pid, failover: killed_at.elapsed(), errors }),
            Err(_) if killed_at.elapsed() < GIVE_UP => errors += 1,
            Err(e) => return Err(Error::timeout(format!("no write succeeded within {GIVE_UP:?} of the kill: {e}"))),
        }
    }
}

async fn find_leader(target: &FailoverTarget) -> Result<(String, u32)> {
    match target {
        FailoverTarget::Dsh(client) => {
            let all = client.status_all(Duration::from_secs(1)).await;
            let leader = all
                .iter()
                .filter_map(|(_, s)| s.as_ref().ok())
                .find(|s| s.role == "leader")
                .ok_or_else(|| Error::no_quorum("no leader to kill"))?;
            Ok((node_name(leader.id), leader.pid))
        }
        FailoverTarget::Etcd(etcd, pids) => {
            let i = etcd.leader().await?;
            let pid = *pids.get(i).ok_or_else(|| Error::usage(format!("no pid given for etcd endpoint #{}", i + 1)))?;
            Ok((format!("etcd member #{}", i + 1), pid))
        }
    }
}

/// Sequential writes to whichever system is measured.
enum Writer<'a> {
    Dsh(&'a Client, u64),
    Etcd(super::etcd::EtcdConn, u64),
}

impl<'a> Writer<'a> {
    fn new(target: &'a FailoverTarget) -> Self {
        match target {
            FailoverTarget::Dsh(c) => Writer::Dsh(c, 0),
            FailoverTarget::Etcd(e, _) => Writer::Etcd(e.connection(0), 0),
        }
    }

    async fn write(&mut self) -> Result<()> {
        match self {
            Writer::Dsh(client, i) => {
                *i += 1;
                let req = Request::Put { key: format!("failover:{}", *i % 100), value: i.to_string() };
                client.call_within(Target::Leader, req, Duration::from_secs(2)).await.map(|_| ())
            }
            Writer::Etcd(conn, i) => {
                *i += 1;
                conn.put(&format!("failover:{}", *i % 100), &i.to_string()).await
            }
        }
    }
}
