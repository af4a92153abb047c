//! A follower's watch on its leader, so that a crashed leader is replaced about 200 ms after it
//! was last heard rather than 300–450 ms. openraft 0.9 starts an election only on its own tick
//! (every 1.5 heartbeats), once the leader lease (the election timeout maximum) *and then* a
//! random election timeout have passed since the leader was last heard. Yet the other voters
//! grant a vote as soon as the lease alone has passed. So this task asks for an election at that
//! moment, after a short random delay that keeps two followers from splitting the vote. It reads
//! openraft's own lease clock and only calls `trigger().elect()`, which Raft always allows: what
//! is elected and committed stays openraft's to decide.
//!
//! On waking from a pause (SIGSTOP, a starved process) openraft's own tick is due at once and
//! fired before the first heartbeat was read, so the woken follower deposed a healthy leader.
//! This task notices the gap first, right after its own timer, before the core has run, and
//! holds openraft's elections off for one lease (`runtime_config().elect(false)`).

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
/// Its own view of the leader is then stale, so the leader gets two leases to be heard again
/// before it is given up on.
const STARVED: Duration = Duration::from_millis(50);
/// Leases a leader gets to be heard again after a gap: a pause longer than QUIC's idle timeout
/// (1.5 s) closed the connection, and the leader must notice, back off (100 ms) and dial again
/// before its next heartbeat arrives.
const LEASES_AFTER_GAP: u32 = 2;
/// The random delay after the lease is drawn from 0..SPREAD, anew after every election.
const SPREAD: Duration = Duration::from_millis(40);
/// Past the lease by at least this much, so the other voters (who heard the last heartbeat at
/// about the same moment) have let their lease go too and grant the vote.
const MARGIN: Duration = Duration::from_millis(5);

pub async fn run(raft: Raft, id: NodeId, shutdown: watch::Receiver<bool>) {
    tokio::join!(watch_leader(raft.clone(), id, shutdown.clone()), hold_elections_after_gaps(raft, shutdown));
}

async fn watch_leader(raft: Raft, id: NodeId, mut shutdown: watch::Receiver<bool>) {
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

/// Holds openraft's own elections off for a lease after a gap in this loop's timer. It awaits
/// nothing but that timer, so on waking it runs in the same turn as openraft's tick, before the
/// core (which hears of the tick through a channel) can act on it.
async fn hold_elections_after_gaps(raft: Raft, mut shutdown: watch::Receiver<bool>) {
    let lease = Duration::from_millis(raft.config().election_timeout_max);
    let mut woke = Instant::now();
    let mut held_until: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = shutdown.changed() => return,
        }
        let now = Instant::now();
        if now.saturating_duration_since(woke) > STARVED {
            raft.runtime_config().elect(false);
            held_until = Some(now + lease * LEASES_AFTER_GAP);
        } else if held_until.is_some_and(|until| now >= until) {
            raft.runtime_config().elect(true);
            held_until = None;
        }
        woke = now;
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
        // Only a leader still within its lease when this node stopped listening gets the grace:
        // one already silent before the gap is dead to us either way, and a machine starved
        // again and again (CI) must not keep postponing the election of a dead leader.
        let starved = now.saturating_duration_since(self.last_check) > STARVED;
        if starved && heard.is_some_and(|h| h + self.lease > self.last_check) {
            self.not_before = now + self.lease * LEASES_AFTER_GAP;
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
    fn a_leader_silent_before_the_process_starved_gets_no_second_grace() {
        let t0 = Instant::now();
        let mut w = Watch::new(LEASE, t0, DELAY);
        assert!(run(&mut w, t0, 10, 190, Some(t0)).is_empty());
        // Starved from 190 to 260, the leader still within its lease at 190: two leases of grace.
        assert!(!w.due(t0 + ms(260), Some(t0), || DELAY));
        assert!(run(&mut w, t0, 270, 290, Some(t0)).is_empty());
        // Starved again from 290 to 360: the leader was silent past its lease by then.
        assert!(!w.due(t0 + ms(360), Some(t0), || DELAY));
        assert_eq!(run(&mut w, t0, 370, 800, Some(t0)), vec![660], "the election waits for the first grace only");
    }

    #[test]
    fn after_a_pause_the_leader_gets_two_leases_to_be_heard() {
        let t0 = Instant::now();
        let mut w = Watch::new(LEASE, t0, DELAY);
        assert!(run(&mut w, t0, 10, 100, Some(t0)).is_empty());
        // Stopped from 100 to 5000 ms: on waking, the leader was last heard long ago, but only
        // because this node was not listening.
        assert!(!w.due(t0 + ms(5000), Some(t0), || DELAY));
        let heard_again = t0 + ms(5040);
        assert!(run(&mut w, t0, 5010, 5390, Some(t0)).is_empty(), "no election within two leases of waking");
        // Heard again at 5040 and silent from then on: given up once the grace is over.
        assert_eq!(run(&mut w, t0, 5400, 5590, Some(heard_again)), vec![5400]);
    }
}
