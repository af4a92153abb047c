//! The redb tables of the replicated systems and `Sys`, the view of them one apply batch works
//! in. It owns the log clock (the latest `at_ms` applied, so time never runs backwards across
//! leaders) and the deadline index that makes expiry cheap: one entry per lock with a lease or
//! wait running and one per queue item in flight, ordered by when it falls due.
//!
//! Nothing here reads a clock: "now" is the log time of the entry being applied.

use crate::proto::Response;
use redb::{ReadTransaction, ReadableTable, Table, TableDefinition, WriteTransaction};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub(in crate::node) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("sys_meta");
pub(in crate::node) const CHAT: TableDefinition<u64, &[u8]> = TableDefinition::new("chat");
/// Message id → seq, so a retried send is applied once.
pub(in crate::node) const CHAT_IDS: TableDefinition<u64, u64> = TableDefinition::new("chat_ids");
pub(in crate::node) const LOCKS: TableDefinition<&str, &[u8]> = TableDefinition::new("locks");
pub(in crate::node) const Q_ITEMS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("queue_items");
/// Ready items by queue and id: popping takes the lowest id.
pub(in crate::node) const Q_READY: TableDefinition<(&str, u64), ()> = TableDefinition::new("queue_ready");
pub(in crate::node) const Q_STATS: TableDefinition<&str, &[u8]> = TableDefinition::new("queue_stats");
/// Request ids applied (see `once`): per client, its floor and activity; the outcomes kept;
/// clients by when they were last active.
pub(in crate::node) const ONCE_SESSIONS: TableDefinition<u64, &[u8]> = TableDefinition::new("once_sessions");
pub(in crate::node) const ONCE_OUTCOMES: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("once_outcomes");
pub(in crate::node) const ONCE_IDLE: TableDefinition<(u64, u64), ()> = TableDefinition::new("once_idle");
/// (due at, what) — `what` is `timer_key` of a lock or a queue item.
pub(in crate::node) const DEADLINES: TableDefinition<(u64, &str), ()> = TableDefinition::new("deadlines");

/// What applying an entry may fail with: only storage trouble. A refused request (lock held,
/// unknown id) is a successful apply whose result is an `Error`.
pub(in crate::node) type Fatal = redb::Error;
pub(in crate::node) type Applied = Result<Response, crate::error::Error>;

pub(in crate::node) fn enc<T: Serialize>(v: &T) -> Vec<u8> {
    crate::node::types::to_cbor(v)
}

pub(in crate::node) fn dec<T: DeserializeOwned>(b: &[u8]) -> Result<T, Fatal> {
    ciborium::from_reader(b).map_err(|e| redb::Error::Corrupted(format!("stored value: {e}")))
}

/// Which timer a deadline entry belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::node) enum Timer {
    Lock(String),
    Item(String, u64),
}

impl Timer {
    fn key(&self) -> String {
        match self {
            Timer::Lock(name) => format!("l\0{name}"),
            Timer::Item(queue, id) => format!("q\0{queue}\0{id}"),
        }
    }

    fn parse(key: &str) -> Option<Timer> {
        let mut parts = key.split('\0');
        match (parts.next()?, parts.next()?, parts.next()) {
            ("l", name, None) => Some(Timer::Lock(name.to_string())),
            ("q", queue, Some(id)) => Some(Timer::Item(queue.to_string(), id.parse().ok()?)),
            _ => None,
        }
    }
}

/// The systems' tables inside one apply transaction, and the log time of the current entry.
pub(in crate::node) struct Sys<'t> {
    pub now: u64,
    pub meta: Table<'t, &'static str, &'static [u8]>,
    pub chat: Table<'t, u64, &'static [u8]>,
    pub chat_ids: Table<'t, u64, u64>,
    pub locks: Table<'t, &'static str, &'static [u8]>,
    pub q_items: Table<'t, (&'static str, u64), &'static [u8]>,
    pub q_ready: Table<'t, (&'static str, u64), ()>,
    pub q_stats: Table<'t, &'static str, &'static [u8]>,
    pub deadlines: Table<'t, (u64, &'static str), ()>,
    pub once_sessions: Table<'t, u64, &'static [u8]>,
    pub once_outcomes: Table<'t, (u64, u64), &'static [u8]>,
    pub once_idle: Table<'t, (u64, u64), ()>,
    pub once_cache: super::once::Sessions,
    /// What happened that people watching `events` care about (grants, expiries, deadlocks,
    /// redeliveries), for the node to report after the batch commits.
    pub notes: Vec<(&'static str, String)>,
}

