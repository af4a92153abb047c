//! The anti-entropy coordinator behind `verify` and `repair`: it surveys every node's Merkle tree,
//! votes for the tree a majority shares, diffs each departing node against it key by key, and
//! plans the restore that node is asked to make. It reaches nodes only through `Client` and
//! `proto`, and shows nothing (rendering is the shell's).
//!
//! It must not be trusted to be right about time: a survey races with writes, so the majority's
//! copy it read may be older than a node's. A plan therefore carries the store revision the
//! majority's copy was read at, and each node applies it only where its own rule proves that
//! copy current (see `node::repair`); a plan built from a stale survey can leave keys alone but
//! never roll one back.

use super::calls::unexpected;
use super::{Client, Target};
use crate::error::{Error, ErrorKind, Result};
use crate::proto::merkle::{differing, leaf_of, range_name, Hash};
use crate::proto::{node_name, KeyValue, NodeId, Request, Response};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// Test-only: the survey reads the leader this many milliseconds after the other nodes, so that
/// under a stream of writes the majority's copy is reliably older than the leader's — the timing
/// in which a repair that trusted the majority rolled acknowledged writes back (tests/repair.rs).
/// Read nowhere else.
const TEST_LEADER_DELAY: &str = "DSH_TEST_SURVEY_LEADER_DELAY_MS";

/// Some keys of one node and the store revision (key writes applied) they were read at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeysAt {
    pub revision: u64,
    pub keys: BTreeMap<String, KeyValue>,
}

impl KeysAt {
    pub fn new(revision: u64, keys: impl IntoIterator<Item = KeyValue>) -> Self {
        KeysAt { revision, keys: keys.into_iter().map(|kv| (kv.key.clone(), kv)).collect() }
    }
}

/// The keys of some leaves on one node and on a node holding the majority's copy of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub reference: NodeId,
    pub mine: KeysAt,
    pub theirs: KeysAt,
}

/// One node's tree and, if it departs from the majority's, where.
#[derive(Debug, Clone)]
pub struct NodeView {
    pub id: NodeId,
    /// Merkle leaves and key count; `None`: the node did not answer.
    pub tree: Option<(Vec<Hash>, u64)>,
    /// Leaves where this node departs from the majority, with the keys that differ in each.
    pub differing: Vec<(usize, Vec<String>)>,
    /// Its keys in those leaves beside the majority's, as read (what `repair` plans from).
    pub parts: Vec<Part>,
}

impl NodeView {
    pub fn new(id: NodeId, tree: Option<(Vec<Hash>, u64)>) -> Self {
        NodeView { id, tree, differing: vec![], parts: vec![] }
    }
}

#[derive(Debug, Clone)]
pub struct Survey {
    /// In node id order.
    pub nodes: Vec<NodeView>,
    /// Leaves where the nodes disagree and no copy has a majority (writes in flight, or damage
    /// on more than one node): nothing to repair them from.
    pub unsettled: Vec<usize>,
}

impl Survey {
    /// Every node answered and every leaf of every tree is the same.
    pub fn equal(&self) -> bool {
        self.unsettled.is_empty() && self.nodes.iter().all(|n| n.tree.is_some() && n.differing.is_empty())
    }

    /// `n2 departs in range 3a; n3 did not answer`, for messages.
    pub fn departures(&self) -> String {
        let ranges = |leaves: &mut dyn Iterator<Item = usize>| leaves.map(range_name).collect::<Vec<_>>().join(", ");
        let mut parts = Vec::new();
        for n in &self.nodes {
            if n.tree.is_none() {
                parts.push(format!("{} did not answer", node_name(n.id)));
            } else if !n.differing.is_empty() {
                parts.push(format!(
                    "{} departs in range {}",
                    node_name(n.id),
                    ranges(&mut n.differing.iter().map(|d| d.0))
                ));
            }
        }
        if !self.unsettled.is_empty() {
            parts.push(format!("no majority in range {}", ranges(&mut self.unsettled.iter().copied())));
        }
        parts.join("; ")
    }
}

/// Per leaf, whose copy the majority holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Votes {
    /// For each leaf where the answering nodes disagree: a node holding the copy that more than
    /// half of all nodes share.
    pub reference: BTreeMap<usize, NodeId>,
    /// Leaves where they disagree and no copy has such a majority.
    pub unsettled: Vec<usize>,
}

