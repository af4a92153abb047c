//! Test clusters: real `dsh node` processes on loopback ports in a temp dir, with certificates
//! from the cluster CA. Each test passes its own port base so tests can run side by side.
//! Every process is killed when the cluster is dropped. The cluster file presents an admin
//! certificate (faults, corrupt and repair work); `issue` and `foreign_cert` make others.
#![allow(dead_code)]

pub mod pty;
pub mod supervised;

use dsh::client::{Client, ClusterFile, NodeEntry};
use dsh::net::{self, CertPaths, Identity};
use dsh::proto::{NodeStatus, Request, Response};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const DSH: &str = env!("CARGO_BIN_EXE_dsh");

pub struct TestCluster {
    pub dir: tempfile::TempDir,
    pub file: PathBuf,
    pub nodes: Vec<TestNode>,
    /// Environment variables given to every node started from now on (test hooks).
    pub env: Vec<(String, String)>,
}

pub struct TestNode {
    pub id: u64,
    pub addr: String,
    pub data: PathBuf,
    /// Founding members, given to the first node only.
    pub bootstrap: Option<String>,
    pub child: Option<Child>,
}

impl TestCluster {
    /// Starts `n` nodes on ports `port_base+1 ..= port_base+n` and waits for a leader.
    pub fn start(n: u64, port_base: u16) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let certs = dir.path().join("certs");
        net::init_ca(&certs).unwrap();
        let client = net::issue(&certs, &Identity::Admin { name: "admin".into() }).unwrap();
        let mut nodes = Vec::new();
        for i in 1..=n {
            let name = format!("n{i}");
            net::issue(&certs, &Identity::Node { name: name.clone(), hosts: vec!["127.0.0.1".into()] }).unwrap();
            let addr = format!("127.0.0.1:{}", port_base + i as u16);
            nodes.push(TestNode { id: i, addr, data: dir.path().join(&name), bootstrap: None, child: None });
        }
        let founders: Vec<String> = nodes.iter().map(|n| format!("n{}={}", n.id, n.addr)).collect();
        nodes[0].bootstrap = Some(founders.join(","));
        let file = ClusterFile {
            ca: client.ca,
            cert: client.cert,
            key: client.key,
            nodes: nodes
                .iter()
                .map(|n| NodeEntry { id: format!("n{}", n.id), addr: n.addr.clone(), supervisor: None })
                .collect(),
        };
        let path = dir.path().join("cluster.toml");
        file.save(&path).unwrap();
        let mut c = TestCluster { dir, file: path, nodes, env: Vec::new() };
        for i in 1..=n {
            c.restart(i);
        }
        c
    }

    pub fn cluster_file(&self) -> ClusterFile {
        ClusterFile::load(&self.file).unwrap()
    }

    pub fn certs(&self) -> PathBuf {
        self.dir.path().join("certs")
    }

    /// A client presenting the admin certificate; call inside a tokio runtime.
    pub fn client(&self) -> Client {
        Client::new(&self.cluster_file(), Duration::from_secs(5)).unwrap()
    }

    /// Issues a certificate of this cluster's CA (a client-role one, say) next to the others.
    pub fn issue(&self, who: &Identity) -> CertPaths {
        net::issue(&self.certs(), who).unwrap()
    }

    /// The cluster file with `cert` presented instead; the CA it trusts is kept.
    pub fn cluster_file_as(&self, cert: &CertPaths) -> ClusterFile {
        ClusterFile { cert: cert.cert.clone(), key: cert.key.clone(), ..self.cluster_file() }
    }

    /// As `cluster_file_as`, saved as `NAME.toml` in the cluster's dir, for the dsh binary.
    pub fn cluster_file_path_as(&self, cert: &CertPaths, name: &str) -> PathBuf {
        let path = self.dir.path().join(format!("{name}.toml"));
        self.cluster_file_as(cert).save(&path).unwrap();
        path
    }

    /// A client presenting `cert`; call inside a tokio runtime.
    pub fn client_as(&self, cert: &CertPaths) -> Client {
        Client::new(&self.cluster_file_as(cert), Duration::from_secs(5)).unwrap()
    }

    fn node(&mut self, id: u64) -> &mut TestNode {
        self.nodes.iter_mut().find(|n| n.id == id).expect("no such node")
    }

    /// SIGKILL, and reap.
    pub fn kill(&mut self, id: u64) {
        if let Some(mut c) = self.node(id).child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    /// Starts the node (again) on its data directory.
    pub fn restart(&mut self, id: u64) {
        let certs = self.certs();
        let env = self.env.clone();
        let node = self.node(id);
        assert!(node.child.is_none(), "n{id} is running");
        std::fs::create_dir_all(&node.data).unwrap();
        let log = std::fs::OpenOptions::new().create(true).append(true).open(node.data.join("node.log")).unwrap();
        let mut cmd = Command::new(DSH);
        cmd.args(["node", "--id", &format!("n{id}"), "--listen", &node.addr])
            .arg("--data")
            .arg(&node.data)
            .arg("--certs")
            .arg(&certs)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .envs(env);
        if let Some(b) = &node.bootstrap {
            cmd.args(["--bootstrap", b]);
        }
        node.child = Some(cmd.spawn().unwrap());
    }

    /// SIGKILLs every node, then starts them all again on their data.
    pub fn restart_all(&mut self) {
        let ids: Vec<u64> = self.nodes.iter().map(|n| n.id).collect();
        for &id in &ids {
            self.kill(id);
        }
        for id in ids {
            self.restart(id);
        }
    }

    /// Runs the dsh binary against this cluster.
    pub fn dsh(&self, args: &[&str]) -> Output {
        Command::new(DSH).arg("--cluster").arg(&self.file).args(args).output().unwrap()
    }
}