impl<'t> Sys<'t> {
    pub fn open(tx: &'t WriteTransaction) -> Result<Self, Fatal> {
        let meta = tx.open_table(META)?;
        let now = get(&meta, "clock")?.unwrap_or(0);
        Ok(Sys {
            now,
            notes: Vec::new(),
            meta,
            chat: tx.open_table(CHAT)?,
            chat_ids: tx.open_table(CHAT_IDS)?,
            locks: tx.open_table(LOCKS)?,
            q_items: tx.open_table(Q_ITEMS)?,
            q_ready: tx.open_table(Q_READY)?,
            q_stats: tx.open_table(Q_STATS)?,
            deadlines: tx.open_table(DEADLINES)?,
            once_sessions: tx.open_table(ONCE_SESSIONS)?,
            once_outcomes: tx.open_table(ONCE_OUTCOMES)?,
            once_idle: tx.open_table(ONCE_IDLE)?,
            once_cache: Default::default(),
        })
    }

    /// Moves log time to `at_ms` (never back) and returns the timers that fell due, earliest
    /// first, removed from the index.
    pub fn advance(&mut self, at_ms: u64) -> Result<Vec<Timer>, Fatal> {
        self.now = self.now.max(at_ms);
        let mut due = Vec::new();
        for item in self.deadlines.range((0, "")..=(self.now, "\u{10FFFF}"))? {
            let (k, _) = item?;
            let (at, what) = k.value();
            due.push((at, what.to_string()));
        }
        for (at, what) in &due {
            self.deadlines.remove((*at, what.as_str()))?;
        }
        Ok(due.iter().filter_map(|(_, w)| Timer::parse(w)).collect())
    }

    /// Moves a timer from `old` to `new` (either may be absent).
    pub fn reschedule(&mut self, timer: &Timer, old: Option<u64>, new: Option<u64>) -> Result<(), Fatal> {
        if old == new {
            return Ok(());
        }
        let key = timer.key();
        if let Some(at) = old {
            self.deadlines.remove((at, key.as_str()))?;
        }
        if let Some(at) = new {
            self.deadlines.insert((at, key.as_str()), ())?;
        }
        Ok(())
    }

    pub fn get_meta<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, Fatal> {
        get(&self.meta, key)
    }

    pub fn set_meta<T: Serialize>(&mut self, key: &str, v: &T) -> Result<(), Fatal> {
        self.meta.insert(key, enc(v).as_slice())?;
        Ok(())
    }

    /// Saves the log clock; returns the earliest pending deadline.
    pub fn close(mut self) -> Result<Option<u64>, Fatal> {
        super::once::flush(&mut self)?;
        let now = self.now;
        self.set_meta("clock", &now)?;
        next_deadline(&self.deadlines)
    }
}

pub(in crate::node) fn get<T: DeserializeOwned>(
    t: &impl ReadableTable<&'static str, &'static [u8]>,
    key: &str,
) -> Result<Option<T>, Fatal> {
    t.get(key)?.map(|v| dec(v.value())).transpose()
}

pub(in crate::node) fn next_deadline(t: &impl ReadableTable<(u64, &'static str), ()>) -> Result<Option<u64>, Fatal> {
    Ok(t.first()?.map(|(k, _)| k.value().0))
}

/// Creates every table, so readers never meet a missing one.
pub(in crate::node) fn create_all(tx: &WriteTransaction) -> Result<(), Fatal> {
    tx.open_table(META)?;
    tx.open_table(CHAT)?;
    tx.open_table(CHAT_IDS)?;
    tx.open_table(LOCKS)?;
    tx.open_table(Q_ITEMS)?;
    tx.open_table(Q_READY)?;
    tx.open_table(Q_STATS)?;
    tx.open_table(DEADLINES)?;
    tx.open_table(ONCE_SESSIONS)?;
    tx.open_table(ONCE_OUTCOMES)?;
    tx.open_table(ONCE_IDLE)?;
    Ok(())
}

/// The systems' tables as shipped in a snapshot: raw stored values, so the snapshot does not
/// depend on how each system interprets them.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct SystemsData {
    pub meta: Vec<(String, Vec<u8>)>,
    pub chat: Vec<(u64, Vec<u8>)>,
    pub chat_ids: Vec<(u64, u64)>,
    pub locks: Vec<(String, Vec<u8>)>,
    pub q_items: Vec<(String, u64, Vec<u8>)>,
    pub q_ready: Vec<(String, u64)>,
    pub q_stats: Vec<(String, Vec<u8>)>,
    pub deadlines: Vec<(u64, String)>,
    /// Absent in snapshots from before request ids.
    #[serde(default)]
    pub once_sessions: Vec<(u64, Vec<u8>)>,
    #[serde(default)]
    pub once_outcomes: Vec<(u64, u64, Vec<u8>)>,
    #[serde(default)]
    pub once_idle: Vec<(u64, u64)>,
}

fn str_bytes(t: &impl ReadableTable<&'static str, &'static [u8]>) -> Result<Vec<(String, Vec<u8>)>, Fatal> {
    t.iter()?.map(|i| i.map(|(k, v)| (k.value().to_string(), v.value().to_vec())).map_err(Into::into)).collect()
}