/// Votes leaf by leaf, so that writes in flight in some leaves (where the nodes may not agree
/// yet) do not keep a damaged copy elsewhere from being found and repaired. `trees` holds every
/// node, `None` for one that did not answer: a majority is of all nodes, not of those up.
pub fn vote(trees: &[(NodeId, Option<&[Hash]>)]) -> Votes {
    let up: Vec<(NodeId, &[Hash])> = trees.iter().filter_map(|(id, t)| Some((*id, (*t)?))).collect();
    let mut votes = Votes::default();
    let Some((_, first)) = up.first() else { return votes };
    let contested: BTreeSet<usize> = up.iter().flat_map(|(_, t)| differing(t, first)).collect();
    for leaf in contested {
        let mut groups: BTreeMap<Hash, Vec<NodeId>> = BTreeMap::new();
        for (id, t) in &up {
            groups.entry(t[leaf]).or_default().push(*id);
        }
        match groups.values().find(|ids| ids.len() * 2 > trees.len()) {
            Some(ids) => {
                votes.reference.insert(leaf, ids[0]);
            }
            None => votes.unsettled.push(leaf),
        }
    }
    votes
}

/// The keys that differ between two copies, per leaf of `leaves` (a leaf whose keys agree by
/// the time they were read is listed with none).
pub fn diff(leaves: &[usize], mine: &KeysAt, theirs: &KeysAt) -> Vec<(usize, Vec<String>)> {
    let all: BTreeSet<&String> = mine.keys.keys().chain(theirs.keys.keys()).collect();
    leaves
        .iter()
        .map(|&leaf| {
            let keys = all
                .iter()
                .filter(|k| leaf_of(k) == leaf && mine.keys.get(**k) != theirs.keys.get(**k))
                .map(|k| (*k).clone())
                .collect();
            (leaf, keys)
        })
        .collect()
}

/// What a departing node is asked to take: the majority's copy (present or absent) of every key
/// that differs, and the revision it was read at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub set: Vec<KeyValue>,
    pub remove: Vec<String>,
    pub revision: u64,
}

impl Plan {
    pub fn request(self) -> Request {
        Request::Repair { set: self.set, remove: self.remove, revision: self.revision }
    }
}

/// The plan for a node whose copy is `mine`, against the majority's `theirs`; `None` when the
/// copies agree.
pub fn plan(mine: &KeysAt, theirs: &KeysAt) -> Option<Plan> {
    let set: Vec<KeyValue> = theirs.keys.values().filter(|kv| mine.keys.get(&kv.key) != Some(*kv)).cloned().collect();
    let remove: Vec<String> = mine.keys.keys().filter(|k| !theirs.keys.contains_key(*k)).cloned().collect();
    (!set.is_empty() || !remove.is_empty()).then_some(Plan { set, remove, revision: theirs.revision })
}

/// What one node did with its plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeRepair {
    pub id: NodeId,
    /// Keys restored from the majority's copy.
    pub fixed: u32,
    /// Keys left alone because this node's copy is newer than the majority's view.
    pub kept: u32,
    /// Keys left alone because the node could not prove the majority's copy current for it.
    pub unsure: u32,
}

pub struct RepairRun {
    pub repairs: Vec<NodeRepair>,
    /// The survey after repairing.
    pub after: Survey,
}

