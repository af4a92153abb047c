//! At most once. Every write a client sends carries a `RequestId` (client, seq), the same on
//! each retry; this module remembers the outcome of every id applied, so a repeat — the client's
//! retry after a lost reply, or a stale copy that a paused node or an old leader passes on —
//! gets the first outcome back instead of a second application. Owns three tables:
//! - `once_sessions`: per client, its floor (each id says below which seq the client has its
//!   answers: `done_below`), when it was last active, and how many outcomes are kept for it;
//! - `once_outcomes`: (client, seq) → the outcome, kept only at or above the floor;
//! - `once_idle`: (last active, client), so clients idle for `IDLE_MS` of log time are forgotten.
//!
//! Bounded: outcomes below a client's floor go as soon as it says so; past `MAX_PER_CLIENT` the
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

/// A client with no write for this long (log time) is forgotten with its outcomes.
pub(in crate::node) const IDLE_MS: u64 = 10 * 60 * 1000;
/// Outcomes kept for one client at most; a client's floor normally keeps it to its writes in
/// flight, so this only binds a client that holds one write open while sending thousands more.
pub(in crate::node) const MAX_PER_CLIENT: u64 = 10_000;
/// Clients remembered at most (each `dsh -c` process is one).
pub(in crate::node) const MAX_SESSIONS: u64 = 10_000;
/// A session's place in the idle index moves at most this often, to spare a write per request.
const TOUCH_EVERY_MS: u64 = 1000;

#[derive(Debug, Default, Serialize, Deserialize)]
struct Session {
    floor: u64,
    last_ms: u64,
    kept: u64,
}

/// A request not seen before: apply it, then `remember` its outcome with this.
pub(in crate::node) struct Ticket {
    id: RequestId,
    session: Session,
    known: bool,
}

pub(in crate::node) enum Seen {
    /// Applied before (or below the floor): this is the answer, and nothing is applied.
    Before(Applied),
    New(Ticket),
}

fn session(sys: &Sys, client: u64) -> Result<Option<Session>, Fatal> {
    sys.once_sessions.get(client)?.map(|v| dec(v.value())).transpose()
}

/// Looks `id` up, first dropping what its client says it no longer needs.
pub(in crate::node) fn recall(sys: &mut Sys, id: &RequestId) -> Result<Seen, Fatal> {
    let found = session(sys, id.client)?;
    let known = found.is_some();
    let mut s = found.unwrap_or_default();
    if id.done_below > s.floor {
        let mut dropped = 0;
        sys.once_outcomes.retain_in((id.client, s.floor)..(id.client, id.done_below), |_, _| {
            dropped += 1;
            false
        })?;
        s.kept -= dropped.min(s.kept);
        s.floor = id.done_below;
    }
    let first = sys.once_outcomes.get((id.client, id.seq))?.map(|v| dec::<Applied>(v.value())).transpose()?;
    let answer = match first {
        Some(outcome) => Some(outcome),
        None if id.seq < s.floor => Some(Err(Error::timeout(format!(
            "request {id} is older than any its client still waits for, and its outcome is no longer kept: \
             not applied again; it may or may not have taken effect"
        )))),
        None => None,
    };
    match answer {
        Some(outcome) => {
            if known {
                save(sys, id.client, &s)?;
            }
            Ok(Seen::Before(outcome))
        }
        None => Ok(Seen::New(Ticket { id: *id, session: s, known })),
    }
}

/// Keeps the outcome of a request just applied.
pub(in crate::node) fn remember(sys: &mut Sys, ticket: Ticket, outcome: &Applied) -> Result<(), Fatal> {
    let Ticket { id, session: mut s, known } = ticket;
    sys.once_outcomes.insert((id.client, id.seq), enc(outcome).as_slice())?;
    s.kept += 1;
    if s.kept > MAX_PER_CLIENT {
        let oldest = sys.once_outcomes.range((id.client, s.floor)..=(id.client, u64::MAX))?.next().transpose()?;
        if let Some(seq) = oldest.map(|(k, _)| k.value().1) {
            sys.once_outcomes.remove((id.client, seq))?;
            // Raising the floor past it turns a late copy into "in doubt" rather than a repeat.
            s.floor = s.floor.max(seq + 1);
            s.kept -= 1;
        }
    }
    if !known {
        while sys.once_sessions.len()? >= MAX_SESSIONS {
            let Some((at, client)) = sys.once_idle.first()?.map(|(k, _)| k.value()) else { break };
            forget(sys, client, at)?;
        }
    }
    if !known || sys.now >= s.last_ms.saturating_add(TOUCH_EVERY_MS) {
        if known {
            sys.once_idle.remove((s.last_ms, id.client))?;
        }
        s.last_ms = sys.now;
        sys.once_idle.insert((s.last_ms, id.client), ())?;
    }
    save(sys, id.client, &s)
}

fn save(sys: &mut Sys, client: u64, s: &Session) -> Result<(), Fatal> {
    sys.once_sessions.insert(client, enc(s).as_slice())?;
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
            "client {client}: floor {}, last active {}, kept {} [{}]",
            s.floor,
            s.last_ms,
            s.kept,
            seqs.join(" ")
        ));
    }
    Ok(out)
}
