//! `dsh cluster up|down|status|reset`: the local cluster's processes under `DSH_HOME`, started,
//! stopped, shown and wiped. The data is kept across `down` and `up`; only `reset` drops it.

use super::session::{runtime, Session};
use crate::cluster::{self, HomeLock, LocalCluster};
use crate::error::Result;
use crate::shell::{self, Ctx, Local, NoScenarios};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Starts the local cluster (creating it with `n` nodes, data under `data` or `DSH_HOME`, if
/// there is none) and waits for a leader.
pub fn cluster_up(s: &Session, n: usize, data: Option<&Path>) -> Result<i32> {
    start(s, n, data, false)
}

/// Wipes the local cluster's data and starts it fresh: same nodes, ports and certificates, so
/// a shell already connected carries on with the empty cluster.
pub fn cluster_reset(s: &Session) -> Result<i32> {
    start(s, 3, None, true)
}

fn start(s: &Session, n: usize, data: Option<&Path>, reset: bool) -> Result<i32> {
    let home = cluster::home_dir();
    let lock = HomeLock::acquire(&home)?;
    let mut c = match LocalCluster::load(&home)? {
        Some(c) => c,
        None => LocalCluster::create(&home, n, data)?,
    };
    if reset {
        c.reset()?;
    } else {
        c.start_missing(false)?;
    }
    let rt = runtime()?;
    let client = s.client(&rt, &c.file)?;
    let leader = rt.block_on(cluster::wait_ready(&client, c.size(), Duration::from_secs(30)))?;
    drop(lock);
    if !s.quiet {
        if reset {
            println!("wiped the data of {} nodes", c.size());
        }
        for (id, pid) in c.processes() {
            println!("{id} up (pid {})", pid.map_or("?".into(), |p| p.to_string()));
        }
        println!("leader: n{leader}; home: {}", home.display());
    }
    Ok(0)
}

/// Stops every node of the local cluster.
pub fn cluster_down() -> Result<i32> {
    let home = cluster::home_dir();
    let _lock = HomeLock::acquire(&home)?;
    match LocalCluster::load(&home)? {
        None => println!("no local cluster under {}", home.display()),
        Some(c) => {
            let stopped = c.stop_all();
            if stopped.is_empty() {
                println!("no node was running");
            }
            for (id, pid) in stopped {
                println!("stopped {id} (pid {pid})");
            }
        }
    }
    Ok(0)
}

/// Which processes run, then `status` when any does.
pub fn cluster_status(s: &Session) -> Result<i32> {
    let home = cluster::home_dir();
    let Some(c) = LocalCluster::load(&home)? else {
        println!("no local cluster under {}", home.display());
        return Ok(0);
    };
    for (id, pid) in c.processes() {
        match pid {
            Some(p) => println!("{id} running (pid {p})"),
            None => println!("{id} not running"),
        }
    }
    if c.processes().iter().all(|(_, p)| p.is_none()) {
        return Ok(0);
    }
    let rt = runtime()?;
    let client = s.client(&rt, &c.file)?;
    let local = Some(Local { cluster: c, tied_to_parent: false });
    let ctx = Ctx::new(client, s.style(), local, false, Arc::new(NoScenarios));
    Ok(rt.block_on(shell::run_lines(&ctx, ["status".to_string()], s.json, false)))
}
