//! A cluster set up the way it would be across machines: certificates from `dsh cert`, each
//! `dsh node` under its supervisor, and the shell pointed at a cluster file. Process faults
//! then go over QUIC to the supervisors instead of to local child processes: they need an admin
//! certificate, a restarted node lives as long as its supervisor, and a restart that does not
//! bring the node up is an error (here and in the local cluster).

mod common;

use common::supervised::Supervised;
use common::*;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

fn dsh_ok(args: &[&str]) {
    let out = Command::new(DSH).args(args).output().unwrap();
    assert!(out.status.success(), "dsh {args:?}: {}", stderr(&out));
}

/// Three supervised nodes (tests/common/supervised.rs); the cluster file presents the admin
/// certificate, and `alice` (a client) is issued too.
fn start(base: u16) -> Supervised {
    let c = Supervised::start(base);
    let certs = c.dir.path().join("certs");
    dsh_ok(&["cert", "issue", certs.to_str().unwrap(), "--client", "alice", "--days", "30"]);
    c
}

fn json(file: &Path, commands: &str) -> Vec<Value> {
    let out = Command::new(DSH).arg("--cluster").arg(file).args(["--json", "-c", commands]).output().unwrap();
    assert!(out.status.success(), "{commands}: {}\n{}", stdout(&out), stderr(&out));
    stdout(&out).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn state_of(status: &Value, node: &str) -> String {
    let nodes = status["nodes"].as_array().unwrap();
    let n = nodes.iter().find(|n| n["id"] == node).unwrap();
    n["state"].as_str().unwrap().to_string()
}

#[test]
fn crash_restart_and_pause_go_through_the_supervisors() {
    let c = start(21600);
    let r = json(&c.file, "wait healthy --timeout 20s; put k before; leader");
    let leader = r[2]["leader"].as_str().unwrap().to_string();

    // Crash the leader through its supervisor: the process is gone and the others move on.
    let r = json(&c.file, &format!("crash {leader}; status; wait leader --timeout 10s; put k after"));
    assert_eq!(r[0]["state"], "down", "{:?}", r[0]);
    assert_eq!(state_of(&r[1], &leader), "down");
    assert_ne!(r[2]["leader"], leader.as_str());

    // Restart it on its data: it catches up and has the write it missed.
    let r = json(&c.file, &format!("restart {leader}; wait caught-up --timeout 20s; get k --from {leader} --stale"));
    assert_eq!(r[0]["state"], "up");
    assert!(r[0]["pid"].as_u64().is_some());
    assert_eq!(r[2]["value"], "after");

    // Pause a node: its supervisor reports it paused until resumed.
    let r = json(&c.file, "pause n2; status");
    assert_eq!(r[0]["state"], "paused");
    assert_eq!(state_of(&r[1], "n2"), "paused");
    let r = json(&c.file, "resume n2; wait healthy --timeout 20s; status");
    assert_eq!(r[0]["state"], "up");
    assert_eq!(state_of(&r[2], "n2"), "up");
}

/// Runs `commands` with `--json`, returning the exit code and the last result line.
fn json_last(file: &Path, commands: &str) -> (Option<i32>, Value) {
    let out = Command::new(DSH).arg("--cluster").arg(file).args(["--json", "-c", commands]).output().unwrap();
    let last = stdout(&out).lines().last().map(|l| serde_json::from_str(l).unwrap());
    (out.status.code(), last.unwrap_or_else(|| panic!("`{commands}` printed nothing: {}", stderr(&out))))
}

/// The cluster file with only its certificate and key changed (the CA it trusts is kept).
fn presenting(c: &Supervised, cert: &Path, key: &Path, name: &str) -> std::path::PathBuf {
    let mut file = dsh::client::ClusterFile::load(&c.file).unwrap();
    (file.cert, file.key) = (cert.to_path_buf(), key.to_path_buf());
    let path = c.dir.path().join(format!("{name}.toml"));
    file.save(&path).unwrap();
    path
}

fn assert_denied(r: &Value, what: &str, says: &str) {
    assert_eq!(r["ok"], false, "{what}: {r}");
    assert_eq!(r["error"]["kind"], "denied", "{what}: {r}");
    let message = r["error"]["message"].as_str().unwrap();
    assert!(message.contains(says), "{what}: the supervisor says `{says}`: {r}");
}

#[test]
fn a_supervisor_refuses_a_client_of_another_ca() {
    let c = start(21700);
    json(&c.file, "wait healthy --timeout 20s");
    let other = tempfile::tempdir().unwrap();
    let certs = other.path().join("certs");
    dsh_ok(&["cert", "init", certs.to_str().unwrap()]);
    // Even an admin certificate, if another CA issued it.
    dsh_ok(&["cert", "issue", certs.to_str().unwrap(), "--admin", "mallory"]);
    let foreign = presenting(&c, &certs.join("mallory.pem"), &certs.join("mallory.key"), "foreign");
    let (code, r) = json_last(&foreign, "crash n1");
    assert_eq!(code, Some(1), "{r}");
    // The supervisor's verdict, sent as a TLS alert during the handshake.
    assert_denied(&r, "crash n1 with a foreign certificate", "not made by this cluster's CA");
    let r = json(&c.file, "status");
    assert_eq!(state_of(&r[0], "n1"), "up", "n1 still runs");
}

#[test]
fn process_actions_need_an_admin_certificate_and_state_does_not() {
    let c = start(23260);
    json(&c.file, "wait healthy --timeout 20s");
    let certs = c.dir.path().join("certs");
    let alice = presenting(&c, &certs.join("alice.pem"), &certs.join("alice.key"), "alice");
    for action in ["crash", "pause", "resume", "restart"] {
        let (code, r) = json_last(&alice, &format!("{action} n2"));
        assert_eq!(code, Some(1), "{r}");
        assert_denied(&r, &format!("{action} n2 as a client"), "needs an admin (or node) certificate");
    }
    let r = json(&alice, "status");
    assert_eq!(state_of(&r[0], "n2"), "up", "a client sees process states; n2 was never touched");
    let r = json(&c.file, "crash n2; restart n2");
    assert_eq!((&r[0]["state"], &r[1]["state"]), (&Value::from("down"), &Value::from("up")), "the admin may");
}

#[test]
fn a_restarted_node_lives_as_long_as_its_supervisor() {
    let c = start(23240);
    json(&c.file, "wait healthy --timeout 20s");
    let r = json(&c.file, "crash n2; restart n2");
    assert_eq!(r[1]["state"], "up");
    let pid = r[1]["pid"].as_u64().unwrap();
    // Silence: nothing talks to the supervisor, so no thread of its is woken. A child tied to
    // a runtime thread that exits when idle (10 s) would be dead by now.
    std::thread::sleep(std::time::Duration::from_secs(15));
    let r = json(&c.file, "status; get missing --from n2 --stale");
    assert_eq!(state_of(&r[0], "n2"), "up", "n2 outlived 15 s of silence");
    let n2 = r[0]["nodes"].as_array().unwrap().iter().find(|n| n["id"] == "n2").unwrap().clone();
    assert_eq!(n2["pid"].as_u64(), Some(pid), "the same process: {n2}");
    assert_eq!(r[1]["ok"], true, "n2 answers: {}", r[1]);
}

#[test]
fn a_supervised_restart_that_cannot_bind_fails() {
    let c = start(23250);
    json(&c.file, "wait healthy --timeout 20s");
    json(&c.file, "crash n2");
    // Someone else takes n2's port while it is down.
    let squatter = std::net::UdpSocket::bind("127.0.0.1:23252").unwrap();
    let (code, r) = json_last(&c.file, "restart n2");
    assert_eq!(code, Some(3), "{r}");
    assert_eq!(r["error"]["kind"], "unreachable", "{r}");
    assert!(r["error"]["message"].as_str().unwrap().contains("did not come up"), "{r}");
    let r = json(&c.file, "status");
    assert_eq!(state_of(&r[0], "n2"), "down", "the supervisor says what is true");
    drop(squatter);
    let r = json(&c.file, "restart n2; wait healthy --timeout 20s");
    assert_eq!(r[0]["state"], "up");
}

/// Stops the local cluster under `home` when dropped.
struct LocalHome(tempfile::TempDir);

impl LocalHome {
    fn dsh(&self, args: &[&str]) -> std::process::Output {
        Command::new(DSH).args(args).env("DSH_HOME", self.0.path()).output().unwrap()
    }
}

impl Drop for LocalHome {
    fn drop(&mut self) {
        let _ = self.dsh(&["cluster", "down"]);
    }
}

#[test]
fn a_local_restart_that_cannot_bind_fails_and_says_why() {
    let home = LocalHome(tempfile::tempdir().unwrap());
    let out = home.dsh(&["cluster", "up"]);
    assert!(out.status.success(), "cluster up: {}", stderr(&out));
    let file = dsh::client::ClusterFile::load(&home.0.path().join("cluster.toml")).unwrap();
    let n2 = file.nodes.iter().find(|n| n.id == "n2").unwrap().addr.clone();
    let info = dsh::net::read_cert_file(&file.cert).unwrap();
    assert_eq!(info.principal.role, dsh::net::Role::Admin, "the local cluster's user is an admin");
    let out = home.dsh(&["-c", "crash n2"]);
    assert!(out.status.success(), "crash: {}", stderr(&out));
    let squatter = std::net::UdpSocket::bind(&n2).unwrap();
    let out = home.dsh(&["--json", "-c", "restart n2"]);
    let r: Value = serde_json::from_str(stdout(&out).lines().last().unwrap()).unwrap();
    assert_eq!(out.status.code(), Some(3), "{r}");
    assert_eq!(r["error"]["kind"], "unreachable", "{r}");
    let message = r["error"]["message"].as_str().unwrap();
    assert!(message.contains("did not come up") && message.contains("Address already in use"), "{r}");
    drop(squatter);
    let out = home.dsh(&["--json", "-c", "restart n2; wait healthy --timeout 20s"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
}
