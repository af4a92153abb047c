//! `load --verify`: the ledger of acknowledged writes and the read-back at the end. For each key
//! it keeps the acknowledged write with the highest revision (acknowledgements of concurrent
//! writes to one key can arrive out of order; the revision is the order the cluster applied
//! them in). A key is verified when a linearizable read returns that write or a later one.
//! It must not generate load or judge latency.

use super::workload::Ack;
use crate::client::{Client, Target};
use crate::error::{Error, Result};
use crate::proto::{Request, Response};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// How many missing keys are named in the result.
const EXAMPLES: usize = 5;
/// A read that fails right after a fault is tried again before the key counts as unreadable.
const READ_TRIES: u32 = 5;

#[derive(Default)]
pub struct Ledger {
    last: Mutex<HashMap<String, (u64, String)>>,
}

impl Ledger {
    pub fn acknowledged(&self, ack: Ack) {
        let mut m = self.last.lock().unwrap();
        match m.get_mut(&ack.key) {
            Some((rev, value)) if *rev < ack.revision => {
                *rev = ack.revision;
                *value = ack.value;
            }
            Some(_) => {}
            None => {
                m.insert(ack.key, (ack.revision, ack.value));
            }
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Verified {
    /// Keys whose last acknowledged write (or a later one) was read back.
    pub verified: u64,
    /// Keys whose last acknowledged write is gone: absent, older, or a different value.
    pub missing: u64,
    /// A few missing keys, as `key: wanted rev N, found …`.
    pub examples: Vec<String>,
}

pub async fn read_back(client: &Client, ledger: &Ledger, concurrency: usize) -> Result<Verified> {
    let mut wanted: Vec<(String, (u64, String))> = ledger.last.lock().unwrap().drain().collect();
    wanted.sort();
    let mut out = Verified::default();
    for chunk in wanted.chunks(concurrency.max(1)) {
        let reads = chunk.iter().map(|(key, _)| read(client, key));
        let found = futures::future::join_all(reads).await;
        for ((key, (rev, value)), got) in chunk.iter().zip(found) {
            let got = got?;
            let ok = match &got {
                Some((r, v)) => *r > *rev || (*r == *rev && v == value),
                None => false,
            };
            if ok {
                out.verified += 1;
                continue;
            }
            out.missing += 1;
            if out.examples.len() < EXAMPLES {
                let found = match got {
                    Some((r, v)) => format!("rev {r} `{}`", v.chars().take(16).collect::<String>()),
                    None => "nothing".into(),
                };
                out.examples.push(format!("{key}: wanted rev {rev}, found {found}"));
            }
        }
    }
    Ok(out)
}

/// The key's value and revision, by a linearizable read through the leader.
async fn read(client: &Client, key: &str) -> Result<Option<(u64, String)>> {
    let mut last = Error::internal("no read tried");
    for attempt in 0..READ_TRIES {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        match client.call(Target::Leader, Request::Get { key: key.to_string(), stale: false }).await {
            Ok(s) => match s.value {
                Response::Value(v) => return Ok(v.map(|v| (v.revision, v.value))),
                other => return Err(Error::internal(format!("verify: unexpected reply {other:?}"))),
            },
            Err(e) => last = e,
        }
    }
    Err(Error::new(last.kind, format!("verify: could not read {key} back: {}", last.message)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ack(key: &str, value: &str, revision: u64) -> Ack {
        Ack { key: key.into(), value: value.into(), revision }
    }

    #[test]
    fn the_highest_revision_wins_whatever_order_acks_arrive_in() {
        let l = Ledger::default();
        l.acknowledged(ack("k", "b", 7));
        l.acknowledged(ack("k", "a", 5));
        l.acknowledged(ack("j", "x", 6));
        let m = l.last.lock().unwrap();
        assert_eq!(m["k"], (7, "b".to_string()));
        assert_eq!(m.len(), 2);
    }
}
