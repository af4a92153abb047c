//! The embedded local cluster (SPEC §2). Layout under its home directory:
//! `cluster.toml` (what clients read), `local.toml` (how to start each node), `certs/` (the CA,
//! node certificates, and the admin certificate its user presents), and one data directory per
//! node holding its storage, `node.log` and `pid`.

use super::process::{self, NodeProcess};
use crate::client::{Client, ClusterFile, NodeEntry};
use crate::error::{Context, Error, Result};
use crate::net::{self, Identity, Role};
use crate::proto::{NodeId, ProcessAction, ProcessInfo};
use serde::{Deserialize, Serialize};
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant, SystemTime};

/// A certificate of the local cluster expiring sooner than this is reissued at the next start.
const RENEW_BEFORE: Duration = Duration::from_secs(30 * 86_400);

fn node_identity(id: &str) -> Identity {
    Identity::Node { name: id.to_string(), hosts: vec!["127.0.0.1".into(), "localhost".into()] }
}

/// `DSH_HOME`, else `$XDG_STATE_HOME/dsh`, else `~/.local/state/dsh`.
pub fn home_dir() -> PathBuf {
    if let Some(h) = std::env::var_os("DSH_HOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(h);
    }
    if let Some(x) = std::env::var_os("XDG_STATE_HOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(x).join("dsh");
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
    home.join(".local/state/dsh")
}

#[derive(Serialize, Deserialize)]
struct LocalFile {
    nodes: Vec<LocalNode>,
}

#[derive(Serialize, Deserialize, Clone)]
struct LocalNode {
    id: String,
    addr: String,
    data: PathBuf,
}

#[derive(Clone)]
pub struct LocalCluster {
    pub home: PathBuf,
    pub file: ClusterFile,
    nodes: Vec<NodeProcess>,
}

impl LocalCluster {
    /// The cluster recorded under `home`, if one was ever created there.
    pub fn load(home: &Path) -> Result<Option<Self>> {
        let local = home.join("local.toml");
        if !local.exists() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&local).context(format!("read {}", local.display()))?;
        let lf: LocalFile = toml::from_str(&text).context(format!("parse {}", local.display()))?;
        let file = ClusterFile::load(&home.join("cluster.toml"))?;
        Ok(Some(Self::from_parts(home, file, lf)))
    }

    fn from_parts(home: &Path, file: ClusterFile, lf: LocalFile) -> Self {
        let certs = home.join("certs");
        let founders = lf.nodes.iter().map(|n| format!("{}={}", n.id, n.addr)).collect::<Vec<_>>().join(",");
        let nodes = lf
            .nodes
            .into_iter()
            .enumerate()
            .map(|(i, n)| NodeProcess {
                bootstrap: (i == 0).then(|| founders.clone()),
                id: n.id,
                addr: n.addr,
                data: n.data,
                certs: certs.clone(),
            })
            .collect();
        LocalCluster { home: home.to_path_buf(), file, nodes }
    }

    /// Makes a new cluster's certificates and files under `home` (nothing is started).
    pub fn create(home: &Path, n: usize, data: Option<&Path>) -> Result<Self> {
        if n == 0 {
            return Err(Error::usage("a cluster needs at least one node"));
        }
        let certs = home.join("certs");
        if !certs.join("ca.pem").exists() {
            net::init_ca(&certs)?;
        }
        // The user of a local cluster runs its demos, faults and repairs included: an admin.
        let client = net::issue(&certs, &Identity::Admin { name: "admin".into() })?;
        let ports = free_ports(n)?;
        let data_root = data.map(Path::to_path_buf).unwrap_or_else(|| home.to_path_buf());
        let mut nodes = Vec::new();
        for (i, port) in ports.into_iter().enumerate() {
            let id = format!("n{}", i + 1);
            net::issue(&certs, &node_identity(&id))?;
            nodes.push(LocalNode { addr: format!("127.0.0.1:{port}"), data: data_root.join(&id), id });
        }
        let file = ClusterFile {
            ca: client.ca,
            cert: client.cert,
            key: client.key,
            nodes: nodes
                .iter()
                .map(|n| NodeEntry { id: n.id.clone(), addr: n.addr.clone(), supervisor: None })
                .collect(),
        };
        file.save(&home.join("cluster.toml"))?;
        let lf = LocalFile { nodes };
        let text = toml::to_string_pretty(&lf).map_err(|e| Error::internal(e.to_string()))?;
        std::fs::write(home.join("local.toml"), text)?;
        Ok(Self::from_parts(home, file, lf))
    }

    /// Each node's id and the pid of its running process, if any.
    pub fn processes(&self) -> Vec<(String, Option<u32>)> {
        self.nodes.iter().map(|n| (n.id.clone(), process::running_pid(&n.data))).collect()
    }

    fn node(&self, id: &str) -> Result<&NodeProcess> {
        self.nodes.iter().find(|n| n.id == id).ok_or_else(|| Error::usage(format!("no node {id} in the local cluster")))
    }

    /// Whether a node's process runs, is stopped (paused), or is gone.
    pub fn state(&self, id: &str) -> Result<ProcessState> {
        let node = self.node(id)?;
        Ok(match process::running_pid(&node.data) {
            None => ProcessState::Down,
            Some(pid) if process::is_stopped(pid) => ProcessState::Paused(pid),
            Some(pid) => ProcessState::Running(pid),
        })
    }

    /// Acts on a node process as its supervisor would (see `supervisor`).
    pub fn act(&self, id: &str, action: ProcessAction, tied_to_parent: bool) -> Result<ProcessInfo> {
        match action {
            ProcessAction::Crash => drop(self.signal(id, libc::SIGKILL)?),
            ProcessAction::Pause => drop(self.signal(id, libc::SIGSTOP)?),
            ProcessAction::Resume => drop(self.signal(id, libc::SIGCONT)?),
            ProcessAction::Restart => drop(self.start_node(id, tied_to_parent)?),
            ProcessAction::State => {}
        }
        Ok(match self.state(id)? {
            ProcessState::Down => ProcessInfo { state: "down".into(), pid: None },
            ProcessState::Paused(pid) => ProcessInfo { state: "paused".into(), pid: Some(pid) },
            ProcessState::Running(pid) => ProcessInfo { state: "up".into(), pid: Some(pid) },
        })
    }

    /// Sends `signal` to a running node; returns its pid.
    pub fn signal(&self, id: &str, signal: i32) -> Result<u32> {
        let node = self.node(id)?;
        let pid = process::running_pid(&node.data).ok_or_else(|| Error::usage(format!("{id} is not running")))?;
        // SAFETY: plain syscall on a pid we recorded and checked to be a dsh node.
        if unsafe { libc::kill(pid as i32, signal) } != 0 {
            return Err(Error::internal(format!("signal {id}: {}", std::io::Error::last_os_error())));
        }
        if signal == libc::SIGKILL {
            // Wait until it is really gone, so a `restart` right after finds its port free.
            process::wait_gone(pid, Duration::MAX);
        }
        Ok(pid)
    }

    /// Starts one node on its data directory; returns its pid.
    pub fn start_node(&self, id: &str, tied_to_parent: bool) -> Result<u32> {
        let node = self.node(id)?;
        if let Some(pid) = process::running_pid(&node.data) {
            return Err(Error::usage(format!("{id} is already running (pid {pid})")));
        }
        let exe = std::env::current_exe().context("locate the dsh binary")?;
        Ok(node.spawn_and_wait(&exe, tied_to_parent)?.id())
    }

    /// Starts every node that is not running, with the running dsh binary.
    pub fn start_missing(&mut self, tied_to_parent: bool) -> Result<Vec<Child>> {
        let exe = std::env::current_exe().context("locate the dsh binary")?;
        self.start_missing_with(&exe, tied_to_parent)
    }

    /// Starts every node that is not running, with `exe` as the dsh binary. When none runs,
    /// certificates are renewed first (see `renew_certs`). Call with the home lock held.
    pub fn start_missing_with(&mut self, exe: &Path, tied_to_parent: bool) -> Result<Vec<Child>> {
        if self.processes().iter().all(|(_, pid)| pid.is_none()) {
            self.renew_certs()?;
        }
        let mut children = Vec::new();
        for node in &self.nodes {
            if process::running_pid(&node.data).is_none() {
                children.push(node.spawn(exe, tied_to_parent)?);
            }
        }
        Ok(children)
    }

    /// Reissues the certificates a cluster made by an older dsh lacks or that expire soon: a
    /// node certificate without the node role, a user certificate that is not an admin's.
    /// Only while no node runs, so no running node holds a certificate replaced under it.
    fn renew_certs(&mut self) -> Result<()> {
        let certs = self.home.join("certs");
        if !certs.join("ca.key").exists() {
            return Ok(());
        }
        let soon = SystemTime::now() + RENEW_BEFORE;
        let stale = |path: &Path, role: Role| {
            net::read_cert_file(path).map_or(true, |c| c.principal.role != role || c.not_after < soon)
        };
        for node in &self.nodes {
            if stale(&certs.join(format!("{}.pem", node.id)), Role::Node) {
                net::issue(&certs, &node_identity(&node.id))?;
            }
        }
        if stale(&self.file.cert, Role::Admin) {
            let admin = net::issue(&certs, &Identity::Admin { name: "admin".into() })?;
            (self.file.ca, self.file.cert, self.file.key) = (admin.ca, admin.cert, admin.key);
            self.file.save(&self.home.join("cluster.toml"))?;
        }
        Ok(())
    }

    /// Stops every node: SIGTERM, then SIGKILL after a grace period.
    pub fn stop_all(&self) -> Vec<(String, u32)> {
        let running: Vec<_> = self
            .nodes
            .iter()
            .filter_map(|n| process::running_pid(&n.data).map(|pid| (n.id.clone(), pid, n.pid_file())))
            .collect();
        for (_, pid, _) in &running {
            // SAFETY: plain syscall on a pid recorded by us and checked to be a dsh node.
            unsafe { libc::kill(*pid as i32, libc::SIGTERM) };
        }
        for (_, pid, pid_file) in &running {
            process::stop(*pid, Duration::from_secs(3));
            let _ = std::fs::remove_file(pid_file);
        }
        running.into_iter().map(|(id, pid, _)| (id, pid)).collect()
    }

    /// Stops every node, deletes each node's data directory (log, state, snapshot, `node.log`)
    /// and starts the nodes again, empty: a fresh cluster on the same addresses and
    /// certificates, so every dsh that knew the old one (another terminal's prompt) reaches the
    /// new one without being told. Call with the home lock held; wait with `wait_ready`.
    pub fn reset(&mut self) -> Result<Vec<Child>> {
        // stop_all returns once every node has exited (SIGKILL after its grace period), so no
        // process still writes into what is deleted next.
        self.stop_all();
        for node in &self.nodes {
            match std::fs::remove_dir_all(&node.data) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(Error::internal(format!("wipe {}: {e}", node.data.display())));
                }
                _ => {}
            }
        }
        self.start_missing(false)
    }

    pub fn size(&self) -> usize {
        self.nodes.len()
    }
}

