//! Who may do what, asserted by what the node answers: certificates of another CA and expired
//! ones are refused at the handshake; the peer protocol (`dsh-raft/1`) takes node certificates
//! only, so a client cannot vote, append or install a snapshot; faults, corrupt, repair and
//! join need an admin; one certificate holds a bounded number of connections; garbage or
//! oversized frames get a refusal while the node keeps serving everyone else. Every test keeps
//! the real CA: only the certificate presented changes.

mod common;

use common::*;
use dsh::client::{Client, Target};
use dsh::error::ErrorKind;
use dsh::net::{self, CertPaths, Endpoint, Identity, Peer, TlsFiles, Validity, ALPN_CLIENT, ALPN_RAFT};
use dsh::node::{PeerReply, PeerRequest, TypeConfig};
use dsh::proto::{Envelope, Faults, NodeStatus, Reply, Request, Response};
use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest, VoteRequest};
use openraft::{CommittedLeaderId, LogId, SnapshotMeta, StoredMembership, Vote};
use std::time::{Duration, SystemTime};

/// A connection on `alpn` to `addr`, presenting `cert`.
async fn connect(cert: &CertPaths, addr: &str, alpn: &'static [u8]) -> dsh::Result<quinn::Connection> {
    let endpoint = Endpoint::client(&TlsFiles::load(cert).unwrap()).unwrap();
    Peer::new(endpoint, addr, alpn).connection().await
}

/// Asks for the answer on a new stream, so a refusal at the handshake shows up here too.
async fn ping(cert: &CertPaths, addr: &str) -> dsh::Result<Reply> {
    let conn = connect(cert, addr, ALPN_CLIENT).await?;
    net::call(&conn, &Envelope::new(2000, Request::Ping)).await
}

#[test]
fn client_without_a_ca_issued_certificate_is_refused() {
    let c = TestCluster::start(3, 21100);
    let (_rogue_ca, rogue) = foreign_cert(&Identity::Admin { name: "mallory".into() }, &c.certs().join("ca.pem"));
    runtime().block_on(async {
        let good = c.client();
        wait_leader(&good, 3).await;
        // Trusts the real CA (so it accepts the nodes) but presents a foreign certificate: the
        // node aborts the handshake with a TLS alert (every dsh CA has the same name, so the
        // certificate is found to carry a signature the real CA did not make: decrypt_error).
        let err = ping(&rogue, &c.nodes[0].addr).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::Denied, "{err}");
        assert!(err.message.contains("not made by this cluster's CA (alert 51)"), "refused by the node: {err}");
        let bad = Client::new(&c.cluster_file_as(&rogue), Duration::from_secs(2)).unwrap();
        let err = bad.call(Target::Leader, put("intruder", "x")).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::Denied, "refused at the handshake: {err}");
        let r = good.call(Target::Leader, get("intruder")).await.unwrap();
        assert_eq!(value(&r.value), None, "nothing was written");
    });
}

#[test]
fn an_expired_certificate_is_refused_at_the_handshake() {
    let c = TestCluster::start(3, 23220);
    let day = Duration::from_secs(86_400);
    let now = SystemTime::now();
    let expired = net::issue_for(
        &c.certs(),
        &Identity::Admin { name: "old".into() },
        Validity { not_before: now - 30 * day, not_after: now - day },
    )
    .unwrap();
    runtime().block_on(async {
        wait_leader(&c.client(), 3).await;
        // TLS alert 45, certificate_expired, sent by the node.
        let err = ping(&expired, &c.nodes[0].addr).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::Denied, "{err}");
        assert!(err.message.contains("certificate expired (alert 45)"), "refused by the node: {err}");
        let fresh = c.issue(&Identity::Admin { name: "new".into() });
        ping(&fresh, &c.nodes[0].addr).await.expect("the same CA's valid certificate is taken");
    });
}

