//! A check's figures while it runs, and its verdict once it lands, for whoever watches besides
//! the command that prints the result (the live model's check panel: dashboard, web page,
//! `view()`). It owns the counters and the registry of the latest check; it must not draw, and it
//! knows nothing of who watches (`check` sits below `live` and `shell`).

use super::history::Outcome;
use crate::error::{Error, ErrorKind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Operations by outcome as they complete: `ok`, `fail` (certainly no effect), `info` (maybe).
#[derive(Debug, Default)]
pub struct Tally {
    ok: AtomicU64,
    fail: AtomicU64,
    info: AtomicU64,
}

impl Tally {
    pub fn outcome(&self, o: &Outcome) {
        let slot = match o {
            Outcome::Ok(_) => &self.ok,
            Outcome::Fail { .. } => &self.fail,
            Outcome::Info => &self.info,
        };
        slot.fetch_add(1, Ordering::Relaxed);
    }

    /// A chat, lock or queue operation: refused for certain, or an outcome nobody can know.
    pub fn result(&self, e: Option<&Error>) {
        let slot = match e.map(|e| e.kind) {
            None => &self.ok,
            Some(ErrorKind::Conflict | ErrorKind::NotGranted | ErrorKind::Denied | ErrorKind::Deadlock) => &self.fail,
            Some(_) => &self.info,
        };
        slot.fetch_add(1, Ordering::Relaxed);
    }

    /// (ok, fail, info) so far.
    pub fn counts(&self) -> (u64, u64, u64) {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        (get(&self.ok), get(&self.fail), get(&self.info))
    }
}

/// How a finished check came out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub valid: bool,
    /// One line: "every key is linearizable", "check:…:k3 is not linearizable".
    pub summary: String,
}

/// One check: what it is, how far it has got, and its verdict once it has one.
#[derive(Debug)]
pub struct Progress {
    /// `kv`, `chat`, `locks`, `queue`.
    pub what: String,
    /// The nemesis's fault kinds, if one runs with it (`crash,partition`).
    pub nemesis: Option<String>,
    pub duration: Duration,
    started: Instant,
    pub tally: Tally,
    verdict: Mutex<Option<Verdict>>,
}

impl Progress {
    pub fn new(what: &str, nemesis: Option<String>, duration: Duration) -> Self {
        Progress {
            what: what.into(),
            nemesis,
            duration,
            started: Instant::now(),
            tally: Tally::default(),
            verdict: Mutex::new(None),
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// 0.0–1.0 of its duration; 1.0 once judged.
    pub fn fraction(&self) -> f64 {
        if self.verdict().is_some() || self.duration.is_zero() {
            return 1.0;
        }
        (self.elapsed().as_secs_f64() / self.duration.as_secs_f64()).clamp(0.0, 1.0)
    }

    pub fn land(&self, verdict: Verdict) {
        *self.verdict.lock().unwrap_or_else(|e| e.into_inner()) = Some(verdict);
    }

    /// The check could not be judged (it failed before a history was complete).
    pub fn land_error(&self, e: &Error) {
        self.land(Verdict { valid: false, summary: format!("not judged: {e}") });
    }

    pub fn verdict(&self) -> Option<Verdict> {
        self.verdict.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// The latest check of this process, running or judged; clones share it. It stays after it
/// lands, so the audience sees the verdict until the next check starts.
#[derive(Clone, Default)]
pub struct Checks(Arc<Mutex<Option<Arc<Progress>>>>);

impl Checks {
    /// Starts watching a check that is about to run; it replaces the one before.
    pub fn begin(&self, progress: Arc<Progress>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(progress);
    }

    pub fn latest(&self) -> Option<Arc<Progress>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_check_counts_outcomes_then_keeps_its_verdict_until_the_next_begins() {
        let checks = Checks::default();
        assert!(checks.latest().is_none());
        let p = Arc::new(Progress::new("kv", Some("crash".into()), Duration::from_secs(3600)));
        checks.begin(p.clone());
        p.tally.outcome(&Outcome::Ok(None));
        p.tally.outcome(&Outcome::Info);
        p.tally.result(Some(&Error::new(ErrorKind::Conflict, "taken")));
        p.tally.result(Some(&Error::new(ErrorKind::Timeout, "slow")));
        assert_eq!(p.tally.counts(), (1, 1, 2));
        assert!(p.fraction() < 0.01 && p.verdict().is_none());

        p.land(Verdict { valid: false, summary: "k1 is not linearizable".into() });
        let seen = checks.latest().unwrap();
        assert_eq!(seen.verdict().map(|v| v.valid), Some(false));
        assert_eq!(seen.fraction(), 1.0, "a judged check is complete");

        checks.begin(Arc::new(Progress::new("chat", None, Duration::from_secs(1))));
        assert_eq!(checks.latest().unwrap().what, "chat");
        assert!(checks.latest().unwrap().verdict().is_none(), "the next check starts without a verdict");
    }
}
