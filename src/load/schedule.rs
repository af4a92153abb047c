//! When each operation should start: closed loop (as soon as a worker is free) or open loop
//! (operation `i` is due at `start + i / rate`, whether or not the system kept up). It owns
//! where latency is counted from: open-loop latency starts at the intended time, so a stall
//! that delays later operations shows in the percentiles instead of hiding (no coordinated
//! omission). It must not run operations or record results.

use std::time::{Duration, Instant};

/// When operation `i` starts, and the instant its latency is counted from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// Closed loop: now.
    Now,
    /// Open loop: this intended start.
    At(Instant),
}

/// How far behind its intended start an operation may begin before it counts as late.
pub const LATE: Duration = Duration::from_millis(1);

#[derive(Debug, Clone)]
pub struct Schedule {
    started: Instant,
    count: Option<u64>,
    deadline: Option<Instant>,
    /// Open loop: the gap between intended starts.
    interval: Option<Duration>,
}

impl Schedule {
    pub fn new(started: Instant, count: Option<u64>, duration: Option<Duration>, rate: Option<f64>) -> Self {
        Schedule {
            started,
            count,
            deadline: duration.map(|d| started + d),
            interval: rate.map(|r| Duration::from_secs_f64(1.0 / r)),
        }
    }

    /// Operation `i`'s slot, or `None` when the run has no operation `i`.
    pub fn slot(&self, i: u64) -> Option<Slot> {
        if self.count.is_some_and(|c| i >= c) {
            return None;
        }
        match self.interval {
            None => self.deadline.is_none_or(|d| Instant::now() < d).then_some(Slot::Now),
            Some(gap) => {
                // Multiplying (not adding up gaps) keeps rounding from drifting the rate.
                let at = self.started + gap.mul_f64(i as f64);
                self.deadline.is_none_or(|d| at < d).then_some(Slot::At(at))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_loop_is_a_fixed_timetable() {
        let t = Instant::now();
        let s = Schedule::new(t, None, Some(Duration::from_secs(2)), Some(1000.0));
        assert_eq!(s.slot(0), Some(Slot::At(t)));
        assert_eq!(s.slot(1500), Some(Slot::At(t + Duration::from_millis(1500))));
        assert_eq!(s.slot(2000), None);
        let s = Schedule::new(t, Some(10), None, Some(1.0));
        assert!(s.slot(9).is_some() && s.slot(10).is_none());
        let s = Schedule::new(t, Some(3), None, None);
        assert_eq!((s.slot(2), s.slot(3)), (Some(Slot::Now), None));
    }
}
