//! dsh: a shell for showing distributed systems to people. See ARCHITECTURE.md for the layers.

pub mod app;
pub mod check;
pub mod client;
pub mod cluster;
pub mod error;
pub mod live;
pub mod load;
pub mod net;
pub mod node;
pub mod plugins;
pub mod prompt;
pub mod proto;
pub mod script;
pub mod shell;

pub use error::{Error, ErrorKind, Result};
