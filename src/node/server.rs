//! Starts a node and serves it: opens storage, builds the openraft instance, accepts QUIC
//! connections and dispatches each stream by ALPN (peer RPCs or client requests) after the
//! gate: the peer protocol takes node certificates only, and each request the role it needs.
//! It joins an existing cluster when asked. Everything it spawns stops when `shutdown` fires.

use super::events::{self, Events};
use super::gate::{Admitted, Gate};
use super::log_store::LogStore;
use super::metrics::Metrics;
use super::network::{apply_faults, PeerReply, PeerRequest, Peers};
use super::proposer::Proposer;
use super::service::Service;
use super::state_machine::StateMachine;
use super::types::Raft;
use crate::error::{Context, Error, Result};
use crate::net::{self, CertPaths, Endpoint, Peer, Principal, Role, TlsFiles, ALPN_CLIENT, ALPN_RAFT};
use crate::proto::{node_name, Envelope, NodeId, Reply, Request, Response};
use openraft::{BasicNode, Config, SnapshotPolicy};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

pub struct NodeOptions {
    pub id: NodeId,
    pub data: PathBuf,
    pub listen: SocketAddr,
    /// The address others dial; defaults to `listen`.
    pub advertise: Option<String>,
    pub join: Vec<String>,
    /// The founding members (`n1=ADDR,…`): a node given this with empty storage initializes
    /// the cluster with all of them as voters, so no membership change is needed to form it.
    pub bootstrap: Vec<(NodeId, String)>,
    /// Directory holding `ca.pem` and this node's `nN.pem`/`nN.key`.
    pub certs: PathBuf,
    /// Values over this many bytes are refused (`proto::limits`).
    pub max_value: usize,
}

/// Raft timing tuned for demos: a dead leader is noticed and replaced in a few hundred ms.
/// openraft also uses the heartbeat interval as the timeout of every AppendEntries, so it must
/// cover a follower's fsync of one full batch (`max_payload_entries`) on a busy machine.
pub fn raft_config() -> Result<Config> {
    Config {
        cluster_name: "dsh".into(),
        heartbeat_interval: 50,
        election_timeout_min: 100,
        election_timeout_max: 200,
        install_snapshot_timeout: 2000,
        max_payload_entries: 64,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(2000),
        max_in_snapshot_log_to_keep: 500,
        ..Default::default()
    }
    .validate()
    .map_err(|e| Error::internal(format!("raft config: {e}")))
}

