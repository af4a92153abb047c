//! The shell's own cache of keys (`cache get`), kept coherent by the leader's directory (see
//! `node::cache`): a copy is served locally only while a lease from the current leader holds,
//! and every invalidation the leader sends is applied and acknowledged before the write that
//! caused it returns. States follow MESI: `modified` (this client wrote it), `exclusive` (only
//! this client holds it), `shared`, `invalid`. It talks to the cluster only through `Client`.

use super::{Client, Target};
use crate::error::{Error, Result};
use crate::proto::{CacheNotice, Request, Response, Versioned};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Must not exceed the node's lease (`node::cache::LEASE`): the client counts from the moment
/// it sent the poll, which is earlier than the node's count.
const LEASE: Duration = Duration::from_millis(40);
const POLL_WAIT_MS: u32 = 15;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mesi {
    Modified,
    Exclusive,
    Shared,
    Invalid,
}

impl Mesi {
    pub fn as_str(self) -> &'static str {
        match self {
            Mesi::Modified => "modified",
            Mesi::Exclusive => "exclusive",
            Mesi::Shared => "shared",
            Mesi::Invalid => "invalid",
        }
    }
}

#[derive(Debug, Clone)]
pub struct CacheEntry {
    pub value: Option<Versioned>,
    pub state: Mesi,
}

/// What `cache get` found.
#[derive(Debug, Clone)]
pub struct CacheRead {
    pub hit: bool,
    pub value: Option<Versioned>,
    pub state: Mesi,
}

#[derive(Debug, Clone, Default)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    pub invalidations: u64,
    pub entries: BTreeMap<String, CacheEntry>,
}

#[derive(Default)]
struct State {
    /// The leader term the copies were registered in.
    term: Option<u64>,
    entries: BTreeMap<String, CacheEntry>,
    /// Per key, the last invalidation received: a fetch registered before it is stale.
    invalidated_at: HashMap<String, u64>,
    acked: u64,
    trusted_until: Option<Instant>,
    hits: u64,
    misses: u64,
    invalidations: u64,
}

impl State {
    /// Copies from an earlier leader's term are unknown to the current leader's directory.
    fn adopt_term(&mut self, term: u64) {
        if self.term != Some(term) {
            if self.term.is_some() {
                for e in self.entries.values_mut() {
                    e.state = Mesi::Invalid;
                }
            }
            self.term = Some(term);
            self.acked = 0;
            self.invalidated_at.clear();
        }
    }
}

pub struct Cache {
    client: Arc<Client>,
    id: u64,
    state: Arc<Mutex<State>>,
    poller: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Drop for Cache {
    fn drop(&mut self) {
        if let Some(p) = self.poller.lock().unwrap().take() {
            p.abort();
        }
    }
}

impl Cache {
    pub fn new(client: Arc<Client>) -> Self {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        let id = nanos ^ ((std::process::id() as u64) << 32) | 1;
        Cache { client, id, state: Arc::default(), poller: Mutex::new(None) }
    }

    /// Starts polling the leader for notices (and leases) on first use. Must be called inside
    /// a tokio runtime.
    fn ensure_polling(&self) {
        let mut poller = self.poller.lock().unwrap();
        if poller.is_none() {
            let (client, state, id) = (self.client.clone(), self.state.clone(), self.id);
            *poller = Some(tokio::spawn(poll(client, state, id)));
        }
    }

    pub async fn get(&self, key: &str) -> Result<CacheRead> {
        self.ensure_polling();
        {
            let mut st = self.state.lock().unwrap();
            let trusted = st.trusted_until.is_some_and(|t| Instant::now() < t);
            if let Some(e) = st.entries.get(key).filter(|e| trusted && e.state != Mesi::Invalid).cloned() {
                st.hits += 1;
                return Ok(CacheRead { hit: true, value: e.value, state: e.state });
            }
        }
        let r = self.client.call(Target::Leader, Request::CacheRead { client: self.id, key: key.into() }).await?;
        let state = self.store(key, r.value, false)?;
        let mut st = self.state.lock().unwrap();
        st.misses += 1;
        let value = st.entries.get(key).and_then(|e| e.value.clone());
        Ok(CacheRead { hit: false, value, state })
    }

    /// Writes through the leader and keeps the written value as this client's copy.
    pub async fn put(&self, key: &str, value: &str) -> Result<(Versioned, Mesi)> {
        self.ensure_polling();
        let request = Request::CachePut { client: self.id, key: key.into(), value: value.into() };
        let r = self.client.call(Target::Leader, request).await?;
        let state = self.store(key, r.value, true)?;
        let v = self.state.lock().unwrap().entries.get(key).and_then(|e| e.value.clone());
        v.map(|v| (v, state)).ok_or_else(|| Error::internal("cache put returned no value"))
    }

    fn store(&self, key: &str, response: Response, wrote: bool) -> Result<Mesi> {
        let Response::Cached { term, seq, holders, value } = response else {
            return Err(Error::internal(format!("unexpected reply {response:?}")));
        };
        let mut st = self.state.lock().unwrap();
        st.adopt_term(term);
        // An invalidation queued after we registered means the value may already be old.
        let stale = st.invalidated_at.get(key).is_some_and(|s| *s > seq);
        let state = match (stale, wrote, holders) {
            (true, _, _) => Mesi::Invalid,
            (false, true, 1) => Mesi::Modified,
            (false, false, 1) => Mesi::Exclusive,
            _ => Mesi::Shared,
        };
        st.entries.insert(key.to_string(), CacheEntry { value, state });
        Ok(state)
    }

    pub fn stats(&self) -> CacheStats {
        let st = self.state.lock().unwrap();
        CacheStats { hits: st.hits, misses: st.misses, invalidations: st.invalidations, entries: st.entries.clone() }
    }
}

/// Renews the lease and applies notices, acknowledging each batch on the next poll.
async fn poll(client: Arc<Client>, state: Arc<Mutex<State>>, id: u64) {
    loop {
        let ack = state.lock().unwrap().acked;
        let sent = Instant::now();
        let request = Request::CachePoll { client: id, ack, wait_ms: POLL_WAIT_MS };
        match client.call_within(Target::Leader, request, Duration::from_millis(500)).await {
            Ok(r) => {
                let Response::CacheNotices { term, notices, lease } = r.value else { continue };
                let mut st = state.lock().unwrap();
                st.adopt_term(term);
                for (seq, notice) in notices {
                    match notice {
                        CacheNotice::Invalidate { key } => {
                            if let Some(e) = st.entries.get_mut(&key).filter(|e| e.state != Mesi::Invalid) {
                                e.state = Mesi::Invalid;
                                st.invalidations += 1;
                            }
                            st.invalidated_at.insert(key, seq);
                        }
                        CacheNotice::Shared { key } => {
                            if let Some(e) = st.entries.get_mut(&key).filter(|e| e.state != Mesi::Invalid) {
                                e.state = Mesi::Shared;
                            }
                        }
                    }
                    st.acked = st.acked.max(seq);
                }
                if lease {
                    st.trusted_until = Some(sent + LEASE);
                }
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}