/// Raft RPCs from a leader that does not exist, at a term far ahead of the cluster's: on a
/// node that took them, each would raise its term (and the append would make it follow n9).
fn forged(term: u64) -> Vec<(&'static str, PeerRequest)> {
    let fake = 9;
    let log_id = LogId::new(CommittedLeaderId::new(term, fake), 10_000);
    let vote = VoteRequest { vote: Vote::new(term, fake), last_log_id: Some(log_id) };
    let append: AppendEntriesRequest<TypeConfig> = AppendEntriesRequest {
        vote: Vote::new_committed(term, fake),
        prev_log_id: None,
        entries: vec![],
        leader_commit: None,
    };
    let snapshot: InstallSnapshotRequest<TypeConfig> = InstallSnapshotRequest {
        vote: Vote::new_committed(term, fake),
        meta: SnapshotMeta {
            last_log_id: Some(log_id),
            last_membership: StoredMembership::default(),
            snapshot_id: "forged".into(),
        },
        offset: 0,
        data: vec![],
        done: true,
    };
    vec![
        ("Vote", PeerRequest::Vote(vote)),
        ("AppendEntries", PeerRequest::Append(append)),
        ("InstallSnapshot", PeerRequest::Snapshot(snapshot)),
    ]
}

fn terms(all: &[NodeStatus]) -> Vec<(u64, u64)> {
    let mut t: Vec<(u64, u64)> = all.iter().map(|s| (s.id, s.term)).collect();
    t.sort();
    t
}

async fn denied_events(client: &Client, node: u64) -> Vec<String> {
    let r = client.call(Target::Node(node), Request::Events { after: 0, wait_ms: 0 }).await.unwrap();
    let Response::Events { events, .. } = r.value else { panic!("expected events, got {:?}", r.value) };
    events.into_iter().filter(|e| e.kind == "denied").map(|e| e.text).collect()
}

#[test]
fn the_peer_protocol_refuses_client_and_admin_certificates_and_the_term_does_not_move() {
    let c = TestCluster::start(3, 23200);
    let alice = c.issue(&Identity::Client { name: "alice".into() });
    let admin = CertPaths::in_dir(&c.certs(), "admin");
    runtime().block_on(async {
        let client = c.client();
        let leader = wait_leader(&client, 3).await;
        let before = wait_for(&client, "every node to agree on the term", Duration::from_secs(10), |all| {
            all.len() == 3 && all.iter().all(|s| s.term == leader.term && s.leader == Some(leader.id))
        })
        .await;
        for cert in [&alice, &admin] {
            for node in &c.nodes {
                let conn = connect(cert, &node.addr, ALPN_RAFT).await.expect("the handshake itself succeeds");
                for (what, req) in forged(leader.term + 100) {
                    match net::call::<_, PeerReply>(&conn, &req).await {
                        Ok(PeerReply::Refused(e)) => {
                            assert_eq!(e.kind, ErrorKind::Denied, "{what} to n{}: {e}", node.id);
                            assert!(e.message.contains("node certificate"), "says what is needed: {e}");
                        }
                        Ok(_) => panic!("n{} answered a forged {what} from {}", node.id, cert.cert.display()),
                        Err(e) => panic!("{what} to n{}: no answer ({e}); expected a refusal", node.id),
                    }
                }
            }
        }
        // Each forged RPC was answered, so had a node taken one, its term would show it now.
        let after = wait_for(&client, "every node", Duration::from_secs(5), |all| all.len() == 3).await;
        assert_eq!(terms(&after), terms(&before), "no node's term moved");
        assert!(after.iter().all(|s| s.leader == Some(leader.id)), "the leader was not deposed: {after:#?}");
        client.call(Target::Leader, put("still", "writes")).await.unwrap();
        let seen = denied_events(&client, 1).await;
        assert!(seen.iter().any(|t| t.contains("alice") && t.contains("node certificate")), "recorded: {seen:?}");
    });
}

