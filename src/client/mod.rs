//! The async client every front end uses: it talks to all nodes of a cluster, keeps a leader
//! hint, fails over with bounded retries and backoff, and gives each request a deadline. It
//! reports which node served each request. It sees nodes only through `proto` and `net`.

mod cache;
mod calls;
mod config;
mod conn;
pub mod entropy;
mod events;

pub use cache::{Cache, CacheEntry, CacheRead, CacheStats, Mesi};
pub use calls::{unexpected, Acquired, Deleted};
pub use config::{ClusterFile, NodeEntry};
pub use conn::{Client, Served, Target};
pub use events::{recent as recent_events, EventFeed};