/// A node process as the local manager sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessState {
    Running(u32),
    Paused(u32),
    Down,
}

/// Holds `home/lock` exclusively until dropped, so two dsh processes starting at once do not
/// both create or start the cluster.
pub struct HomeLock {
    _file: std::fs::File,
}

impl HomeLock {
    pub fn acquire(home: &Path) -> Result<Self> {
        use std::os::fd::AsRawFd;
        std::fs::create_dir_all(home).context(format!("create {}", home.display()))?;
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(home.join("lock"))
            .context("open lock file")?;
        // SAFETY: flock on a descriptor we own; released when the file is closed.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(std::io::Error::last_os_error().into());
        }
        Ok(HomeLock { _file: f })
    }
}

/// Returns the local cluster under `home`, creating and starting it if nothing runs there.
/// Returns the lock (hold it until `wait_ready`) when nodes were started.
pub fn ensure_running(home: &Path) -> Result<(LocalCluster, Option<HomeLock>)> {
    let lock = HomeLock::acquire(home)?;
    let mut cluster = match LocalCluster::load(home)? {
        Some(c) => c,
        None => LocalCluster::create(home, 3, None)?,
    };
    // A cluster where some nodes were crashed on purpose is left as it is; only a cluster with
    // nothing running is (re)started.
    if cluster.processes().iter().any(|(_, pid)| pid.is_some()) {
        return Ok((cluster, None));
    }
    cluster.start_missing(false)?;
    Ok((cluster, Some(lock)))
}

