//! The nemesis's fault schedule as a pure function of seed, fault kinds, interval and node
//! count: same inputs, same faults on the same nodes at the same offsets. Each round of
//! `kinds.len()` faults uses every kind once, in an order drawn from the seed, so a short run
//! still sees every kind. No clock, no I/O.

use crate::error::{Error, Result};
use crate::proto::{node_name, NodeId};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Crash,
    Pause,
    Partition,
    Slow,
    Corrupt,
    KillAll,
}

impl Kind {
    pub const ALL: [Kind; 6] = [Kind::Crash, Kind::Pause, Kind::Partition, Kind::Slow, Kind::Corrupt, Kind::KillAll];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Crash => "crash",
            Kind::Pause => "pause",
            Kind::Partition => "partition",
            Kind::Slow => "slow",
            Kind::Corrupt => "corrupt",
            Kind::KillAll => "kill-all",
        }
    }
}

/// `crash,pause,partition` → kinds, in the order given, without repeats.
pub fn parse_kinds(s: &str) -> Result<Vec<Kind>> {
    let mut out = Vec::new();
    for w in s.split([',', ' ']).filter(|w| !w.is_empty()) {
        let k = Kind::ALL.into_iter().find(|k| k.name() == w).ok_or_else(|| {
            Error::usage(format!("nemesis: unknown fault `{w}` (crash, pause, partition, slow, corrupt, kill-all)"))
        })?;
        if !out.contains(&k) {
            out.push(k);
        }
    }
    if out.is_empty() {
        return Err(Error::usage("nemesis: name at least one fault, e.g. --faults crash,partition"));
    }
    Ok(out)
}

/// One fault: what, on which nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    Crash(NodeId),
    Pause(NodeId),
    /// The first group cut off from the second.
    Partition(Vec<NodeId>, Vec<NodeId>),
    Slow(NodeId),
    Corrupt(NodeId),
    KillAll,
}

impl Fault {
    pub fn kind(&self) -> Kind {
        match self {
            Fault::Crash(_) => Kind::Crash,
            Fault::Pause(_) => Kind::Pause,
            Fault::Partition(..) => Kind::Partition,
            Fault::Slow(_) => Kind::Slow,
            Fault::Corrupt(_) => Kind::Corrupt,
            Fault::KillAll => Kind::KillAll,
        }
    }

    /// As the shell would type it: `crash n2`, `partition n1 | n2,n3`.
    pub fn describe(&self) -> String {
        let names = |g: &[NodeId]| g.iter().map(|n| node_name(*n)).collect::<Vec<_>>().join(",");
        match self {
            Fault::Crash(n) => format!("crash {}", node_name(*n)),
            Fault::Pause(n) => format!("pause {}", node_name(*n)),
            Fault::Partition(a, b) => format!("partition {} | {}", names(a), names(b)),
            Fault::Slow(n) => format!("slow {} --delay {}ms", node_name(*n), SLOW_MS),
            Fault::Corrupt(n) => format!("corrupt {} {}", node_name(*n), CORRUPT_KEY),
            Fault::KillAll => "kill-all".into(),
        }
    }
}

/// What a slowed node adds to every message to its peers.
pub const SLOW_MS: u64 = 200;
/// The key `corrupt` damages: one no check reads, so the damage is what `repair` shows.
pub const CORRUPT_KEY: &str = "nemesis:victim";

/// One step: a fault starting at `at` after the nemesis starts and healed at `heal`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub at: Duration,
    pub heal: Duration,
    pub fault: Fault,
}

/// splitmix64: small, fast, and the same everywhere (no dependency on a crate's algorithm
/// staying put between versions, which would break "same seed, same schedule").
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// The schedule, step by step, for as long as the caller takes steps. A fault starts half an
/// interval in and lasts half an interval, so the cluster has as long to recover as it was hurt.
pub fn schedule(seed: u64, kinds: &[Kind], every: Duration, nodes: &[NodeId]) -> impl Iterator<Item = Step> {
    let mut rng = Rng::new(seed);
    let kinds = kinds.to_vec();
    let nodes = nodes.to_vec();
    let mut round: Vec<Kind> = Vec::new();
    (0u32..).map(move |i| {
        if round.is_empty() {
            round = kinds.clone();
            // Fisher–Yates, drawn from the seed; popped from the back.
            for j in (1..round.len()).rev() {
                round.swap(j, rng.below(j as u64 + 1) as usize);
            }
        }
        let kind = round.pop().unwrap_or(Kind::Crash);
        let at = every * i + every / 2;
        let heal = at + every / 2;
        let pick = |rng: &mut Rng| nodes[rng.below(nodes.len() as u64) as usize];
        let fault = match kind {
            Kind::Crash => Fault::Crash(pick(&mut rng)),
            Kind::Pause => Fault::Pause(pick(&mut rng)),
            Kind::Slow => Fault::Slow(pick(&mut rng)),
            Kind::Corrupt => Fault::Corrupt(pick(&mut rng)),
            Kind::KillAll => Fault::KillAll,
            Kind::Partition => {
                // A minority (at least one node) on one side.
                let mut order = nodes.clone();
                for j in (1..order.len()).rev() {
                    order.swap(j, rng.below(j as u64 + 1) as usize);
                }
                let size = 1 + rng.below(((order.len() as u64).saturating_sub(1) / 2).max(1)) as usize;
                let mut minority = order[..size.min(order.len())].to_vec();
                let mut rest = order[size.min(order.len())..].to_vec();
                minority.sort_unstable();
                rest.sort_unstable();
                Fault::Partition(minority, rest)
            }
        };
        Step { at, heal, fault }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first(seed: u64, kinds: &[Kind], n: usize) -> Vec<Step> {
        schedule(seed, kinds, Duration::from_secs(5), &[1, 2, 3]).take(n).collect()
    }

    #[test]
    fn the_same_seed_gives_the_same_schedule() {
        let kinds = parse_kinds("crash,pause,partition,slow").unwrap();
        assert_eq!(first(7, &kinds, 40), first(7, &kinds, 40));
        assert_ne!(first(7, &kinds, 40), first(8, &kinds, 40));
    }

    #[test]
    fn every_kind_appears_in_each_round_and_no_other() {
        let kinds = parse_kinds("crash,pause,partition").unwrap();
        for seed in 0..20 {
            let steps = first(seed, &kinds, 6);
            for round in steps.chunks(3) {
                let mut seen: Vec<Kind> = round.iter().map(|s| s.fault.kind()).collect();
                seen.sort();
                assert_eq!(seen, [Kind::Crash, Kind::Pause, Kind::Partition], "seed {seed}");
            }
        }
    }

    #[test]
    fn faults_are_spaced_by_the_interval_and_healed_before_the_next() {
        let steps = first(1, &Kind::ALL, 12);
        for (i, s) in steps.iter().enumerate() {
            assert_eq!(s.at, Duration::from_millis(5000 * i as u64 + 2500));
            assert!(s.heal <= s.at + Duration::from_millis(2500));
        }
    }

    #[test]
    fn a_partition_leaves_a_majority_on_one_side() {
        for seed in 0..50 {
            for s in first(seed, &[Kind::Partition], 3) {
                let Fault::Partition(a, b) = s.fault else { panic!() };
                assert!(!a.is_empty() && b.len() > a.len(), "{a:?} | {b:?}");
            }
        }
    }

    #[test]
    fn unknown_faults_are_refused() {
        assert!(parse_kinds("crash,flood").is_err());
        assert!(parse_kinds("").is_err());
        assert_eq!(parse_kinds("kill-all,crash,crash").unwrap(), [Kind::KillAll, Kind::Crash]);
    }
}
