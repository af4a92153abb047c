//! At most once. Every write a client sends carries a `RequestId` (client, seq), the same on
//! each retry; this module remembers the outcome of every id applied, so a repeat — the client's
//! retry after a lost reply, or a stale copy that a paused node or an old leader passes on —
//! gets the first outcome back instead of a second application. Owns three tables:
//! - `once_sessions`: per client, its floor (each id says below which seq the client has its
//!   answers: `done_below`), when it was last active, and how many outcomes are kept for it;
//! - `once_outcomes`: (client, seq) → the outcome; those below the floor are garbage, deleted
//!   in bulk;
//! - `once_idle`: (last active, client), so clients idle for `IDLE_MS` of log time are forgotten.
//!
//! Bounded: outcomes below a client's floor go soon after it says so; past `MAX_PER_CLIENT` the
//! oldest go and the floor rises past them; past `MAX_SESSIONS` the least recently active client
//! is forgotten. A request below its client's floor is never applied: its repeat is answered
//! `timeout` (in doubt, since its first outcome is gone). Only a client forgotten as a whole
//! could see a copy applied twice: one idle for ten minutes of log time, or pushed out by
//! thousands of newer clients.
//!
//! Like all of apply it must not read a clock: "now" is the log time of the entry.

use super::tables::{dec, enc, Applied, Fatal, Sys};
use crate::error::Error;
use crate::proto::RequestId;
use redb::{ReadableTable, ReadableTableMetadata};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A client with no write for this long (log time) is forgotten with its outcomes.
pub(in crate::node) const IDLE_MS: u64 = 10 * 60 * 1000;
/// Outcomes kept for one client at most; a client's floor normally keeps it to its writes in
/// flight, so this only binds a client that holds one write open while sending thousands more.
pub(in crate::node) const MAX_PER_CLIENT: u64 = 10_000;
/// Clients remembered at most (each `dsh -c` process is one).
pub(in crate::node) const MAX_SESSIONS: u64 = 10_000;
/// A session's place in the idle index moves at most this often, to spare a write per request.
const TOUCH_EVERY_MS: u64 = 1000;
/// Outcomes below a client's floor are deleted once this many seqs accumulated below it.
const SWEEP_EVERY: u64 = 64;

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub(in crate::node) struct Session {
    /// The client's requests below this are done: refused if they come again.
    floor: u64,
    /// Outcomes below this are deleted; those between it and `floor` are deleted in bulk once
    /// `SWEEP_EVERY` accumulate, rather than one deletion per write.
    swept: u64,
    /// The highest seq applied: a request above it cannot have an outcome yet, so the common
    /// case (a new write) costs no lookup.
    top: u64,
    last_ms: u64,
    /// Outcomes stored (swept or not).
    kept: u64,
}

/// The sessions one apply batch has read, written back when it closes: a batch of one busy
/// client's writes then reads and writes its session once, not once per write.
#[derive(Default)]
pub(in crate::node) struct Sessions(BTreeMap<u64, (Session, bool)>);

/// A request not seen before: apply it, then `remember` its outcome with this.
pub(in crate::node) struct Ticket {
    id: RequestId,
    known: bool,
}

pub(in crate::node) enum Seen {
    /// Applied before (or below the floor): this is the answer, and nothing is applied.
    Before(Applied),
    New(Ticket),
}

/// The client's session through the batch's cache; `None` when the client is not known.
fn session<'s>(sys: &'s mut Sys, client: u64) -> Result<Option<&'s mut Session>, Fatal> {
    if !sys.once_cache.0.contains_key(&client) {
        let Some(found) = sys.once_sessions.get(client)?.map(|v| dec::<Session>(v.value())).transpose()? else {
            return Ok(None);
        };
        sys.once_cache.0.insert(client, (found, false));
    }
    Ok(sys.once_cache.0.get_mut(&client).map(|(s, dirty)| {
        *dirty = true;
        s
    }))
}

/// Looks `id` up, first raising its client's floor to what the id says is done.
pub(in crate::node) fn recall(sys: &mut Sys, id: &RequestId) -> Result<Seen, Fatal> {
    let Some(s) = session(sys, id.client)? else {
        return Ok(Seen::New(Ticket { id: *id, known: false }));
    };
    s.floor = s.floor.max(id.done_below);
    let (floor, swept, top) = (s.floor, s.swept, s.top);
    if floor >= swept.saturating_add(SWEEP_EVERY) {
        let mut dropped = 0;
        sys.once_outcomes.retain_in((id.client, swept)..(id.client, floor), |_, _| {
            dropped += 1;
            false
        })?;
        if let Some(s) = session(sys, id.client)? {
            s.kept -= dropped.min(s.kept);
            s.swept = floor;
        }
    }
    if id.seq < floor {
        return Ok(Seen::Before(Err(Error::timeout(format!(
            "request {id} is older than any its client still waits for, and its outcome is no longer kept: \
             not applied again; it may or may not have taken effect"
        )))));
    }
    if id.seq <= top {
        if let Some(first) =
            sys.once_outcomes.get((id.client, id.seq))?.map(|v| dec::<Applied>(v.value())).transpose()?
        {
            return Ok(Seen::Before(first));
        }
    }
    Ok(Seen::New(Ticket { id: *id, known: true }))
}

