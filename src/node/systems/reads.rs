//! What the node's services read from the systems' applied state: always this node's own copy
//! (a linearizable read first asks the leader for a read index, see `service`).

use super::{chat, locks, queues};
use crate::error::Result;
use crate::node::state_machine::{internal, Store};
use crate::proto::{ChatDigest, ChatMessage, LockInfo, QueueStat};
use redb::ReadableDatabase;

impl Store {
    pub fn chat_log(&self, after_seq: u64, limit: usize, tail: bool) -> Result<(Vec<ChatMessage>, u64)> {
        let tx = self.db.begin_read().map_err(internal)?;
        chat::log(&tx, after_seq, limit, tail).map_err(internal)
    }

    pub fn chat_digest(&self) -> Result<ChatDigest> {
        let tx = self.db.begin_read().map_err(internal)?;
        chat::digest(&tx).map_err(internal)
    }

    pub fn lock_list(&self) -> Result<Vec<LockInfo>> {
        let tx = self.db.begin_read().map_err(internal)?;
        locks::list(&tx).map_err(internal)
    }

    pub fn lock_standing(&self, name: &str, owner: &str) -> Result<locks::Standing> {
        let tx = self.db.begin_read().map_err(internal)?;
        locks::standing(&tx, name, owner).map_err(internal)
    }

    pub fn queue_stats(&self) -> Result<Vec<QueueStat>> {
        let tx = self.db.begin_read().map_err(internal)?;
        queues::all_stats(&tx).map_err(internal)
    }
}
