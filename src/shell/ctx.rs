//! What a command runs against: the cluster client and how output is shown.

use super::output::Style;
use crate::client::Client;
use std::sync::Arc;

pub struct Ctx {
    pub client: Arc<Client>,
    pub style: Style,
}
