//! Coherent client caches: two shells hold a copy of a key, a third writes it, and both copies
//! are invalidated before the write returns, so their next read is a miss with the new value.

mod common;

use common::*;
use serde_json::Value;

/// Reads until the copy is served locally (the first read fetches and registers it; a hit
/// needs the lease that the shell's first poll brings).
fn cache_until_hit(sh: &mut PipedShell, key: &str) -> Value {
    for _ in 0..100 {
        let v = sh.ok(&format!("cache get {key}"));
        if v["hit"] == true {
            return v;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    panic!("{key} never served from the cache");
}

#[test]
fn a_write_invalidates_every_other_shells_copy_before_it_returns() {
    let c = TestCluster::start(3, 22000);
    runtime().block_on(async { wait_leader(&c.client(), 3).await });
    assert!(c.dsh(&["-c", "put k v1"]).status.success());

    let home = tempfile::tempdir().unwrap();
    let args = [std::ffi::OsStr::new("--cluster"), c.file.as_os_str()];
    let (mut a, mut b) = (PipedShell::start(&args, home.path()), PipedShell::start(&args, home.path()));
    let first = a.ok("cache get k");
    assert_eq!(first["hit"], false, "the first read is a miss: {first}");
    assert_eq!(first["value"], "v1");
    assert_eq!(cache_until_hit(&mut a, "k")["value"], "v1");
    assert_eq!(cache_until_hit(&mut b, "k")["value"], "v1");
    // Two holders: both copies are shared now.
    assert_eq!(a.ok("cache get k")["state"], "shared");

    let out = c.dsh(&["-c", "put k v2"]);
    assert!(out.status.success(), "{}", stderr(&out));

    for shell in [&mut a, &mut b] {
        let v = shell.ok("cache get k");
        assert_eq!(v["hit"], false, "the copy was invalidated: {v}");
        assert_eq!(v["value"], "v2", "and the miss fetched the new value: {v}");
        let stats = shell.ok("cache stats");
        assert!(stats["invalidations"].as_u64().unwrap() >= 1, "{stats}");
    }

    // A shell that writes through its cache keeps a modified copy; the other's is invalidated.
    let w = a.ok("cache put k v3");
    assert_eq!(w["state"], "modified", "{w}");
    let v = b.ok("cache get k");
    assert_eq!((v["hit"].clone(), v["value"].clone()), (false.into(), "v3".into()), "{v}");
}