#[test]
fn faults_corrupt_repair_and_join_need_an_admin_certificate() {
    let c = TestCluster::start(3, 23210);
    let alice = c.issue(&Identity::Client { name: "alice".into() });
    let as_alice = c.cluster_file_path_as(&alice, "alice");
    let admin = c.file.clone();
    let run = |file: &std::path::Path, cmd: &str| {
        let out =
            std::process::Command::new(DSH).arg("--cluster").arg(file).args(["--json", "-c", cmd]).output().unwrap();
        let last = stdout(&out).lines().last().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap());
        (out.status.code(), last.unwrap_or_else(|| panic!("`{cmd}` printed nothing: {}", stderr(&out))))
    };
    runtime().block_on(async { wait_leader(&c.client(), 3).await });
    let (_, r) = run(&admin, "put k good; wait caught-up --timeout 10s; corrupt n2 k");
    assert_eq!(r["ok"], true, "an admin corrupts: {r}");

    for cmd in ["partition n1 | n2,n3", "slow n3 --delay 100ms", "heal", "corrupt n3 k", "repair"] {
        let (code, r) = run(&as_alice, cmd);
        assert_eq!(r["ok"], false, "`{cmd}` as a client: {r}");
        assert_eq!(r["error"]["kind"], "denied", "`{cmd}` as a client: {r}");
        assert!(r["error"]["message"].as_str().unwrap().contains("admin"), "says what is needed: {r}");
        assert_eq!(code, Some(1));
    }
    runtime().block_on(async {
        let alice = c.client_as(&alice);
        for req in [
            Request::SetFaults(Faults::default()),
            Request::Join { id: 7, addr: "127.0.0.1:1".into() },
            Request::Record { kind: "divergence".into(), text: "forged".into() },
            Request::Repair { set: vec![], remove: vec!["k".into()], revision: 0 },
        ] {
            let e = alice.call(Target::Node(1), req.clone()).await.unwrap_err();
            assert_eq!(e.kind, ErrorKind::Denied, "{req:?}: {e}");
        }
        // What a client may do still works with the same certificate.
        alice.call(Target::Leader, put("alice", "ok")).await.unwrap();
        let r = alice.call(Target::Node(2), stale_get("k")).await.unwrap();
        assert_ne!(value(&r.value).as_deref(), Some("good"), "the client's repair did not happen");
        let admin = c.client();
        let seen = denied_events(&admin, 1).await;
        assert!(seen.iter().any(|t| t.contains("setting faults") && t.contains("alice")), "recorded: {seen:?}");
        let faults = admin.call(Target::Node(1), Request::GetFaults).await.unwrap();
        assert!(
            matches!(faults.value, Response::Faults(f) if f.cut.is_empty()),
            "the client's partition did not happen"
        );
    });

    // The admin does each of them.
    for cmd in ["partition n1 | n2,n3", "heal", "slow n3 --delay 10ms", "heal", "repair"] {
        let (code, r) = run(&admin, cmd);
        assert_eq!((code, &r["ok"]), (Some(0), &serde_json::json!(true)), "`{cmd}` as the admin: {r}");
    }
    let (_, r) = run(&admin, "get k --from n2 --stale");
    assert_eq!(r["value"], "good", "repaired by the admin: {r}");
}

