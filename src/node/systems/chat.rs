//! Chat in total order: each message is one operation in the Raft log, numbered on apply, so
//! `seq` is dense and the same on every node. Owns the `chat` and `chat_ids` tables and the
//! running hash over the history that `chat check` compares between nodes.
//!
//! It must not number messages anywhere but in apply, and must not read a clock: a message's
//! time is the log time of its entry.

use super::tables::{dec, enc, Applied, Fatal, Sys, CHAT, META};
use crate::proto::{ChatDigest, ChatMessage, Response};
use redb::{ReadTransaction, ReadableTable, ReadableTableMetadata};

pub(in crate::node) fn send(sys: &mut Sys, id: u64, from: &str, text: &str) -> Result<Applied, Fatal> {
    // A client retrying after a lost reply sends the same id: answer with the first seq.
    if let Some(seq) = sys.chat_ids.get(id)?.map(|v| v.value()) {
        let at_ms = match sys.chat.get(seq)? {
            Some(v) => dec::<ChatMessage>(v.value())?.at_ms,
            None => 0,
        };
        return Ok(Ok(Response::ChatSent { seq, at_ms, duplicate: true }));
    }
    let seq = sys.get_meta::<u64>("chat_seq")?.unwrap_or(0) + 1;
    let msg = ChatMessage { seq, id, from: from.to_string(), text: text.to_string(), at_ms: sys.now };
    let prev: [u8; 32] = sys.get_meta("chat_hash")?.unwrap_or([0; 32]);
    sys.chat.insert(seq, enc(&msg).as_slice())?;
    sys.chat_ids.insert(id, seq)?;
    sys.set_meta("chat_seq", &seq)?;
    sys.set_meta("chat_hash", &chain(&prev, &msg))?;
    Ok(Ok(Response::ChatSent { seq, at_ms: msg.at_ms, duplicate: false }))
}

/// Each node extends the hash with every message it applies, so two nodes with equal hashes
/// hold the same messages in the same order, without shipping the history to compare it.
fn chain(prev: &[u8; 32], m: &ChatMessage) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(prev);
    ctx.update(&m.seq.to_le_bytes());
    ctx.update(&m.at_ms.to_le_bytes());
    ctx.update(&(m.from.len() as u64).to_le_bytes());
    ctx.update(m.from.as_bytes());
    ctx.update(m.text.as_bytes());
    let mut out = [0; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// Messages after `after_seq` (or the last `limit` with `tail`), and the last seq applied.
pub(in crate::node) fn log(
    tx: &ReadTransaction,
    after_seq: u64,
    limit: usize,
    tail: bool,
) -> Result<(Vec<ChatMessage>, u64), Fatal> {
    let chat = tx.open_table(CHAT)?;
    let last_seq = chat.last()?.map_or(0, |(k, _)| k.value());
    let from = if tail { last_seq.saturating_sub(limit as u64) } else { after_seq };
    let mut out = Vec::new();
    for item in chat.range(from.saturating_add(1)..)? {
        if out.len() >= limit {
            break;
        }
        out.push(dec(item?.1.value())?);
    }
    Ok((out, last_seq))
}

pub(in crate::node) fn digest(tx: &ReadTransaction) -> Result<ChatDigest, Fatal> {
    let chat = tx.open_table(CHAT)?;
    let meta = tx.open_table(META)?;
    let count = chat.len()?;
    let last_seq = chat.last()?.map_or(0, |(k, _)| k.value());
    let hash: [u8; 32] = super::tables::get(&meta, "chat_hash")?.unwrap_or([0; 32]);
    Ok(ChatDigest {
        count,
        last_seq,
        // Keys are unique and at most `last_seq`, so whatever is missing below it is a gap.
        gaps: last_seq - count.min(last_seq),
        hash: hash[..8].iter().map(|b| format!("{b:02x}")).collect(),
    })
}