/// A throwaway cluster in a temp dir; its nodes die with this process.
pub struct Ephemeral {
    pub cluster: LocalCluster,
    children: Vec<Child>,
    _dir: tempfile::TempDir,
}

impl Ephemeral {
    pub fn start(n: usize) -> Result<Self> {
        Self::start_with(&std::env::current_exe().context("locate the dsh binary")?, n)
    }

    /// As `start`, running the nodes from the dsh binary at `exe` (for programs that use dsh as
    /// a library).
    pub fn start_with(exe: &Path, n: usize) -> Result<Self> {
        let dir = tempfile::Builder::new().prefix("dsh-ephemeral-").tempdir()?;
        let mut cluster = LocalCluster::create(dir.path(), n, None)?;
        let children = cluster.start_missing_with(exe, true)?;
        Ok(Ephemeral { cluster, children, _dir: dir })
    }
}

impl Drop for Ephemeral {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
        }
        for c in &mut self.children {
            let _ = c.wait();
        }
    }
}

/// Waits until a leader is elected and the membership holds `voters` nodes.
pub async fn wait_ready(client: &Client, voters: usize, timeout: Duration) -> Result<NodeId> {
    let until = Instant::now() + timeout;
    loop {
        let all = client.status_all(Duration::from_millis(300)).await;
        let up: Vec<_> = all.iter().filter_map(|(_, r)| r.as_ref().ok()).collect();
        let settled = up.len() >= voters && up.iter().all(|s| s.role == "leader" || s.role == "follower");
        if let Some(l) = up.iter().find(|s| s.role == "leader" && s.voters.len() >= voters).filter(|_| settled) {
            return Ok(l.id);
        }
        if Instant::now() >= until {
            return Err(Error::unreachable(format!("the local cluster did not elect a leader within {timeout:?}")));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `n` free ports for a new local cluster, from just below the kernel's ephemeral range. A
/// port inside that range, freed by `crash`, can be handed to any program's next outgoing
/// socket (a browser's QUIC, a dsh client) before `restart` binds it again. Every socket is
/// held until all are chosen so no port is handed out twice.
fn free_ports(n: usize) -> Result<Vec<u16>> {
    let low = ephemeral_low();
    let span = LOCAL_PORT_SPAN.min(low.saturating_sub(1024));
    let offset = RandomState::new().build_hasher().finish() as u16 % span.max(1);
    let mut socks = Vec::new();
    for k in 0..span {
        let port = low - span + (offset + k) % span;
        if let Ok(s) = std::net::UdpSocket::bind(("127.0.0.1", port)) {
            socks.push(s);
        }
        if socks.len() == n {
            break;
        }
    }
    // A machine whose ephemeral range starts near 1024 leaves no room below it.
    while socks.len() < n {
        socks.push(std::net::UdpSocket::bind("127.0.0.1:0").context("find free ports")?);
    }
    socks.iter().map(|s| Ok(s.local_addr()?.port())).collect()
}

/// How many ports below the ephemeral range local clusters take theirs from. Test files that
/// start nodes on fixed ports stay below it (they use 21000–26999).
const LOCAL_PORT_SPAN: u16 = 5000;

/// The first port the kernel hands out for port 0 (Linux's default when it cannot be read).
fn ephemeral_low() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A crashed node's port must not be one the kernel hands to other programs' outgoing
    /// sockets, or `restart` can find it taken (a CI failure: "Address already in use").
    #[test]
    fn local_cluster_ports_are_below_the_ephemeral_range_and_distinct() {
        let ports = free_ports(3).unwrap();
        let low = ephemeral_low();
        assert!(ports.iter().all(|p| *p < low && *p >= low - LOCAL_PORT_SPAN), "{ports:?} vs {low}");
        let mut unique = ports.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 3, "{ports:?}");
    }
}