#[test]
fn one_certificate_holds_a_bounded_number_of_connections() {
    let c = TestCluster::start(1, 23230);
    let alice = c.issue(&Identity::Client { name: "alice".into() });
    let addr = c.nodes[0].addr.clone();
    runtime().block_on(async {
        wait_leader(&c.client(), 1).await;
        let endpoint = Endpoint::client(&TlsFiles::load(&alice).unwrap()).unwrap();
        let mut held = Vec::new();
        let mut refused = None;
        for i in 0..100 {
            let conn = Peer::new(endpoint.clone(), addr.clone(), ALPN_CLIENT).connection().await.unwrap();
            match net::call::<_, Reply>(&conn, &Envelope::new(2000, Request::Ping)).await {
                Ok(r) => {
                    r.result.unwrap();
                    held.push(conn);
                }
                Err(e) => {
                    refused = Some((i, e));
                    break;
                }
            }
        }
        let (n, e) = refused.expect("some connection is refused");
        assert_eq!(n, 64, "the limit is 64 connections per certificate: {e}");
        assert_eq!(e.kind, ErrorKind::Denied, "{e}");
        assert!(e.message.contains("64 connections"), "the node says why: {e}");
        // Others are not starved, and a closed connection gives its place back.
        ping(&CertPaths::in_dir(&c.certs(), "admin"), &addr).await.unwrap().result.unwrap();
        held.pop().unwrap().close(0u32.into(), b"done");
        // The node learns of the close when its packet arrives; until then the place is taken.
        let until = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let conn = Peer::new(endpoint.clone(), addr.clone(), ALPN_CLIENT).connection().await.unwrap();
            match net::call::<_, Reply>(&conn, &Envelope::new(2000, Request::Ping)).await {
                Ok(_) => break,
                Err(e) => assert!(std::time::Instant::now() < until, "the place was not given back: {e}"),
            }
        }
    });
}

async fn raw_exchange<R: serde::de::DeserializeOwned>(conn: &quinn::Connection, bytes: &[u8]) -> dsh::Result<R> {
    let (mut send, mut recv) = conn.open_bi().await.map_err(|e| dsh::Error::unreachable(e.to_string()))?;
    send.write_all(bytes).await.map_err(|e| dsh::Error::unreachable(e.to_string()))?;
    let _ = send.finish();
    net::read_frame::<R>(&mut recv).await
}

#[test]
fn garbage_and_oversized_frames_are_refused_and_the_node_keeps_serving() {
    let c = TestCluster::start(3, 21110);
    runtime().block_on(async {
        let client = c.client();
        wait_leader(&client, 3).await;
        client.call(Target::Leader, put("before", "1")).await.unwrap();

        let garbage = [0, 0, 0, 6, 0xff, 0x13, 0x37, 0x00, 0xde, 0xad];
        let oversized = [0xff, 0xff, 0xff, 0xff, 1, 2, 3];
        let truncated = [0, 0];
        let cases = [("garbage", &garbage[..]), ("oversized", &oversized[..]), ("truncated", &truncated[..])];
        // Clients on their protocol; a node (its own certificate) on the peer protocol.
        let admin = CertPaths::in_dir(&c.certs(), "admin");
        let conn = connect(&admin, &c.nodes[0].addr, ALPN_CLIENT).await.unwrap();
        for (what, bytes) in cases {
            let reply: Reply = raw_exchange(&conn, bytes).await.unwrap_or_else(|e| panic!("{what}: no answer: {e}"));
            let err = reply.result.expect_err(what);
            let expected = if what == "truncated" { ErrorKind::Unreachable } else { ErrorKind::Denied };
            assert_eq!(err.kind, expected, "{what}: {err}");
        }
        let n2 = CertPaths::in_dir(&c.certs(), "n2");
        let conn = connect(&n2, &c.nodes[0].addr, ALPN_RAFT).await.unwrap();
        for (what, bytes) in cases {
            match raw_exchange::<PeerReply>(&conn, bytes).await {
                Ok(PeerReply::Refused(err)) => {
                    let expected = if what == "truncated" { ErrorKind::Unreachable } else { ErrorKind::Denied };
                    assert_eq!(err.kind, expected, "{what}: {err}");
                }
                Ok(_) => panic!("{what}: answered as if it were a request"),
                Err(e) => panic!("{what}: no answer: {e}"),
            }
        }
        for n in 1..=3 {
            let r = client.call(Target::Node(n), Request::Ping).await;
            assert!(r.is_ok(), "n{n} still serves after bad frames: {r:?}");
        }
        client.call(Target::Leader, put("after", "2")).await.unwrap();
        let r = client.call(Target::Leader, get("before")).await.unwrap();
        assert_eq!(value(&r.value).as_deref(), Some("1"), "stored data untouched");
    });
}
