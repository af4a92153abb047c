//! A cluster set up the way it would be across machines: certificates from `dsh cert`, each
//! `dsh node` under its supervisor, and the shell pointed at a cluster file. Process faults
//! then go over QUIC to the supervisors instead of to local child processes.

mod common;

use common::*;
use serde_json::Value;
use std::path::Path;
use std::process::{Child, Command, Stdio};

const SUPERVISOR_OFFSET: u16 = 50;

struct Supervised {
    dir: tempfile::TempDir,
    file: std::path::PathBuf,
    supervisors: Vec<Child>,
}

impl Drop for Supervised {
    fn drop(&mut self) {
        if std::thread::panicking() {
            dump_logs(self.dir.path());
        }
        for s in &mut self.supervisors {
            // SIGTERM lets the supervisor stop its node; the node would die with it anyway.
            unsafe { libc::kill(s.id() as i32, libc::SIGTERM) };
            let _ = s.wait();
        }
    }
}

fn dsh_ok(args: &[&str]) {
    let out = Command::new(DSH).args(args).output().unwrap();
    assert!(out.status.success(), "dsh {args:?}: {}", stderr(&out));
}

/// Three supervised nodes on `base+1..=3`, their supervisors on `base+51..=53`.
fn start(base: u16) -> Supervised {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    let certs_s = certs.to_str().unwrap();
    dsh_ok(&["cert", "init", certs_s]);
    dsh_ok(&["cert", "issue", certs_s, "--client", "admin"]);
    let addr = |i: u16| format!("127.0.0.1:{}", base + i);
    let sup = |i: u16| format!("127.0.0.1:{}", base + SUPERVISOR_OFFSET + i);
    let mut toml =
        format!("ca = \"{certs_s}/ca.pem\"\ncert = \"{certs_s}/admin.pem\"\nkey = \"{certs_s}/admin.key\"\n");
    for i in 1..=3 {
        dsh_ok(&["cert", "issue", certs_s, "--node", &format!("n{i}"), "--host", "127.0.0.1"]);
        toml += &format!("[[nodes]]\nid = \"n{i}\"\naddr = \"{}\"\nsupervisor = \"{}\"\n", addr(i), sup(i));
    }
    let file = dir.path().join("cluster.toml");
    std::fs::write(&file, toml).unwrap();
    let founders = (1..=3).map(|i| format!("n{i}={}", addr(i))).collect::<Vec<_>>().join(",");
    let mut supervisors = Vec::new();
    for i in 1..=3 {
        let data = dir.path().join(format!("n{i}"));
        std::fs::create_dir_all(&data).unwrap();
        let log = std::fs::File::create(data.join("node.log")).unwrap();
        let mut cmd = Command::new(DSH);
        cmd.args(["node", "--id", &format!("n{i}"), "--listen", &addr(i), "--supervisor", &sup(i)])
            .arg("--data")
            .arg(&data)
            .args(["--certs", certs_s])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        if i == 1 {
            cmd.args(["--bootstrap", &founders]);
        }
        supervisors.push(cmd.spawn().unwrap());
    }
    Supervised { dir, file, supervisors }
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

#[test]
fn a_supervisor_refuses_a_client_of_another_ca() {
    let c = start(21700);
    json(&c.file, "wait healthy --timeout 20s");
    let other = tempfile::tempdir().unwrap();
    let certs = other.path().join("certs");
    dsh_ok(&["cert", "init", certs.to_str().unwrap()]);
    dsh_ok(&["cert", "issue", certs.to_str().unwrap(), "--client", "mallory"]);
    let text = std::fs::read_to_string(&c.file)
        .unwrap()
        .replace(&format!("{}/", c.dir.path().join("certs").display()), &format!("{}/", certs.display()));
    let foreign = other.path().join("cluster.toml");
    std::fs::write(&foreign, text.replace("admin.", "mallory.")).unwrap();
    let out = Command::new(DSH).arg("--cluster").arg(&foreign).args(["-c", "crash n1"]).output().unwrap();
    assert!(!out.status.success(), "a foreign client crashed a node: {}", stdout(&out));
    let r = json(&c.file, "status");
    assert_eq!(state_of(&r[0], "n1"), "up", "n1 still runs");
}
