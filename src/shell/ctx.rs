//! What a command runs against: the cluster client and how output is shown.

use super::output::Style;
use crate::client::Client;
use crate::cluster::LocalCluster;
use std::sync::Arc;

pub struct Ctx {
    pub client: Arc<Client>,
    pub style: Style,
    /// The node processes this machine runs, when the cluster is the local one.
    pub local: Option<Local>,
}

/// The local cluster's processes, for the fault commands.
pub struct Local {
    pub cluster: LocalCluster,
    /// Ephemeral nodes die with this process; restarted ones must too.
    pub tied_to_parent: bool,
}
