//! A follower's watch on its leader, so that a crashed leader is replaced about 200 ms after it
//! was last heard rather than 300–450 ms. openraft 0.9 starts an election only on its own tick
//! (every 1.5 heartbeats), once the leader lease (the election timeout maximum) *and then* a
//! random election timeout have passed since the leader was last heard. Yet the other voters
//! grant a vote as soon as the lease alone has passed. So this task asks for an election at that
//! moment, after a short random delay that keeps two followers from splitting the vote. It reads
//! openraft's own lease clock and only calls `trigger().elect()`, which Raft always allows: what
//! is elected and committed stays openraft's to decide.

use super::types::Raft;
use crate::proto::NodeId;
use openraft::ServerState;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// How often the leader's silence is checked: the election starts at most this late.
const POLL: Duration = Duration::from_millis(10);
/// A gap this long between two checks means this process was paused (SIGSTOP) or starved.
/// Its own view of the leader is then stale, so the leader gets a whole lease to be heard again
/// before it is given up on.
const STARVED: Duration = Duration::from_millis(50);
/// The random delay after the lease is drawn from 0..SPREAD, anew after every election.
const SPREAD: Duration = Duration::from_millis(40);
/// Past the lease by at least this much, so the other voters (who heard the last heartbeat at
/// about the same moment) have let their lease go too and grant the vote.
const MARGIN: Duration = Duration::from_millis(5);

pub async fn run(raft: Raft, id: NodeId, mut shutdown: watch::Receiver<bool>) {
    let lease = Duration::from_millis(raft.config().election_timeout_max);
    let mut watch = Watch::new(lease, Instant::now(), random_delay());
    loop {
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = shutdown.changed() => return,
        }
        // The metrics say cheaply whether this node follows at all; only then is the lease clock
        // asked for, a round trip through openraft's core that a busy leader need not serve.
        if raft.metrics().borrow().state != ServerState::Follower {
            watch.due(Instant::now(), None, random_delay);
            continue;
        }
        let heard = raft
            .with_raft_state(move |s| {
                let voter = s.membership_state.effective().voter_ids().any(|v| v == id);
                (s.server_state == ServerState::Follower && voter).then(|| s.vote_last_modified()).flatten()
            })
            .await;
        // An error means openraft has shut down: nothing left to watch.
        let Ok(heard) = heard else { return };
        if watch.due(Instant::now(), heard, random_delay) {
            tracing::info!("leader silent for the whole lease: calling an election");
            let _ = raft.trigger().elect().await;
        }
    }
}

/// The decision, apart from the clock and openraft, so it can be tested with chosen times.
struct Watch {
    lease: Duration,
    last_check: Instant,
    /// No election before this: one per lease at most, and none right after a pause.
    not_before: Instant,
    delay: Duration,
}

impl Watch {
    fn new(lease: Duration, now: Instant, delay: Duration) -> Self {
        Watch { lease, last_check: now, not_before: now, delay }
    }

    /// Whether to call an election at `now`, given when this follower last heard its leader
    /// (None when it is not a following voter).
    fn due(&mut self, now: Instant, heard: Option<Instant>, next_delay: impl FnOnce() -> Duration) -> bool {
        if now.saturating_duration_since(self.last_check) > STARVED {
            self.not_before = now + self.lease;
        }
        self.last_check = now;
        let Some(heard) = heard else { return false };
        if now < self.not_before || now < heard + self.lease + MARGIN + self.delay {
            return false;
        }
        // A failed election is openraft's to retry, on its own timer.
        self.not_before = now + self.lease;
        self.delay = next_delay();
        true
    }
}

fn random_delay() -> Duration {
    let r = RandomState::new().build_hasher().finish();
    SPREAD.mul_f64((r % 1000) as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEASE: Duration = Duration::from_millis(200);
    const DELAY: Duration = Duration::from_millis(20);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Checks every POLL from `from` to `to` with the leader last heard at `heard`; returns the
    /// offsets at which an election was called.
    fn run(w: &mut Watch, t0: Instant, from: u64, to: u64, heard: Option<Instant>) -> Vec<u64> {
        (from..=to).step_by(10).filter(|t| w.due(t0 + ms(*t), heard, || DELAY)).collect()
    }

    #[test]
    fn a_silent_leader_is_given_up_once_the_lease_and_the_delay_have_passed() {
        let t0 = Instant::now();
        let mut w = Watch::new(LEASE, t0, DELAY);
        // Heard at 0: the lease ends at 200, the election is due at 225 and called at the next
        // check; then not again within a lease.
        assert_eq!(run(&mut w, t0, 10, 400, Some(t0)), vec![230]);
    }

    #[test]
    fn a_leader_heard_regularly_is_never_given_up() {
        let t0 = Instant::now();
        let mut w = Watch::new(LEASE, t0, DELAY);
        for t in (10..2000).step_by(10) {
            let heard = t0 + ms(t / 50 * 50);
            assert!(!w.due(t0 + ms(t), Some(heard), || DELAY), "at {t} ms");
        }
    }

    #[test]
    fn no_election_while_not_a_following_voter() {
        let t0 = Instant::now();
        let mut w = Watch::new(LEASE, t0, DELAY);
        assert!(run(&mut w, t0, 10, 1000, None).is_empty());
    }

    #[test]
    fn after_a_pause_the_leader_gets_a_whole_lease_to_be_heard() {
        let t0 = Instant::now();
        let mut w = Watch::new(LEASE, t0, DELAY);
        assert!(run(&mut w, t0, 10, 100, Some(t0)).is_empty());
        // Stopped from 100 to 5000 ms: on waking, the leader was last heard long ago, but only
        // because this node was not listening.
        assert!(!w.due(t0 + ms(5000), Some(t0), || DELAY));
        let heard_again = t0 + ms(5040);
        assert!(run(&mut w, t0, 5010, 5190, Some(t0)).is_empty(), "no election within a lease of waking");
        // Heard again at 5040: silent for a lease and the delay from then on, it is given up.
        assert_eq!(run(&mut w, t0, 5200, 5400, Some(heard_again)), vec![5270]);
    }
}
