//! The replicated systems beyond keys: chat, locks and queues, each in its own redb tables,
//! applied inside the state machine's transaction, and the record of request ids that makes
//! every write apply at most once. `apply` dispatches here.

pub(super) mod chat;
mod dispatch;
pub(super) mod locks;
pub(super) mod once;
pub(super) mod queues;
mod reads;
mod tables;

pub(super) use dispatch::{apply_op, begin_entry, is_system};
pub(super) use tables::{create_all, next_deadline, Sys, SystemsData, DEADLINES};