/// Runs a node until `shutdown` turns true.
pub async fn run(opts: NodeOptions, mut shutdown: watch::Receiver<bool>) -> Result<()> {
    let started = Instant::now();
    std::fs::create_dir_all(&opts.data).context(format!("create {}", opts.data.display()))?;
    let name = node_name(opts.id);
    let tls = TlsFiles::load(&CertPaths::in_dir(&opts.certs, &name))?;
    let endpoint = Endpoint::server(opts.listen, &tls)?;
    let addr = opts.advertise.clone().unwrap_or_else(|| opts.listen.to_string());

    let storage = |e: super::types::StorageError| Error::internal(format!("storage: {e}"));
    let metrics = Arc::new(Metrics::default());
    let (ahead_tx, ahead_rx) = tokio::sync::mpsc::unbounded_channel();
    let log = LogStore::open(&opts.data.join("log"), opts.id, metrics.clone(), ahead_tx).map_err(storage)?;
    let events = Arc::new(Events::new(opts.id));
    let sm = StateMachine::open(&opts.data, metrics.clone(), events.clone()).map_err(storage)?;
    let store = sm.store();
    let applied_at_open = store.applied_index();
    let peers = Peers::new(endpoint.clone(), metrics.clone(), events.clone());
    let raft = Raft::new(opts.id, Arc::new(raft_config()?), peers.clone(), log.clone(), sm)
        .await
        .map_err(|e| Error::internal(format!("start raft: {e}")))?;
    let initialized = raft.is_initialized().await.map_err(|e| Error::internal(e.to_string()))?;
    if !initialized && opts.bootstrap.is_empty() && opts.join.is_empty() {
        eprintln!("{name}: empty storage; waiting for a leader to replicate the cluster to this node");
    }
    if !initialized && !opts.bootstrap.is_empty() {
        let mut members: BTreeMap<NodeId, BasicNode> =
            opts.bootstrap.iter().map(|(id, a)| (*id, BasicNode::new(a))).collect();
        members.insert(opts.id, BasicNode::new(&addr));
        raft.initialize(members).await.map_err(|e| Error::internal(format!("initialize: {e}")))?;
    }
    let recovery = started.elapsed();
    events.push(
        "recovery",
        format!(
            "recovered in {} ms: {} entries applied from the log, {} keys",
            recovery.as_millis(),
            store.applied_index().saturating_sub(applied_at_open),
            store.keys()
        ),
    );
    let watcher = tokio::spawn(events::watch_raft(raft.clone(), events.clone(), shutdown.clone()));
    let sender_ahead = tokio::spawn(super::ahead::run(raft.clone(), peers.clone(), ahead_rx, shutdown.clone()));
    let (proposer, proposing) = Proposer::start(raft.clone(), opts.max_value, shutdown.clone());
    let svc = Arc::new(Service {
        id: opts.id,
        addr: addr.clone(),
        raft: raft.clone(),
        store,
        log,
        peers,
        proposer,
        data_dir: opts.data.clone(),
        started,
        recovery,
        join_lock: Default::default(),
        metrics,
        seconds: Default::default(),
        events,
        cache: Default::default(),
    });
    tracing::info!(
        node = %name, %addr, recovery_ms = recovery.as_millis() as u64,
        applied = svc.store.applied_index(), keys = svc.store.keys(), "serving"
    );
    eprintln!("{name} serving on {addr}; recovered in {} ms", recovery.as_millis());

    let is_voter = raft.metrics().borrow().membership_config.membership().voter_ids().any(|v| v == opts.id);
    let ticker =
        tokio::spawn(super::ticker::run(raft.clone(), svc.store.clone(), svc.proposer.clone(), shutdown.clone()));
    let watchdog = tokio::spawn(super::watchdog::run(raft.clone(), opts.id, shutdown.clone()));
    let joiner = (!opts.join.is_empty() && !is_voter).then(|| {
        tokio::spawn(join_cluster(endpoint.clone(), opts.id, addr.clone(), opts.join.clone(), shutdown.clone()))
    });
    let gate = Gate::new(svc.events.clone());
    tell_ready();

    loop {
        tokio::select! {
            incoming = endpoint.accept() => match incoming {
                Some(incoming) => {
                    tokio::spawn(serve_connection(svc.clone(), gate.clone(), incoming, shutdown.clone()));
                }
                None => break,
            },
            _ = shutdown.changed() => break,
        }
    }
    if let Some(j) = joiner {
        j.abort();
    }
    let _ = watcher.await;
    let _ = sender_ahead.await;
    let _ = ticker.await;
    let _ = watchdog.await;
    let _ = proposing.await;
    raft.shutdown().await.map_err(|e| Error::internal(format!("raft shutdown: {e}")))?;
    let log = svc.log.clone();
    let _ = tokio::task::spawn_blocking(move || log.close()).await;
    endpoint.close();
    Ok(())
}