/// Waits (briefly) until every node that answers has applied what the leader had committed
/// when we started, so trees are compared at the same point of the log, not mid-replication.
/// Returns the leader, if one answered.
async fn settle(client: &Client) -> Option<NodeId> {
    let until = Instant::now() + Duration::from_secs(3);
    let mut target = None;
    let mut leader = None;
    while Instant::now() < until {
        let all = client.status_all(Duration::from_millis(500)).await;
        let up: Vec<_> = all.iter().filter_map(|(_, r)| r.as_ref().ok()).collect();
        if target.is_none() {
            let l = up.iter().filter(|s| s.role == "leader").max_by_key(|s| s.term);
            (target, leader) = (l.map(|l| l.commit_index), l.map(|l| l.id));
        }
        match target {
            Some(t) if up.iter().all(|s| s.applied_index >= t) => break,
            None => break,
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    leader
}

/// Holds a read of the leader back by the test-only delay, if one is set.
async fn test_delay(id: NodeId, leader: Option<NodeId>) {
    let ms = std::env::var(TEST_LEADER_DELAY).ok().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    if ms > 0 && Some(id) == leader {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
}

async fn leaf_keys(client: &Client, node: NodeId, leaves: &[usize]) -> Result<KeysAt> {
    let leaves = leaves.iter().map(|l| *l as u32).collect();
    match client.call(Target::Node(node), Request::LeafKeys { leaves }).await?.value {
        Response::LeafKeys { revision, keys } => Ok(KeysAt::new(revision, keys)),
        other => Err(unexpected(other)),
    }
}

async fn merkle(client: &Client, id: NodeId, leader: Option<NodeId>) -> Result<Option<(Vec<Hash>, u64)>> {
    test_delay(id, leader).await;
    match client.call(Target::Node(id), Request::Merkle).await {
        Ok(r) => match r.value {
            Response::Merkle { leaves, keys } => Ok(Some((leaves, keys))),
            other => Err(unexpected(other)),
        },
        Err(_) => Ok(None),
    }
}

/// Every node's tree (all read at once, so they are compared as nearly as possible at one
/// moment) and, for nodes that depart from the majority's, what differs.
pub async fn survey(client: &Client) -> Result<Survey> {
    let leader = settle(client).await;
    let ids = client.node_ids();
    let trees = futures::future::join_all(ids.iter().map(|&id| merkle(client, id, leader))).await;
    let mut nodes = Vec::new();
    for (id, tree) in ids.into_iter().zip(trees) {
        nodes.push(NodeView::new(id, tree?));
    }
    let trees: Vec<(NodeId, Option<&[Hash]>)> =
        nodes.iter().map(|n| (n.id, n.tree.as_ref().map(|t| t.0.as_slice()))).collect();
    let votes = vote(&trees);
    let leaf_of_node =
        |id: NodeId, leaf: usize| nodes.iter().find(|n| n.id == id).and_then(|n| n.tree.as_ref()).map(|t| t.0[leaf]);
    // Per node, the leaves it departs in, grouped by the node whose copy it is compared with.
    let mut work: Vec<(NodeId, BTreeMap<NodeId, Vec<usize>>)> = Vec::new();
    for n in &nodes {
        let Some((leaves, _)) = &n.tree else { continue };
        let mut by_reference: BTreeMap<NodeId, Vec<usize>> = BTreeMap::new();
        for (&leaf, &r) in &votes.reference {
            if Some(leaves[leaf]) != leaf_of_node(r, leaf) {
                by_reference.entry(r).or_default().push(leaf);
            }
        }
        if !by_reference.is_empty() {
            work.push((n.id, by_reference));
        }
    }
    for (id, by_reference) in work {
        let view = nodes.iter_mut().find(|n| n.id == id).expect("surveyed");
        for (reference, leaves) in by_reference {
            test_delay(reference, leader).await;
            let theirs = leaf_keys(client, reference, &leaves).await?;
            test_delay(id, leader).await;
            let mine = leaf_keys(client, id, &leaves).await?;
            view.differing.extend(diff(&leaves, &mine, &theirs));
            view.parts.push(Part { reference, mine, theirs });
        }
        view.differing.sort();
    }
    Ok(Survey { nodes, unsettled: votes.unsettled })
}

/// A survey whose departing nodes are told so, for `events` watchers.
pub async fn verify(client: &Client) -> Result<Survey> {
    let s = survey(client).await?;
    for n in s.nodes.iter().filter(|n| !n.differing.is_empty()) {
        let ranges: Vec<String> = n.differing.iter().map(|(l, _)| range_name(*l)).collect();
        let text = format!("verify: differs from the majority in range {}", ranges.join(", "));
        let _ = client.call(Target::Node(n.id), Request::Record { kind: "divergence".into(), text }).await;
    }
    Ok(s)
}

/// Surveys, asks each departing node to take the majority's copy where it can prove it current,
/// and surveys again.
pub async fn repair(client: &Client) -> Result<RepairRun> {
    let before = survey(client).await?;
    let mut repairs = Vec::new();
    for n in &before.nodes {
        let mut done = NodeRepair { id: n.id, fixed: 0, kept: 0, unsure: 0 };
        for plan in n.parts.iter().filter_map(|p| plan(&p.mine, &p.theirs)) {
            match client.call(Target::Node(n.id), plan.request()).await?.value {
                Response::Repaired { fixed, kept, unsure } => {
                    (done.fixed, done.kept, done.unsure) = (done.fixed + fixed, done.kept + kept, done.unsure + unsure)
                }
                other => return Err(unexpected(other)),
            }
        }
        if !n.parts.is_empty() {
            repairs.push(done);
        }
    }
    let after = survey(client).await?;
    Ok(RepairRun { repairs, after })
}

/// The error a survey whose copies differ is reported with (exit status 1).
pub fn differ_error(what: &str, s: &Survey) -> Error {
    Error::new(ErrorKind::Conflict, format!("{what}: {}", s.departures()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::merkle::LeafHasher;

    fn kv(key: &str, value: &str, revision: u64) -> KeyValue {
        KeyValue { key: key.into(), value: value.into(), revision }
    }

    fn leaves(kvs: &[KeyValue]) -> Vec<Hash> {
        let mut sorted = kvs.to_vec();
        sorted.sort_by(|a, b| a.key.cmp(&b.key));
        let mut h = LeafHasher::default();
        for e in &sorted {
            h.add(&e.key, &e.value, e.revision);
        }
        h.finish()
    }

    #[test]
    fn the_majoritys_copy_wins_each_leaf() {
        let good = leaves(&[kv("a", "1", 1), kv("b", "2", 2)]);
        let bad = leaves(&[kv("a", "1~bitrot", 1), kv("b", "2", 2)]);
        let v = vote(&[(1, Some(&good)), (2, Some(&bad)), (3, Some(&good))]);
        assert_eq!(v, Votes { reference: [(leaf_of("a"), 1)].into(), unsettled: vec![] });
        // One node down, the other two agree: still a majority of three.
        let v = vote(&[(1, None), (2, Some(&bad)), (3, Some(&bad))]);
        assert_eq!(v, Votes::default(), "nothing is contested among the nodes that answered");
        let v = vote(&[(1, None), (2, Some(&bad)), (3, Some(&good))]);
        assert_eq!(v.unsettled, vec![leaf_of("a")], "one against one of three is no majority");
    }

    #[test]
    fn writes_in_flight_in_one_leaf_do_not_hide_damage_in_another() {
        // n1 (the leader) has applied a write of w the others have not; n2's copy of a is damaged.
        let (a, w) = (kv("a", "1", 1), kv("w", "old", 2));
        let n1 = leaves(&[a.clone(), kv("w", "new", 3)]);
        let n2 = leaves(&[kv("a", "1~bitrot", 1), w.clone()]);
        let n3 = leaves(&[a, w]);
        let v = vote(&[(1, Some(&n1)), (2, Some(&n2)), (3, Some(&n3))]);
        assert_ne!(leaf_of("a"), leaf_of("w"), "the example needs two leaves");
        assert_eq!(v.reference, [(leaf_of("a"), 1), (leaf_of("w"), 2)].into());
        assert!(v.unsettled.is_empty());
        // Three different copies of a leaf: no majority to repair from.
        let n3 = leaves(&[kv("a", "1", 1), kv("w", "other", 4)]);
        let v = vote(&[(1, Some(&n1)), (2, Some(&n2)), (3, Some(&n3))]);
        assert_eq!(v.unsettled, vec![leaf_of("w")]);
        assert_eq!(v.reference, [(leaf_of("a"), 1)].into());
    }

    #[test]
    fn diff_names_the_keys_that_differ_in_each_differing_leaf() {
        let mine = KeysAt::new(9, [kv("a", "1~bitrot", 1), kv("b", "2", 2), kv("extra", "x", 9)]);
        let theirs = KeysAt::new(8, [kv("a", "1", 1), kv("b", "2", 2), kv("c", "3", 3)]);
        let ls: BTreeSet<usize> = ["a", "b", "c", "extra"].map(leaf_of).into();
        let got: BTreeMap<usize, Vec<String>> =
            diff(&ls.iter().copied().collect::<Vec<_>>(), &mine, &theirs).into_iter().collect();
        // b is the same on both sides: its leaf (unless shared) is listed with no keys.
        let mut want: BTreeMap<usize, Vec<String>> = ls.iter().map(|l| (*l, vec![])).collect();
        for k in ["a", "c", "extra"] {
            want.get_mut(&leaf_of(k)).unwrap().push(k.into());
        }
        assert_eq!(got, want);
    }

    #[test]
    fn a_plan_carries_the_majoritys_copy_and_the_revision_it_was_read_at() {
        let mine = KeysAt::new(12, [kv("a", "1~bitrot", 1), kv("b", "2", 2), kv("new", "n", 12)]);
        let theirs = KeysAt::new(10, [kv("a", "1", 1), kv("b", "2", 2), kv("c", "3", 3)]);
        let p = plan(&mine, &theirs).unwrap();
        assert_eq!(p.set, vec![kv("a", "1", 1), kv("c", "3", 3)]);
        // The node decides whether `new` (written after the majority's view) goes: it will not.
        assert_eq!(p.remove, vec!["new".to_string()]);
        assert_eq!(p.revision, 10);
        assert!(matches!(p.request(), Request::Repair { revision: 10, .. }));
        assert_eq!(plan(&theirs, &theirs), None, "equal copies need no plan");
    }

    #[test]
    fn a_survey_is_equal_only_when_every_node_answered_and_nothing_differs() {
        let t = Some((leaves(&[]), 0));
        let mut s = Survey { nodes: vec![NodeView::new(1, t.clone()), NodeView::new(2, t.clone())], unsettled: vec![] };
        assert!(s.equal());
        s.nodes[1].differing = vec![(0x3a, vec!["k".into()])];
        assert!(!s.equal());
        assert_eq!(s.departures(), "n2 departs in range 3a");
        s.nodes[1] = NodeView::new(2, None);
        s.unsettled = vec![0x07];
        assert!(!s.equal());
        assert_eq!(s.departures(), "n2 did not answer; no majority in range 07");
        s.nodes[1] = NodeView::new(2, t);
        assert!(!s.equal(), "an unsettled leaf is a difference");
    }
}
