//! The prompt's view of the cluster — which node leads, how many answer — kept current while
//! the line editor reads. A task asks every node for its status a few times a second, each node
//! on its own (a dead node's timeouts do not hold up the others), and when the view changes it
//! prints a one-line notice above the line being typed; printing makes the editor redraw, and
//! the redrawn prompt (`editor.rs`, `highlight_prompt`) shows the new view. It must not run while
//! a command runs (the task belongs to one `readline`), and it must not change the prompt's
//! width mid-line: the editor places the cursor by the width it measured when reading began.

use crate::client::{Client, Target};
use crate::error::{Error, Result};
use crate::proto::{node_name, NodeId, NodeStatus, Request, Response};
use rustyline::ExternalPrinter;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a node may take to answer before it counts as not answering.
const ANSWER_WITHIN: Duration = Duration::from_millis(500);
/// Between one node's answer and the next question to it: a new leader shows well within a
/// second of its election.
const EVERY: Duration = Duration::from_millis(150);

/// Prints above the line being typed; shared by the watcher and `events on`.
pub type Printer = Arc<Mutex<Box<dyn ExternalPrinter + Send>>>;

/// What the prompt shows.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct View {
    /// The leader and its term.
    pub leader: Option<(NodeId, u64)>,
    /// The nodes that answered, in the client's order.
    pub up: Vec<NodeId>,
    pub total: usize,
}

impl View {
    /// From the last answer of each node (`None`: it did not answer).
    pub fn of(answers: &[(NodeId, Option<NodeStatus>)]) -> View {
        let up = answers.iter().filter(|(_, s)| s.is_some()).map(|(id, _)| *id).collect();
        // A leader cut off from the others may still say it leads: the newest term wins.
        let leader = answers
            .iter()
            .filter_map(|(_, s)| s.as_ref())
            .filter(|s| s.role == "leader")
            .max_by_key(|s| s.term)
            .map(|s| (s.id, s.term));
        View { leader, up, total: answers.len() }
    }

    /// `dsh n1★ 3/3> `, or as close to it as `width` columns allow when given (spaces pad
    /// it; a shorter leader word stands in when the natural one does not fit).
    pub fn prompt(&self, width: Option<usize>, color: bool) -> String {
        let count = format!("{}/{}", self.up.len(), self.total);
        let words: Vec<String> = match self.leader {
            Some((id, _)) => vec![format!("{}★", node_name(id)), node_name(id)],
            None => vec!["no leader".into(), "none".into(), "-".into()],
        };
        let natural = &words[0];
        let around = "dsh ".len() + 1 + count.chars().count() + "> ".len();
        let who = match width.and_then(|w| w.checked_sub(around)) {
            Some(slot) => match words.iter().find(|w| w.chars().count() <= slot) {
                Some(w) => format!("{w:<slot$}"),
                None => natural.clone(),
            },
            None => natural.clone(),
        };
        if color {
            format!("\x1b[1mdsh\x1b[0m {who} {count}> ")
        } else {
            format!("dsh {who} {count}> ")
        }
    }

    /// `· n2 leads now (term 4); n1 stopped answering; 2/3 nodes answer`
    pub fn notice(&self, before: &View) -> String {
        let mut parts = Vec::new();
        if self.leader != before.leader {
            parts.push(match self.leader {
                Some((id, term)) => format!("{} leads now (term {term})", node_name(id)),
                None => "no leader".into(),
            });
        }
        for id in before.up.iter().filter(|id| !self.up.contains(id)) {
            parts.push(format!("{} stopped answering", node_name(*id)));
        }
        for id in self.up.iter().filter(|id| !before.up.contains(id)) {
            parts.push(format!("{} answers again", node_name(*id)));
        }
        parts.push(format!("{}/{} nodes answer", self.up.len(), self.total));
        format!("· {}", parts.join("; "))
    }
}

/// The view the prompt shows now, shared with the line editor's helper.
pub type Shown = Arc<Mutex<View>>;

