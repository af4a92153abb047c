//! The live progress bar of a load run: an indicatif bar on stderr with ops/s, p99 and errors,
//! refreshed from the recorder a few times a second. It owns only drawing. It must not draw
//! when the caller says output is not live (`--json`, `-q`) or stderr is not a terminal, and
//! it must not touch stdout, where the results go.

use super::record::Recorder;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

const REFRESH: Duration = Duration::from_millis(200);

pub struct Progress {
    bar: Option<ProgressBar>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Progress {
    /// Starts drawing, if `live` and stderr is a terminal. The bar fills by operations when
    /// `count` is known, by time otherwise; `label` says which run this is (a ladder's rung).
    pub fn start(
        rec: Arc<Recorder>,
        count: Option<u64>,
        duration: Option<Duration>,
        live: bool,
        label: Option<String>,
    ) -> Self {
        if !live || !std::io::stderr().is_terminal() {
            return Progress { bar: None, task: None };
        }
        let by_count = count.is_some();
        let len = count.unwrap_or_else(|| duration.map_or(0, |d| d.as_millis() as u64));
        let bar = ProgressBar::new(len);
        let template = match label {
            Some(_) => "{spinner} {prefix} [{elapsed_precise}] {wide_bar} {percent:>3}% {msg}",
            None => "{spinner} [{elapsed_precise}] {wide_bar} {percent:>3}% {msg}",
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style);
        }
        if let Some(l) = label {
            bar.set_prefix(l);
        }
        let b = bar.clone();
        let task = tokio::spawn(async move {
            loop {
                let l = rec.live();
                b.set_position(if by_count { l.ops + l.errors } else { l.elapsed.as_millis() as u64 });
                b.set_message(format!("{:.0} ops/s  p99 {:.2} ms  {} errors", l.ops_per_sec, l.p99_ms, l.errors));
                tokio::time::sleep(REFRESH).await;
            }
        });
        Progress { bar: Some(bar), task: Some(task) }
    }

    /// Stops and erases the bar, so the final table stands alone.
    pub fn finish(self) {}
}

/// Also on Ctrl-C, when the command's future is dropped mid-run.
impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}
