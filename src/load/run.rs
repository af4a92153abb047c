//! The runner: `concurrency` workers on the async client, each taking the next operation number,
//! waiting for its slot (closed or open loop, see `schedule`), running it, and handing the
//! outcome to the recorder. With `--verify` it keeps the last acknowledged write of every key
//! and reads them back when the load is over. When `stop` fires (Ctrl-C) no operation starts
//! any more, those in flight are dropped, and what completed so far is the summary. It must
//! not print or format anything: the command shows what the recorder and the read-back found.

use super::record::{Recorder, Summary};
use super::schedule::{Schedule, Slot, LATE};
use super::verify::{self, Ledger, Verified};
use super::workload::{Backend, Conn, LoadSpec};
use crate::error::{Error, Result};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio_util::sync::CancellationToken;

/// Runs the workload, recording into `rec` (which a progress display may watch meanwhile),
/// until it is done or `stop` fires. The recorder's clock is the run's start. An interrupted
/// run is not read back (`--verify`): that could take longer than the person who pressed
/// Ctrl-C wants to wait.
pub async fn run(
    backend: Backend,
    spec: LoadSpec,
    rec: Arc<Recorder>,
    stop: CancellationToken,
) -> Result<(Summary, Option<Verified>)> {
    spec.check(&backend)?;
    let next = Arc::new(AtomicU64::new(0));
    // One shared padding string: values are sliced from it instead of built byte by byte.
    let pad: Arc<str> = "x".repeat(spec.value_size).into();
    let schedule = Schedule::new(rec.started(), spec.count, spec.duration, spec.rate);
    let ledger = spec.verify.then(|| Arc::new(Ledger::default()));
    // Names this run to the cluster (lock owners, chat ids): different from any earlier run.
    let run_id = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u32 ^ std::process::id().rotate_left(16));
    let mut tasks = Workers(Vec::with_capacity(spec.concurrency));
    for worker in 0..spec.concurrency {
        let (next, pad, spec, schedule, rec) = (next.clone(), pad.clone(), spec.clone(), schedule.clone(), rec.clone());
        let (ledger, stop) = (ledger.clone(), stop.clone());
        let mut conn = Conn::new(&backend, worker, run_id);
        tasks.0.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(slot) = schedule.slot(i).filter(|_| !stop.is_cancelled()) else { break };
                let one = async {
                    let from = match slot {
                        Slot::Now => Instant::now(),
                        Slot::At(at) => {
                            let now = Instant::now();
                            if at > now {
                                tokio::time::sleep_until(at.into()).await;
                            } else if now - at > LATE {
                                rec.late();
                            }
                            at
                        }
                    };
                    (from, conn.op(&spec, i, &pad).await)
                };
                // An operation still waiting for its slot or its answer when Ctrl-C comes is
                // neither a success nor an error: it is left out.
                let (from, outcome) = tokio::select! {
                    biased;
                    _ = stop.cancelled() => break,
                    done = one => done,
                };
                match outcome {
                    Ok(done) => {
                        rec.ok(from.elapsed(), done.node);
                        if let (Some(l), Some(ack)) = (&ledger, done.ack) {
                            l.acknowledged(ack);
                        }
                    }
                    Err(e) => rec.error(e.kind.as_str()),
                }
            }
        }));
    }
    for t in &mut tasks.0 {
        t.await.map_err(|e| Error::internal(format!("load worker: {e}")))?;
    }
    let mut summary = rec.finish();
    summary.interrupted = stop.is_cancelled();
    let verified = match (ledger, &backend) {
        (Some(l), Backend::Dsh(client)) if !summary.interrupted => {
            Some(verify::read_back(client, &l, spec.concurrency).await?)
        }
        _ => None,
    };
    Ok((summary, verified))
}

/// The worker tasks, stopped when the run is dropped: Ctrl-C at the prompt drops the command's
/// future, and the load must stop with it rather than go on in the background.
struct Workers(Vec<tokio::task::JoinHandle<()>>);

impl Drop for Workers {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}
