//! Each property holds on a good history and fails on one edited to break it.

use super::*;

fn msg(seq: u64, id: u64) -> ChatMessage {
    ChatMessage { seq, id, from: "c".into(), text: format!("m{id}"), at_ms: seq }
}

fn chat_logs() -> (Vec<Sent>, Vec<(NodeId, Vec<ChatMessage>)>) {
    let log: Vec<ChatMessage> = (1..=5).map(|i| msg(10 + i, 100 + i)).collect();
    let sent = (1..=5).map(|i| Sent { id: 100 + i, seq: (i != 3).then_some(10 + i) }).collect();
    (sent, vec![(1, log.clone()), (2, log.clone()), (3, log)])
}

#[test]
fn chat_holds_on_identical_gapless_logs() {
    let (sent, logs) = chat_logs();
    assert_eq!(check_chat(10, &sent, &logs), Vec::<String>::new());
}

#[test]
fn chat_fails_on_a_reorder_a_gap_a_duplicate_or_a_lost_ack() {
    let (sent, logs) = chat_logs();
    let mut reordered = logs.clone();
    reordered[2].1.swap(1, 2);
    assert!(!check_chat(10, &sent, &reordered).is_empty());
    let mut gap = logs.clone();
    for (_, l) in gap.iter_mut() {
        l.remove(2);
    }
    assert!(check_chat(10, &sent, &gap).iter().any(|p| p.contains("gap")));
    let mut twice = logs.clone();
    for (_, l) in twice.iter_mut() {
        l.push(msg(16, 101));
    }
    assert!(check_chat(10, &sent, &twice).iter().any(|p| p.contains("twice")));
    let mut lost = logs;
    for (_, l) in lost.iter_mut() {
        l[1].id = 999;
    }
    assert!(check_chat(10, &sent, &lost).iter().any(|p| p.contains("missing")));
}

fn grant(owner: &str, token: u64, from: u64, to: u64) -> Grant {
    Grant { owner: owner.into(), token, invoked_us: from - 1, granted_us: from, released_us: Some(to), ttl_us: 10_000 }
}

#[test]
fn locks_hold_on_one_holder_at_a_time_with_rising_tokens() {
    let g = [grant("a", 1, 10, 20), grant("b", 2, 25, 30), grant("a", 3, 31, 40)];
    assert_eq!(check_locks(&g), Vec::<String>::new());
}

#[test]
fn locks_fail_on_two_holders_at_once_or_a_falling_token() {
    let overlap = [grant("a", 1, 10, 20), grant("b", 2, 15, 30)];
    assert!(check_locks(&overlap).iter().any(|p| p.contains("at once")));
    let falling = [grant("a", 5, 10, 20), grant("b", 2, 25, 30)];
    // The same owner acquiring again renews its grant: the same token is no problem.
    assert_eq!(check_locks(&[grant("a", 5, 10, 20), grant("a", 5, 25, 30)]), Vec::<String>::new());
    assert!(check_locks(&[grant("a", 5, 10, 20), grant("b", 5, 25, 30)]).iter().any(|p| p.contains("twice")));
    assert!(check_locks(&falling).iter().any(|p| p.contains("increase")));
    // A lease that ran out ends the holding even without a release.
    let lapsed = Grant { released_us: None, ttl_us: 5, ..grant("a", 1, 10, 0) };
    assert_eq!(check_locks(&[lapsed, grant("b", 2, 20, 30)]), Vec::<String>::new());
}

fn queue() -> QueueHistory {
    QueueHistory {
        pushed: vec!["x".into(), "y".into()],
        maybe_pushed: vec!["z".into()],
        delivered: vec![("x".into(), 1, 10), ("y".into(), 2, 11), ("y".into(), 2, 30)],
        acked: vec![(1, 12), (2, 40)],
    }
}

#[test]
fn queues_hold_when_every_ack_is_delivered_and_nothing_comes_back() {
    assert_eq!(check_queue(&queue()), Vec::<String>::new());
}

#[test]
fn queues_fail_on_a_lost_push_a_stranger_or_an_acked_item_back() {
    let mut lost = queue();
    lost.delivered.retain(|(i, ..)| i != "x");
    lost.acked.retain(|(id, _)| *id != 1);
    assert!(check_queue(&lost).iter().any(|p| p.contains("never delivered")));
    let mut stranger = queue();
    stranger.delivered.push(("w".into(), 9, 50));
    assert!(check_queue(&stranger).iter().any(|p| p.contains("never pushed")));
    let mut back = queue();
    back.delivered.push(("x".into(), 1, 60));
    assert!(check_queue(&back).iter().any(|p| p.contains("after its ack")));
}