/// Keeps the outcome of a request just applied.
pub(in crate::node) fn remember(sys: &mut Sys, ticket: Ticket, outcome: &Applied) -> Result<(), Fatal> {
    let Ticket { id, known } = ticket;
    if !known {
        while sys.once_sessions.len()? >= MAX_SESSIONS {
            let Some((at, client)) = sys.once_idle.first()?.map(|(k, _)| k.value()) else { break };
            forget(sys, client, at)?;
        }
        // Into the table at once, so the count above stays true within the batch.
        let floor = id.done_below.min(id.seq);
        let s = Session { floor, swept: floor, top: 0, last_ms: sys.now, kept: 0 };
        sys.once_sessions.insert(id.client, enc(&s).as_slice())?;
        sys.once_idle.insert((s.last_ms, id.client), ())?;
        sys.once_cache.0.insert(id.client, (s, false));
    }
    sys.once_outcomes.insert((id.client, id.seq), enc(outcome).as_slice())?;
    let Some(s) = session(sys, id.client)? else {
        return Err(redb::Error::Corrupted(format!("session of request {id} vanished")));
    };
    s.kept += 1;
    s.top = s.top.max(id.seq);
    let (swept, kept, last_ms) = (s.swept, s.kept, s.last_ms);
    if kept > MAX_PER_CLIENT {
        let oldest = sys.once_outcomes.range((id.client, swept)..=(id.client, u64::MAX))?.next().transpose()?;
        if let Some(seq) = oldest.map(|(k, _)| k.value().1) {
            sys.once_outcomes.remove((id.client, seq))?;
            // Raising the floor past it turns a late copy into "in doubt" rather than a repeat.
            if let Some(s) = session(sys, id.client)? {
                s.floor = s.floor.max(seq + 1);
                s.swept = s.swept.max(seq + 1);
                s.kept -= 1;
            }
        }
    }
    if sys.now >= last_ms.saturating_add(TOUCH_EVERY_MS) {
        sys.once_idle.remove((last_ms, id.client))?;
        sys.once_idle.insert((sys.now, id.client), ())?;
        let now = sys.now;
        if let Some(s) = session(sys, id.client)? {
            s.last_ms = now;
        }
    }
    Ok(())
}

/// Writes back the sessions this batch changed.
pub(in crate::node) fn flush(sys: &mut Sys) -> Result<(), Fatal> {
    for (client, (s, dirty)) in std::mem::take(&mut sys.once_cache.0) {
        if dirty {
            sys.once_sessions.insert(client, enc(&s).as_slice())?;
        }
    }
    Ok(())
}

/// Forgets the clients idle for `IDLE_MS` of log time by now.
pub(in crate::node) fn expire(sys: &mut Sys) -> Result<(), Fatal> {
    loop {
        let first = sys.once_idle.first()?.map(|(k, _)| k.value());
        match first {
            Some((at, client)) if at.saturating_add(IDLE_MS) <= sys.now => forget(sys, client, at)?,
            _ => return Ok(()),
        }
    }
}

fn forget(sys: &mut Sys, client: u64, at: u64) -> Result<(), Fatal> {
    sys.once_cache.0.remove(&client);
    sys.once_outcomes.retain_in((client, 0)..=(client, u64::MAX), |_, _| false)?;
    sys.once_sessions.remove(client)?;
    sys.once_idle.remove((at, client))?;
    Ok(())
}

/// The whole record, one line per client, for the apply tests' golden output.
#[cfg(test)]
pub(in crate::node) fn dump(tx: &redb::ReadTransaction) -> Result<Vec<String>, Fatal> {
    let sessions = tx.open_table(super::tables::ONCE_SESSIONS)?;
    let outcomes = tx.open_table(super::tables::ONCE_OUTCOMES)?;
    let mut out = Vec::new();
    for item in sessions.iter()? {
        let (k, v) = item?;
        let client = k.value();
        let s: Session = dec(v.value())?;
        let mut seqs = Vec::new();
        for o in outcomes.range((client, 0)..=(client, u64::MAX))? {
            seqs.push(o?.0.value().1.to_string());
        }
        out.push(format!(
            "client {client}: floor {} (swept below {}), top {}, last active {}, kept {} [{}]",
            s.floor,
            s.swept,
            s.top,
            s.last_ms,
            s.kept,
            seqs.join(" ")
        ));
    }
    Ok(out)
}
