//! Network faults a node applies to its own outgoing peer traffic: links cut (partition,
//! isolate), delay with jitter, and random loss. Both ends of a cut drop what they would send,
//! so the cut is two-way while clients can still reach every node. Set by an admin request.

use crate::proto::{Faults, NodeId};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;
use std::time::Duration;

/// What happens to one message to a peer.
pub enum Verdict {
    Send,
    /// Send after this long.
    Delay(Duration),
    /// Never arrives.
    Drop,
}

#[derive(Default)]
pub struct FaultFilter {
    faults: RwLock<Faults>,
    rng: AtomicU64,
}

impl FaultFilter {
    pub fn set(&self, faults: Faults) {
        *self.faults.write().unwrap() = faults;
    }

    pub fn get(&self) -> Faults {
        self.faults.read().unwrap().clone()
    }

    /// Decides the fate of a message to `peer`.
    pub fn judge(&self, peer: NodeId) -> Verdict {
        let f = self.faults.read().unwrap();
        if f.cut.contains(&peer) {
            return Verdict::Drop;
        }
        let slow = f.slow.iter().find(|s| s.to.is_none() || s.to == Some(peer));
        let Some(s) = slow else { return Verdict::Send };
        let r = self.next();
        if (r % 10_000) < (s.loss_pct * 100.0) as u64 {
            return Verdict::Drop;
        }
        let jitter = if s.jitter_ms > 0 { (r >> 16) % (2 * s.jitter_ms + 1) } else { 0 };
        let ms = (s.delay_ms + jitter).saturating_sub(s.jitter_ms);
        if ms == 0 {
            Verdict::Send
        } else {
            Verdict::Delay(Duration::from_millis(ms))
        }
    }

    /// splitmix64 over a counter: cheap, lock-free, good enough to spread losses.
    fn next(&self) -> u64 {
        let mut z = self.rng.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed).wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Slow;

    #[test]
    fn cut_links_drop_and_slow_links_delay() {
        let f = FaultFilter::default();
        assert!(matches!(f.judge(2), Verdict::Send));
        f.set(Faults { cut: vec![2], slow: vec![Slow { to: Some(3), delay_ms: 100, jitter_ms: 0, loss_pct: 0.0 }] });
        assert!(matches!(f.judge(2), Verdict::Drop));
        assert!(matches!(f.judge(3), Verdict::Delay(d) if d == Duration::from_millis(100)));
        assert!(matches!(f.judge(4), Verdict::Send));
        f.set(Faults { cut: vec![], slow: vec![Slow { to: None, delay_ms: 0, jitter_ms: 0, loss_pct: 50.0 }] });
        let dropped = (0..10_000).filter(|_| matches!(f.judge(1), Verdict::Drop)).count();
        assert!((4000..6000).contains(&dropped), "about half dropped: {dropped}");
    }
}
