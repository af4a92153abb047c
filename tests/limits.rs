//! Sizes and clients have limits that say so (SPEC §5, issue 12): a value over the cap is refused
//! at once with `denied`, no log entry is too large to replicate, and a client holding many
//! half-sent requests costs the node little memory while everyone else keeps being served.

mod common;

use common::*;
use dsh::client::Target;
use dsh::error::ErrorKind;
use dsh::net::{CertPaths, Endpoint, Peer, TlsFiles, ALPN_CLIENT};
use std::time::{Duration, Instant};

/// The node's resident set in bytes, from /proc.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS");
    let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

#[test]
fn a_thousand_streams_with_16_mib_headers_and_no_bodies_cost_little_memory() {
    let c = TestCluster::start(3, 23310);
    runtime().block_on(async {
        let client = c.client();
        let leader = wait_leader(&client, 3).await;
        let pid = c.nodes[leader.id as usize - 1].child.as_ref().unwrap().id();
        let before = rss(pid);

        // Four connections of 250 streams each, every one announcing a 16 MiB frame and then
        // sending nothing more.
        let tls = TlsFiles::load(&CertPaths::in_dir(&c.certs(), "client")).unwrap();
        let endpoint = Endpoint::client(&tls).unwrap();
        let header = (dsh::proto::MAX_FRAME as u32).to_be_bytes();
        let (mut held, mut peers) = (Vec::new(), Vec::new());
        for _ in 0..4 {
            let peer = Peer::new(endpoint.clone(), leader.addr.clone(), ALPN_CLIENT);
            let conn = peer.connection().await.unwrap();
            for _ in 0..250 {
                let (mut send, recv) = conn.open_bi().await.unwrap();
                send.write_all(&header).await.unwrap();
                held.push((send, recv));
            }
            peers.push(peer);
        }
        let started = Instant::now();
        let mut peak = 0;
        let mut puts = 0;
        while started.elapsed() < Duration::from_secs(3) {
            let t = Instant::now();
            let r = client.call(Target::Leader, put(&format!("other{puts}"), "v")).await;
            assert!(r.is_ok(), "another client's put fails while the streams are held: {r:?}");
            assert!(t.elapsed() < Duration::from_secs(1), "a put took {:?}", t.elapsed());
            puts += 1;
            peak = peak.max(rss(pid));
        }
        eprintln!("RSS before {} MB, peak {} MB, {puts} puts", before >> 20, peak >> 20);
        assert!(peak < 300 << 20, "the node's RSS reached {} MB", peak >> 20);
        drop((held, peers));
    });
}
