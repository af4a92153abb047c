//! Coherent client caches: two shells hold a copy of a key, a third writes it, and both copies
//! are invalidated before the write returns, so their next read is a miss with the new value.

mod common;

use common::*;
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

/// A long-lived `dsh --json` reading commands from a pipe, as a second terminal would.
struct Shell {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Shell {
    fn start(c: &TestCluster) -> Self {
        let mut child = Command::new(DSH)
            .arg("--cluster")
            .arg(&c.file)
            .args(["--json", "--keep-going"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Shell { child, stdin, stdout }
    }

    fn run(&mut self, line: &str) -> Value {
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
        let mut out = String::new();
        self.stdout.read_line(&mut out).unwrap();
        let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{line}: {e}: {out:?}"));
        assert_eq!(v["ok"], true, "{line}: {v}");
        v
    }

    /// Reads until the copy is served locally (the first read fetches and registers it; a hit
    /// needs the lease that the shell's first poll brings).
    fn cache_until_hit(&mut self, key: &str) -> Value {
        for _ in 0..100 {
            let v = self.run(&format!("cache get {key}"));
            if v["hit"] == true {
                return v;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        panic!("{key} never served from the cache");
    }
}

impl Drop for Shell {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_write_invalidates_every_other_shells_copy_before_it_returns() {
    let c = TestCluster::start(3, 22000);
    runtime().block_on(async { wait_leader(&c.client(), 3).await });
    assert!(c.dsh(&["-c", "put k v1"]).status.success());

    let (mut a, mut b) = (Shell::start(&c), Shell::start(&c));
    let first = a.run("cache get k");
    assert_eq!(first["hit"], false, "the first read is a miss: {first}");
    assert_eq!(first["value"], "v1");
    assert_eq!(a.cache_until_hit("k")["value"], "v1");
    assert_eq!(b.cache_until_hit("k")["value"], "v1");
    // Two holders: both copies are shared now.
    assert_eq!(a.run("cache get k")["state"], "shared");

    let out = c.dsh(&["-c", "put k v2"]);
    assert!(out.status.success(), "{}", stderr(&out));

    for shell in [&mut a, &mut b] {
        let v = shell.run("cache get k");
        assert_eq!(v["hit"], false, "the copy was invalidated: {v}");
        assert_eq!(v["value"], "v2", "and the miss fetched the new value: {v}");
        let stats = shell.run("cache stats");
        assert!(stats["invalidations"].as_u64().unwrap() >= 1, "{stats}");
    }

    // A shell that writes through its cache keeps a modified copy; the other's is invalidated.
    let w = a.run("cache put k v3");
    assert_eq!(w["state"], "modified", "{w}");
    let v = b.run("cache get k");
    assert_eq!((v["hit"].clone(), v["value"].clone()), (false.into(), "v3".into()), "{v}");
}
