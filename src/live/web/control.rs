//! What the page's buttons may do, and how a click becomes a command. A control is one of a
//! fixed set of actions on a named node or scenario; it becomes the shell command a presenter
//! would type (`crash n2`) and runs through [`Controls`], which the shell implements with its
//! command table, so a button and the prompt share one code path. Names are checked here
//! before they are put in a command line, so a request cannot smuggle in other commands.

use crate::error::{Error, Result};
use futures::future::BoxFuture;
use serde::Deserialize;

/// The shell, as the page's controls see it.
pub trait Controls: Send + Sync {
    /// Runs one line of the command table (`crash n2`) as `-c` would; returns what it printed.
    fn run(&self, line: String) -> BoxFuture<'static, Result<String>>;
    /// The scenarios that can be started (`scenario list`).
    fn scenarios(&self) -> Vec<String>;
}

/// One control request: `{"action": "crash", "node": "n2"}`,
/// `{"action": "scenario start", "scenario": "bank"}`.
#[derive(Debug, Clone, Deserialize)]
pub struct Action {
    pub action: String,
    #[serde(default)]
    pub node: Option<String>,
    #[serde(default)]
    pub scenario: Option<String>,
}

/// The actions the page offers, in the order its buttons show them.
pub const NODE_ACTIONS: [&str; 5] = ["crash", "restart", "pause", "resume", "isolate"];

impl Action {
    /// The command line this action runs. `nodes` are the cluster's node ids.
    pub fn command(&self, nodes: &[String]) -> Result<String> {
        let action = self.action.trim().replace(['_', '-'], " ");
        match action.as_str() {
            a if NODE_ACTIONS.contains(&a) => {
                let node = self.node.as_deref().ok_or_else(|| Error::usage(format!("{a}: which node?")))?;
                if !nodes.iter().any(|n| n == node) {
                    return Err(Error::usage(format!("{a}: `{node}` is not a node of this cluster")));
                }
                Ok(format!("{a} {node}"))
            }
            "heal" => Ok("heal".into()),
            "scenario start" | "scenario stop" => {
                let name =
                    self.scenario.as_deref().ok_or_else(|| Error::usage(format!("{action}: which scenario?")))?;
                let plain = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
                if !plain {
                    return Err(Error::usage(format!("{action}: `{name}` is not a scenario name")));
                }
                Ok(format!("{action} {name}"))
            }
            other => Err(Error::usage(format!(
                "unknown action `{other}`: crash, restart, pause, resume, isolate (with a node), heal, \
                 scenario start, scenario stop (with a scenario)"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn act(json: &str) -> Result<String> {
        let nodes = vec!["n1".to_string(), "n2".to_string(), "n3".to_string()];
        serde_json::from_str::<Action>(json).unwrap().command(&nodes)
    }

    #[test]
    fn actions_become_the_commands_a_presenter_would_type() {
        assert_eq!(act(r#"{"action":"crash","node":"n2"}"#).unwrap(), "crash n2");
        assert_eq!(act(r#"{"action":"isolate","node":"n1"}"#).unwrap(), "isolate n1");
        assert_eq!(act(r#"{"action":"heal"}"#).unwrap(), "heal");
        assert_eq!(act(r#"{"action":"scenario_start","scenario":"bank"}"#).unwrap(), "scenario start bank");
    }

    #[test]
    fn nothing_but_a_known_node_or_a_plain_name_reaches_the_command_line() {
        assert!(act(r#"{"action":"crash","node":"n2; put a b"}"#).is_err());
        assert!(act(r#"{"action":"crash","node":"n9"}"#).is_err());
        assert!(act(r#"{"action":"crash"}"#).is_err());
        assert!(act(r#"{"action":"scenario start","scenario":"x; heal"}"#).is_err());
        assert!(act(r#"{"action":"put"}"#).is_err());
    }
}
