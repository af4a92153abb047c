//! A cluster whose nodes run under `dsh node --supervisor`, as across machines: the shell's
//! `crash`, `restart`, `pause` and `resume` reach them over QUIC, so tests can drive process
//! faults through `dsh -c` and through anything that runs the shell's commands (the web page's
//! controls). Nodes on `base+1..=3`, supervisors on `base+6..=8`; SIGTERM on drop.

use super::{dump_logs, stderr, stdout, DSH};
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};

pub const SUPERVISOR_OFFSET: u16 = 5;

pub struct Supervised {
    pub dir: tempfile::TempDir,
    pub file: PathBuf,
    supervisors: Vec<Child>,
}

fn dsh_ok(args: &[&str]) {
    let out = Command::new(DSH).args(args).output().unwrap();
    assert!(out.status.success(), "dsh {args:?}: {}", stderr(&out));
}

impl Supervised {
    /// Three supervised nodes; the cluster file presents an admin certificate.
    pub fn start(base: u16) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let certs = dir.path().join("certs");
        let certs_s = certs.to_str().unwrap();
        dsh_ok(&["cert", "init", certs_s]);
        dsh_ok(&["cert", "issue", certs_s, "--admin", "admin"]);
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

    /// The dsh binary against this cluster.
    pub fn dsh(&self, args: &[&str]) -> Output {
        Command::new(DSH).arg("--cluster").arg(&self.file).args(args).output().unwrap()
    }

    /// The dsh binary against this cluster, asserting success; its stdout.
    pub fn run(&self, args: &[&str]) -> String {
        let out = self.dsh(args);
        assert!(out.status.success(), "dsh {args:?}: {}{}", stdout(&out), stderr(&out));
        stdout(&out)
    }

    /// The leader, once there is one.
    pub fn leader(&self) -> String {
        let out = self.run(&["--json", "-c", "wait leader --timeout 20s"]);
        let v: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
        v["leader"].as_str().unwrap().to_string()
    }

    /// `dsh --json -c COMMANDS`, asserting success; one value per command.
    pub fn json(&self, commands: &str) -> Vec<Value> {
        let out = self.dsh(&["--json", "-c", commands]);
        assert!(out.status.success(), "{commands}: {}\n{}", stdout(&out), stderr(&out));
        stdout(&out).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    /// A node's `state` in `status` (`up`, `down`, `paused`).
    pub fn state_of(&self, node: &str) -> String {
        let r = self.json("status");
        let nodes = r[0]["nodes"].as_array().unwrap();
        let n = nodes.iter().find(|n| n["id"] == node).unwrap();
        n["state"].as_str().unwrap().to_string()
    }
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