/// Every node's status, asked at once and answered `within`: the view a fresh prompt starts from.
pub async fn ask_all(client: &Client, within: Duration) -> Vec<(NodeId, Option<NodeStatus>)> {
    client.status_all(within).await.into_iter().map(|(id, r)| (id, r.ok())).collect()
}

async fn ask(client: &Client, id: NodeId) -> Result<NodeStatus> {
    match client.call_within(Target::Node(id), Request::Status, ANSWER_WITHIN).await?.value {
        Response::Status(s) => Ok(s),
        other => Err(Error::internal(format!("unexpected reply {other:?}"))),
    }
}

/// Follows the cluster from `answers` on, updating `shown` and printing a notice at each change,
/// until the returned task is aborted (when the editor stops reading).
pub fn follow(
    handle: &tokio::runtime::Handle,
    client: Arc<Client>,
    answers: Vec<(NodeId, Option<NodeStatus>)>,
    shown: Shown,
    printer: Printer,
    color: bool,
) -> tokio::task::JoinHandle<()> {
    handle.spawn(async move {
        let answers = Arc::new(Mutex::new(answers));
        let count = answers.lock().unwrap_or_else(|e| e.into_inner()).len();
        let nodes = (0..count).map(|i| {
            let (client, answers, shown, printer) = (client.clone(), answers.clone(), shown.clone(), printer.clone());
            async move {
                loop {
                    let id = answers.lock().unwrap_or_else(|e| e.into_inner())[i].0;
                    let status = ask(&client, id).await.ok();
                    let changed = {
                        let mut all = answers.lock().unwrap_or_else(|e| e.into_inner());
                        all[i].1 = status;
                        let now = View::of(&all);
                        let mut shown = shown.lock().unwrap_or_else(|e| e.into_inner());
                        (*shown != now).then(|| std::mem::replace(&mut *shown, now.clone())).map(|was| now.notice(&was))
                    };
                    if let Some(notice) = changed {
                        let notice = if color { format!("\x1b[90m{notice}\x1b[0m") } else { notice };
                        let mut p = printer.lock().unwrap_or_else(|e| e.into_inner());
                        if p.print(notice).is_err() {
                            return;
                        }
                    }
                    tokio::time::sleep(EVERY).await;
                }
            }
        });
        futures::future::join_all(nodes).await;
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(leader: Option<(NodeId, u64)>, up: &[NodeId]) -> View {
        View { leader, up: up.to_vec(), total: 3 }
    }

    #[test]
    fn a_redrawn_prompt_keeps_its_width() {
        let at_start = view(Some((1, 3)), &[1, 2, 3]).prompt(None, false);
        assert_eq!(at_start, "dsh n1★ 3/3> ");
        let width = at_start.chars().count();
        let lost = view(None, &[2, 3]).prompt(Some(width), false);
        assert_eq!((lost.as_str(), lost.chars().count()), ("dsh -   2/3> ", width));
        let wide = view(None, &[2, 3]).prompt(None, false);
        assert_eq!(wide, "dsh no leader 2/3> ");
        let back = view(Some((2, 4)), &[2, 3]).prompt(Some(wide.chars().count()), false);
        assert_eq!(back, "dsh n2★       2/3> ");
        assert_eq!(view(Some((2, 4)), &[2, 3]).prompt(Some(width), true), "\x1b[1mdsh\x1b[0m n2★ 2/3> ");
    }

    #[test]
    fn a_notice_says_what_changed() {
        let before = view(Some((1, 3)), &[1, 2, 3]);
        assert_eq!(
            view(Some((2, 4)), &[2, 3]).notice(&before),
            "· n2 leads now (term 4); n1 stopped answering; 2/3 nodes answer"
        );
        assert_eq!(view(Some((1, 3)), &[1, 2]).notice(&before), "· n3 stopped answering; 2/3 nodes answer");
        assert_eq!(before.notice(&view(None, &[1, 2])), "· n1 leads now (term 3); n3 answers again; 3/3 nodes answer");
    }
}