impl SystemsData {
    pub fn export(tx: &ReadTransaction) -> Result<Self, Fatal> {
        let mut d = SystemsData {
            meta: str_bytes(&tx.open_table(META)?)?,
            locks: str_bytes(&tx.open_table(LOCKS)?)?,
            q_stats: str_bytes(&tx.open_table(Q_STATS)?)?,
            ..Default::default()
        };
        for i in tx.open_table(CHAT)?.iter()? {
            let (k, v) = i?;
            d.chat.push((k.value(), v.value().to_vec()));
        }
        for i in tx.open_table(CHAT_IDS)?.iter()? {
            let (k, v) = i?;
            d.chat_ids.push((k.value(), v.value()));
        }
        for i in tx.open_table(Q_ITEMS)?.iter()? {
            let (k, v) = i?;
            let (q, id) = k.value();
            d.q_items.push((q.to_string(), id, v.value().to_vec()));
        }
        for i in tx.open_table(Q_READY)?.iter()? {
            let (k, _) = i?;
            let (q, id) = k.value();
            d.q_ready.push((q.to_string(), id));
        }
        for i in tx.open_table(DEADLINES)?.iter()? {
            let (k, _) = i?;
            let (at, what) = k.value();
            d.deadlines.push((at, what.to_string()));
        }
        for i in tx.open_table(ONCE_SESSIONS)?.iter()? {
            let (k, v) = i?;
            d.once_sessions.push((k.value(), v.value().to_vec()));
        }
        for i in tx.open_table(ONCE_OUTCOMES)?.iter()? {
            let (k, v) = i?;
            let (client, seq) = k.value();
            d.once_outcomes.push((client, seq, v.value().to_vec()));
        }
        for i in tx.open_table(ONCE_IDLE)?.iter()? {
            let (k, _) = i?;
            d.once_idle.push(k.value());
        }
        Ok(d)
    }

    /// Replaces the systems' tables with this content; returns the earliest deadline.
    pub fn install(&self, tx: &WriteTransaction) -> Result<Option<u64>, Fatal> {
        let mut meta = tx.open_table(META)?;
        meta.retain(|_, _| false)?;
        for (k, v) in &self.meta {
            meta.insert(k.as_str(), v.as_slice())?;
        }
        let mut chat = tx.open_table(CHAT)?;
        chat.retain(|_, _| false)?;
        for (k, v) in &self.chat {
            chat.insert(k, v.as_slice())?;
        }
        let mut ids = tx.open_table(CHAT_IDS)?;
        ids.retain(|_, _| false)?;
        for (k, v) in &self.chat_ids {
            ids.insert(k, v)?;
        }
        let mut locks = tx.open_table(LOCKS)?;
        locks.retain(|_, _| false)?;
        for (k, v) in &self.locks {
            locks.insert(k.as_str(), v.as_slice())?;
        }
        let mut items = tx.open_table(Q_ITEMS)?;
        items.retain(|_, _| false)?;
        for (q, id, v) in &self.q_items {
            items.insert((q.as_str(), *id), v.as_slice())?;
        }
        let mut ready = tx.open_table(Q_READY)?;
        ready.retain(|_, _| false)?;
        for (q, id) in &self.q_ready {
            ready.insert((q.as_str(), *id), ())?;
        }
        let mut stats = tx.open_table(Q_STATS)?;
        stats.retain(|_, _| false)?;
        for (k, v) in &self.q_stats {
            stats.insert(k.as_str(), v.as_slice())?;
        }
        let mut deadlines = tx.open_table(DEADLINES)?;
        deadlines.retain(|_, _| false)?;
        for (at, what) in &self.deadlines {
            deadlines.insert((*at, what.as_str()), ())?;
        }
        let mut sessions = tx.open_table(ONCE_SESSIONS)?;
        sessions.retain(|_, _| false)?;
        for (client, v) in &self.once_sessions {
            sessions.insert(client, v.as_slice())?;
        }
        let mut outcomes = tx.open_table(ONCE_OUTCOMES)?;
        outcomes.retain(|_, _| false)?;
        for (client, seq, v) in &self.once_outcomes {
            outcomes.insert((*client, *seq), v.as_slice())?;
        }
        let mut idle = tx.open_table(ONCE_IDLE)?;
        idle.retain(|_, _| false)?;
        for key in &self.once_idle {
            idle.insert(key, ())?;
        }
        next_deadline(&deadlines)
    }
}

#[cfg(test)]
mod tests {
    use super::Timer;

    #[test]
    fn timer_keys_round_trip() {
        for t in [Timer::Lock("a b".into()), Timer::Item("jobs".into(), 42)] {
            assert_eq!(Timer::parse(&t.key()), Some(t));
        }
    }
}
