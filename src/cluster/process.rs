//! Starting and stopping node processes. A node of the shared cluster runs in its own process
//! group so a Ctrl-C at the terminal that started it does not reach it; a node of an ephemeral
//! cluster is tied to its parent with `PR_SET_PDEATHSIG` so it cannot outlive it.

use crate::error::{Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How to start one node.
#[derive(Debug, Clone)]
pub struct NodeProcess {
    pub id: String,
    pub addr: String,
    pub data: PathBuf,
    pub certs: PathBuf,
    /// For the first node: every founding member, `n1=ADDR,…`.
    pub bootstrap: Option<String>,
}

impl NodeProcess {
    /// Starts `exe node …` (the dsh binary) for this node.
    pub fn spawn(&self, exe: &Path, tied_to_parent: bool) -> Result<Child> {
        use std::os::unix::process::CommandExt;
        std::fs::create_dir_all(&self.data).context(format!("create {}", self.data.display()))?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.data.join("node.log"))
            .context("open node log")?;
        let mut cmd = Command::new(exe);
        cmd.arg("node")
            .args(["--id", &self.id, "--data"])
            .arg(&self.data)
            .args(["--listen", &self.addr, "--certs"])
            .arg(&self.certs);
        if let Some(b) = &self.bootstrap {
            cmd.args(["--bootstrap", b]);
        }
        cmd.stdin(Stdio::null()).stdout(log.try_clone().context("node log")?).stderr(log).process_group(0);
        if tied_to_parent {
            // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
            unsafe {
                cmd.pre_exec(|| {
                    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let child = cmd.spawn().context(format!("start node {}", self.id))?;
        std::fs::write(self.pid_file(), child.id().to_string()).context("write pid file")?;
        Ok(child)
    }

    pub fn pid_file(&self) -> PathBuf {
        pid_file(&self.data)
    }
}

pub fn pid_file(data: &Path) -> PathBuf {
    data.join("pid")
}

/// The pid recorded for a node's data dir, if that process is still a running dsh node.
pub fn running_pid(data: &Path) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(pid_file(data)).ok()?.trim().parse().ok()?;
    is_alive(pid).then_some(pid)
}

/// The state letter of `pid` in /proc (`R`, `S`, `T`, `Z`…), or None once it is gone.
fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit(')').next()?.trim_start().chars().next()
}

/// The command line of `pid`; empty while it is exiting, None once it is gone.
fn cmdline(pid: u32) -> Option<Vec<u8>> {
    std::fs::read(format!("/proc/{pid}/cmdline")).ok()
}

/// True when `pid` is a live (not zombie) dsh node process.
pub fn is_alive(pid: u32) -> bool {
    let Some(cmdline) = cmdline(pid) else { return false };
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    proc_state(pid).is_some_and(|s| s != 'Z') && args.get(1) == Some(&b"node".as_slice())
}

/// True when `pid` is stopped (SIGSTOP).
pub fn is_stopped(pid: u32) -> bool {
    proc_state(pid) == Some('T')
}

/// SIGTERM, then SIGKILL if the process is still there after `grace`.
pub fn stop(pid: u32, grace: Duration) {
    // SAFETY: plain syscalls on a pid we recorded ourselves.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let until = Instant::now() + grace;
    while not_gone(pid) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
    }
    if not_gone(pid) {
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        while not_gone(pid) {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// True until a node we are stopping has finished exiting. A process tearing itself down has
/// already lost its command line, so `is_alive` calls it gone, yet it is not a zombie and may
/// still hold its ports and files.
pub fn not_gone(pid: u32) -> bool {
    let exiting = cmdline(pid).is_some_and(|c| c.is_empty()) && proc_state(pid).is_some_and(|s| s != 'Z');
    is_alive(pid) || exiting
}
