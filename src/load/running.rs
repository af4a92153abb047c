//! The loads this process runs right now, for whoever watches them besides the progress bar
//! (the live model's load panel): a shared registry the command side registers a run in for
//! as long as it runs. It owns only the registry; it must not draw, and it knows nothing of
//! who watches (`load` sits below `live` and `shell`).

use super::record::{Live, Recorder};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The registry; clones share it.
#[derive(Clone, Default)]
pub struct Loads(Arc<Mutex<Vec<Arc<Running>>>>);

/// One run in progress.
pub struct Running {
    /// `put`, `get`, … (with a ladder's rung, `put 1000`).
    pub op: String,
    pub count: Option<u64>,
    pub duration: Option<Duration>,
    pub rec: Arc<Recorder>,
}

/// A run's place in the registry: it leaves when this is dropped (done, failed or Ctrl-C).
pub struct Registered {
    loads: Loads,
    running: Arc<Running>,
}

impl Loads {
    pub fn register(&self, running: Running) -> Registered {
        let running = Arc::new(running);
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(running.clone());
        Registered { loads: self.clone(), running }
    }

    /// The run started last, if any runs.
    pub fn current(&self) -> Option<Arc<Running>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).last().cloned()
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.loads.0.lock().unwrap_or_else(|e| e.into_inner()).retain(|r| !Arc::ptr_eq(r, &self.running));
    }
}

impl Running {
    /// The run's figures so far, and how far it is (0.0–1.0) by count or by time.
    pub fn live(&self) -> (Live, f64) {
        let l = self.rec.live();
        let progress = match (self.count, self.duration) {
            (Some(n), _) if n > 0 => (l.ops + l.errors) as f64 / n as f64,
            (_, Some(d)) if !d.is_zero() => l.elapsed.as_secs_f64() / d.as_secs_f64(),
            _ => 0.0,
        };
        (l, progress.clamp(0.0, 1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_is_there_while_registered_and_reports_its_progress() {
        let loads = Loads::default();
        assert!(loads.current().is_none());
        let rec = Arc::new(Recorder::new());
        let reg = loads.register(Running { op: "put".into(), count: Some(4), duration: None, rec: rec.clone() });
        rec.ok(Duration::from_millis(1), None);
        rec.error("timeout");
        let (l, progress) = loads.current().unwrap().live();
        assert_eq!((l.ops, l.errors, progress), (1, 1, 0.5));
        drop(reg);
        assert!(loads.current().is_none(), "a finished run leaves");
    }
}
