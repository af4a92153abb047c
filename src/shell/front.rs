//! What only an interactive front end has, for the commands of the table that need it:
//! `history` (the lines typed so far), `events on|off` (events printed above the line being
//! typed) and holding that printing while a full-screen view owns the terminal. The shell
//! defines this trait and a slot for it on `Ctx`; the prompt implements it and fills the slot
//! when it starts. Elsewhere (`-c`, pipes, stories) the slot stays empty and those commands say
//! they belong to the prompt. It must not import `prompt`.

use super::Ctx;
use crate::error::Result;

pub trait Front: Send + Sync {
    /// The lines typed so far, oldest first.
    fn history(&self) -> Vec<String>;
    /// Starts (`on`) or stops printing the cluster's events above the line being typed, for
    /// the cluster `ctx` reaches; returns what to tell the person.
    fn live_events(&self, ctx: &Ctx, on: bool) -> Result<String>;
    /// While `true`, print nothing on its own (a full-screen view such as the dashboard owns
    /// the terminal); what would have printed meanwhile may follow when it turns `false`.
    fn hold(&self, _held: bool) {}
}