async fn join_cluster(
    endpoint: Endpoint,
    id: NodeId,
    addr: String,
    targets: Vec<String>,
    mut shutdown: watch::Receiver<bool>,
) {
    let request = Envelope::new(10_000, Request::Join { id, addr });
    loop {
        for target in &targets {
            let peer = Peer::new(endpoint.clone(), target.clone(), ALPN_CLIENT);
            match peer.call::<_, Reply>(&request).await {
                Ok(Reply { result: Ok(Response::Joined), .. }) => {
                    tracing::info!(via = %target, "joined the cluster");
                    return;
                }
                Ok(Reply { result, .. }) => tracing::debug!(?result, via = %target, "join refused"),
                Err(e) => tracing::debug!(%e, via = %target, "join failed"),
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(300)) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Tells whoever started this node that it serves (`proto::READY_FD_ENV`).
fn tell_ready() {
    use std::io::Write;
    use std::os::fd::FromRawFd;
    let Some(fd) = std::env::var(crate::proto::READY_FD_ENV).ok().and_then(|v| v.parse::<i32>().ok()) else { return };
    // SAFETY: the fd was left open for this process by the one that started it, and nothing
    // else here uses it; `File` closes it when dropped.
    let mut f = unsafe { std::fs::File::from_raw_fd(fd) };
    let _ = f.write_all(b"serving\n");
}

/// What every stream of one connection is served under.
struct Conn {
    principal: Principal,
    from: SocketAddr,
    is_raft: bool,
    /// Set when the whole connection is refused (a non-node on the peer protocol): every stream
    /// gets this answer and nothing it sends is read.
    refused: Option<Error>,
    _admitted: Admitted,
}

async fn serve_connection(
    svc: Arc<Service>,
    gate: Arc<Gate>,
    incoming: quinn::Incoming,
    mut shutdown: watch::Receiver<bool>,
) {
    // The TLS handshake refuses anyone without a valid (unexpired) certificate of the CA.
    let conn = match incoming.await {
        Ok(c) => c,
        Err(e) => {
            tracing::info!(%e, "refused connection");
            return;
        }
    };
    let alpn = conn
        .handshake_data()
        .and_then(|h| h.downcast::<quinn::crypto::rustls::HandshakeData>().ok())
        .and_then(|h| h.protocol);
    let is_raft = alpn.as_deref() == Some(ALPN_RAFT);
    let from = conn.remote_address();
    let admitted = net::peer_principal(&conn).and_then(|p| Ok((gate.admit(&p)?, p)));
    let (admitted, principal) = match admitted {
        Ok(a) => a,
        Err(e) => {
            gate.record(format!("refused a connection from {from}: {}", e.message));
            conn.close(net::CLOSE_DENIED.into(), e.message.as_bytes());
            return;
        }
    };
    let refused = (is_raft && principal.role != Role::Node).then(|| {
        let e = Error::denied(format!(
            "the peer protocol (Raft, entries sent ahead, forwarding) needs {}; this is {principal}",
            Role::Node.certificate()
        ));
        gate.record(format!("refused {from} on {}: {}", String::from_utf8_lossy(ALPN_RAFT), e.message));
        e
    });
    let ctx = Arc::new(Conn { principal, from, is_raft, refused, _admitted: admitted });
    loop {
        tokio::select! {
            stream = conn.accept_bi() => match stream {
                Ok((send, recv)) => { tokio::spawn(serve_stream(svc.clone(), gate.clone(), ctx.clone(), send, recv)); }
                Err(_) => return,
            },
            _ = shutdown.changed() => return,
        }
    }
}

async fn serve_stream(
    svc: Arc<Service>,
    gate: Arc<Gate>,
    conn: Arc<Conn>,
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
) {
    let written = if let Some(e) = &conn.refused {
        net::write_frame(&mut send, &PeerReply::Refused(e.clone())).await
    } else if conn.is_raft {
        let reply = match net::read_frame::<PeerRequest>(&mut recv).await {
            Ok(PeerRequest::Ahead(ahead)) => {
                // Faults on this side cut hints too; nothing is answered either way.
                if matches!(svc.peers.faults.judge(ahead.from), net::Verdict::Send) {
                    svc.log.persist_ahead(ahead);
                }
                let _ = send.finish();
                return;
            }
            Ok(req) => {
                let sender = req.sender();
                let reply = peer_rpc(&svc, req).await;
                // A slow or cut node is slow both ways: its answers are held back too.
                if let Some(to) = sender {
                    if apply_faults(&svc.peers.faults, to, Duration::from_secs(5)).await.is_err() {
                        return;
                    }
                }
                reply
            }
            Err(e) => PeerReply::Refused(e),
        };
        net::write_frame(&mut send, &reply).await
    } else {
        let started = std::time::Instant::now();
        let mut traffic = false;
        let (reply, bytes_in) = match net::read_frame_sized::<Envelope>(&mut recv).await {
            Ok((env, n)) => match net::authorize(&conn.principal, &env.request) {
                Ok(()) => {
                    traffic = env.request.is_traffic();
                    (svc.handle(env, true).await, n)
                }
                Err(e) => {
                    gate.record(format!("refused {}: {}", conn.from, e.message));
                    (Reply::new(svc.id, None, Err(e)), n)
                }
            },
            Err(e) => (Reply::new(svc.id, None, Err(e)), 0),
        };
        let written = net::write_frame(&mut send, &reply).await;
        let bytes_out = *written.as_ref().unwrap_or(&0);
        svc.metrics.request(started.elapsed(), reply.result.is_ok(), bytes_in, bytes_out);
        // Only answers that reached the stream count: an attempt the client gave up on (its
        // connection reset, the request retried elsewhere) would otherwise count twice.
        if traffic && written.is_ok() {
            let error = reply.result.as_ref().err().map(|e| e.kind.as_str());
            svc.seconds.record(crate::proto::wall_ms(), started.elapsed(), error);
        }
        written
    };
    if written.is_ok() {
        let _ = send.finish();
    }
    // Whatever is left unread (an oversized body) is refused rather than drained.
    let _ = recv.stop(0u32.into());
}

async fn peer_rpc(svc: &Service, req: PeerRequest) -> PeerReply {
    match req {
        PeerRequest::Append(r) => PeerReply::Append(svc.raft.append_entries(r).await),
        PeerRequest::Vote(r) => PeerReply::Vote(svc.raft.vote(r).await),
        PeerRequest::Snapshot(r) => PeerReply::Snapshot(svc.raft.install_snapshot(r).await),
        PeerRequest::Forward(env) => PeerReply::Forward(svc.handle(env, false).await),
        PeerRequest::Ahead(_) => PeerReply::Refused(Error::internal("entries sent ahead get no answer")),
    }
}
