//! Bad input never crashes a node or touches its data: clients without a CA-issued certificate
//! are refused at the handshake, and garbage or oversized frames get an error or a closed
//! stream while the node keeps serving everyone else.

mod common;

use common::*;
use dsh::client::{Client, ClusterFile, Target};
use dsh::error::ErrorKind;
use dsh::net::{self, CertPaths, Endpoint, Identity, Peer, TlsFiles, ALPN_CLIENT, ALPN_RAFT};
use dsh::proto::Reply;
use std::time::Duration;

#[test]
fn client_without_a_ca_issued_certificate_is_refused() {
    let c = TestCluster::start(3, 21100);
    let rogue_dir = tempfile::tempdir().unwrap();
    net::init_ca(rogue_dir.path()).unwrap();
    let rogue = net::issue(rogue_dir.path(), &Identity::Client { name: "mallory".into() }).unwrap();
    runtime().block_on(async {
        let good = c.client();
        wait_leader(&good, 3).await;
        // Trusts the real CA (so it would accept the nodes) but presents a foreign certificate.
        let file = ClusterFile { cert: rogue.cert.clone(), key: rogue.key.clone(), ..c.cluster_file() };
        let bad = Client::new(&file, Duration::from_secs(2)).unwrap();
        let err = bad.call(Target::Leader, put("intruder", "x")).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::Unreachable, "refused at the handshake: {err}");
        let r = good.call(Target::Leader, get("intruder")).await.unwrap();
        assert_eq!(value(&r.value), None, "nothing was written");
    });
}

async fn raw_exchange(conn: &quinn::Connection, bytes: &[u8]) -> Result<Reply, String> {
    let (mut send, mut recv) = conn.open_bi().await.map_err(|e| e.to_string())?;
    send.write_all(bytes).await.map_err(|e| e.to_string())?;
    let _ = send.finish();
    net::read_frame::<Reply>(&mut recv).await.map_err(|e| e.to_string())
}

#[test]
fn garbage_and_oversized_frames_are_refused_and_the_node_keeps_serving() {
    let c = TestCluster::start(3, 21110);
    runtime().block_on(async {
        let client = c.client();
        wait_leader(&client, 3).await;
        client.call(Target::Leader, put("before", "1")).await.unwrap();

        let tls = TlsFiles::load(&CertPaths::in_dir(&c.certs(), "client")).unwrap();
        let endpoint = Endpoint::client(&tls).unwrap();
        for alpn in [ALPN_CLIENT, ALPN_RAFT] {
            let peer = Peer::new(endpoint.clone(), c.nodes[0].addr.clone(), alpn);
            let conn = peer.connection().await.unwrap();

            let garbage = [0, 0, 0, 6, 0xff, 0x13, 0x37, 0x00, 0xde, 0xad];
            let oversized = [0xff, 0xff, 0xff, 0xff, 1, 2, 3];
            for (what, bytes) in [("garbage", &garbage[..]), ("oversized", &oversized[..]), ("truncated", &[0, 0][..])]
            {
                match raw_exchange(&conn, bytes).await {
                    Ok(reply) if alpn == ALPN_CLIENT => {
                        let err = reply.result.expect_err(what);
                        assert!(matches!(err.kind, ErrorKind::Denied | ErrorKind::Unreachable), "{what}: {err}");
                    }
                    // Peer replies have another shape; a refusal of any kind is fine there.
                    Ok(_) | Err(_) => {}
                }
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

use dsh::proto::Request;