/// A certificate for `who` from a CA of its own, kept in a temp dir (returned, keep it alive);
/// `ca` still names `trusted_ca`, so its holder trusts the real nodes and only its own
/// certificate is foreign.
pub fn foreign_cert(who: &Identity, trusted_ca: &Path) -> (tempfile::TempDir, CertPaths) {
    let dir = tempfile::tempdir().unwrap();
    net::init_ca(dir.path()).unwrap();
    let paths = net::issue(dir.path(), who).unwrap();
    (dir, CertPaths { ca: trusted_ca.to_path_buf(), ..paths })
}

/// Prints the tail of every node log under `dir`, so a failed test shows what the nodes saw.
pub fn dump_logs(dir: &Path) {
    for i in 1..=5 {
        let log = dir.join(format!("n{i}/node.log"));
        if let Ok(text) = std::fs::read_to_string(&log) {
            let lines: Vec<&str> = text.lines().collect();
            eprintln!("--- {} (last 40 lines)", log.display());
            for l in &lines[lines.len().saturating_sub(40)..] {
                eprintln!("{l}");
            }
        }
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            dump_logs(self.dir.path());
        }
        for n in &mut self.nodes {
            if let Some(mut c) = n.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// Polls every node's status until `cond` holds for the set of answering nodes.
pub async fn wait_for(
    client: &Client,
    what: &str,
    timeout: Duration,
    cond: impl Fn(&[NodeStatus]) -> bool,
) -> Vec<NodeStatus> {
    let until = Instant::now() + timeout;
    loop {
        let all: Vec<NodeStatus> =
            client.status_all(Duration::from_millis(500)).await.into_iter().filter_map(|(_, r)| r.ok()).collect();
        if cond(&all) {
            return all;
        }
        assert!(Instant::now() < until, "timed out waiting for {what}; last status: {all:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until a leader leads `voters` voters.
pub async fn wait_leader(client: &Client, voters: usize) -> NodeStatus {
    let all = wait_for(client, "a leader", Duration::from_secs(20), |all| {
        all.iter().any(|s| s.role == "leader" && s.voters.len() == voters)
    })
    .await;
    all.into_iter().find(|s| s.role == "leader").unwrap()
}

/// Waits until every answering node (at least `n`) has applied the same index.
pub async fn wait_caught_up(client: &Client, n: usize) -> Vec<NodeStatus> {
    wait_for(client, "nodes to catch up", Duration::from_secs(30), |all| {
        all.len() >= n
            && all.iter().all(|s| s.applied_index == all[0].applied_index && s.applied_index >= s.commit_index)
    })
    .await
}

pub fn value(r: &Response) -> Option<String> {
    match r {
        Response::Value(v) => v.as_ref().map(|v| v.value.clone()),
        other => panic!("expected a value, got {other:?}"),
    }
}

pub fn put(key: &str, value: &str) -> Request {
    Request::Put { key: key.into(), value: value.into() }
}

pub fn get(key: &str) -> Request {
    Request::Get { key: key.into(), stale: false }
}

pub fn stale_get(key: &str) -> Request {
    Request::Get { key: key.into(), stale: true }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// One `dsh --json --keep-going` process fed lines on stdin, as a second terminal or another
/// program would drive it: every line gives one JSON line back. Killed on drop.
pub struct PipedShell {
    child: Child,
    stdin: std::process::ChildStdin,
    lines: std::sync::mpsc::Receiver<String>,
}

impl PipedShell {
    /// `dsh ARGS --json --keep-going`, with `DSH_HOME` set to `home`.
    pub fn start(args: &[&std::ffi::OsStr], home: &Path) -> Self {
        use std::io::BufRead;
        let mut child = Command::new(DSH)
            .args(args)
            .args(["--json", "--keep-going"])
            .env("DSH_HOME", home)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let out = std::io::BufReader::new(child.stdout.take().unwrap());
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        PipedShell { child, stdin, lines }
    }

    /// Sends a command and returns its JSON reply (an ephemeral cluster starts before the first).
    pub fn send(&mut self, line: &str) -> serde_json::Value {
        use std::io::Write;
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
        let reply = self.lines.recv_timeout(Duration::from_secs(60)).unwrap_or_else(|_| panic!("no reply to `{line}`"));
        serde_json::from_str(&reply).unwrap_or_else(|e| panic!("`{line}` gave `{reply}`: {e}"))
    }

    /// As `send`, asserting the command succeeded.
    pub fn ok(&mut self, line: &str) -> serde_json::Value {
        let v = self.send(line);
        assert_eq!(v["ok"], true, "`{line}` failed: {v}");
        v
    }
}

impl Drop for PipedShell {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
