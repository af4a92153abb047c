//! Starting and stopping node processes. A node of the shared cluster runs in its own process
//! group so a Ctrl-C at the terminal that started it does not reach it; a node of an ephemeral
//! cluster (or under a supervisor) is tied to its parent with `PR_SET_PDEATHSIG` so it cannot
//! outlive it. Every start can be waited on until the node serves, so a node that cannot come
//! up (its port taken, its data unreadable) is an error where it was started, not a silent
//! `up`. It starts and signals processes only; it never reads or writes a node's data.

use crate::error::{Context, Error, Result};
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long a restarted node of the local cluster may take to serve: recovery of 100,000 keys
/// takes about 300 ms here (BENCHMARKS.md), so this is only reached when something is wrong.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

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
        Ok(self.start(exe, tied_to_parent)?.0)
    }

    /// Starts the node and waits until it serves; an error, with the last line of its log,
    /// when it exits first or does not serve within `START_TIMEOUT`.
    pub fn spawn_and_wait(&self, exe: &Path, tied_to_parent: bool) -> Result<Child> {
        let (mut child, ready) = self.start(exe, tied_to_parent)?;
        let why = |e: Error| {
            let log = std::fs::read_to_string(self.data.join("node.log")).unwrap_or_default();
            match log.lines().rev().find(|l| !l.trim().is_empty()) {
                Some(last) => Error::new(e.kind, format!("{}; its log ends: {last}", e.message)),
                None => e,
            }
        };
        ready.wait(&mut child, &self.id, START_TIMEOUT).map_err(why)?;
        Ok(child)
    }

    fn start(&self, exe: &Path, tied_to_parent: bool) -> Result<(Child, Ready)> {
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
        {
            use std::os::unix::process::CommandExt;
            cmd.stdin(Stdio::null()).stdout(log.try_clone().context("node log")?).stderr(log).process_group(0);
        }
        let (child, ready) = launch(cmd, tied_to_parent).context(format!("start node {}", self.id))?;
        std::fs::write(self.pid_file(), child.id().to_string()).context("write pid file")?;
        Ok((child, ready))
    }

    pub fn pid_file(&self) -> PathBuf {
        pid_file(&self.data)
    }
}

/// The reading end of the pipe on which a starting node says it serves (`READY_FD_ENV`).
pub struct Ready(File);

impl Ready {
    /// Waits until the node says it serves. Reading end of file first means the node is gone
    /// (every copy of the writing end closed with it): the error then says how it exited.
    pub fn wait(self, child: &mut Child, name: &str, timeout: Duration) -> Result<()> {
        use std::io::Read;
        let until = Instant::now() + timeout;
        let mut pfd = libc::pollfd { fd: self.0.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::timeout(format!(
                    "{name} started (pid {}) but did not serve within {timeout:?}; it may still come up",
                    child.id()
                )));
            }
            // SAFETY: one pollfd we own, for the duration of the call.
            let n = unsafe { libc::poll(&mut pfd, 1, left.as_millis().min(i32::MAX as u128) as i32) };
            if n < 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
                return Err(std::io::Error::last_os_error().into());
            }
            if n > 0 {
                break;
            }
        }
        let mut buf = [0u8; 16];
        if (&self.0).read(&mut buf).unwrap_or(0) > 0 {
            return Ok(());
        }
        // The node closed the pipe without a word: it exited (or is about to).
        let until = Instant::now() + Duration::from_secs(2);
        let status = loop {
            match child.try_wait() {
                Ok(Some(s)) => break Some(s),
                Ok(None) if Instant::now() < until => std::thread::sleep(Duration::from_millis(5)),
                _ => break None,
            }
        };
        let how = status.map_or("closed its start-up pipe".to_string(), |s| format!("exited ({s})"));
        Err(Error::unreachable(format!("{name} did not come up: it {how} before serving")))
    }
}

/// Spawns `cmd` with a pipe on which the node says when it serves, tied to this process when
/// `tied` (forked from a thread that lives as long as the process: `PR_SET_PDEATHSIG` fires
/// when the *thread* that forked exits, and tokio's blocking threads exit after 10 s idle).
pub fn launch(mut cmd: Command, tied: bool) -> std::io::Result<(Child, Ready)> {
    use std::os::unix::process::CommandExt;
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two descriptors we then own; both close on exec in this process.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fresh descriptors from pipe2, owned from here on.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let wfd = write.as_raw_fd();
    cmd.env(crate::proto::READY_FD_ENV, wfd.to_string());
    // SAFETY: fcntl and prctl are async-signal-safe and touch no memory of the parent. Only the
    // child's copy of the writing end stays open across exec; a stray child of another thread
    // never holds it past its own exec, so end of file means this node is gone.
    unsafe {
        cmd.pre_exec(move || {
            if libc::fcntl(wfd, libc::F_SETFD, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if tied && libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = if tied { spawn_from_lasting_thread(cmd)? } else { cmd.spawn()? };
    drop(write);
    Ok((child, Ready(File::from(read))))
}

type SpawnRequest = (Command, mpsc::SyncSender<std::io::Result<Child>>);

/// Spawns `cmd` from one thread kept for the life of the process.
fn spawn_from_lasting_thread(cmd: Command) -> std::io::Result<Child> {
    static SPAWNER: OnceLock<mpsc::Sender<SpawnRequest>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        // The static keeps a sender, so this loop (and the thread) ends only with the process.
        std::thread::Builder::new()
            .name("dsh-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .expect("start the thread that spawns nodes");
        tx
    });
    let (tx, rx) = mpsc::sync_channel(1);
    let gone = || std::io::Error::other("the thread that spawns nodes is gone");
    spawner.send((cmd, tx)).map_err(|_| gone())?;
    rx.recv().map_err(|_| gone())?
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
    if !wait_gone(pid, grace) {
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        wait_gone(pid, Duration::MAX);
    }
}

/// Waits until `pid` has finished exiting, every thread of it, so its port and files are
/// free; false if it is still there after `timeout`. A pidfd says so exactly (it turns
/// readable once the whole thread group has exited) without a polling loop; /proc is read
/// only to confirm, or every few milliseconds on a kernel without pidfds.
pub fn wait_gone(pid: u32, timeout: Duration) -> bool {
    let until = Instant::now().checked_add(timeout);
    let left = || {
        until.map_or(i32::MAX, |u| u.saturating_duration_since(Instant::now()).as_millis().min(i32::MAX as u128) as i32)
    };
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor, owned below.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd >= 0 {
        // SAFETY: a fresh descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        let mut pfd = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        loop {
            // SAFETY: one valid pollfd.
            match unsafe { libc::poll(&mut pfd, 1, left()) } {
                0 => return false,
                n if n > 0 => break,
                _ if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted => {}
                _ => break,
            }
        }
    }
    while not_gone(pid) {
        if left() == 0 {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    true
}

/// How many threads of `pid` have not finished exiting (`Threads:` in /proc), or None once
/// it is gone.
fn threads(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix("Threads:")).and_then(|n| n.trim().parse().ok())
}

/// True until a node we are stopping has finished exiting. A process tearing itself down has
/// already lost its command line, so `is_alive` calls it gone, yet it is not a zombie and may
/// still hold its ports and files. And a killed process's main thread shows as a zombie while
/// its other threads are still exiting, holding the descriptors they share (its UDP port: a
/// `restart` then fails with "Address already in use"): it is gone once one thread is left.
pub fn not_gone(pid: u32) -> bool {
    let state = proc_state(pid);
    let exiting = cmdline(pid).is_some_and(|c| c.is_empty()) && state.is_some_and(|s| s != 'Z');
    let threads_exiting = state == Some('Z') && threads(pid).is_some_and(|n| n > 1);
    is_alive(pid) || exiting || threads_exiting
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A process whose main thread has exited while another thread lives on, holding a UDP
    /// socket: the state a SIGKILLed node passes through, held here for as long as the test
    /// needs. Made with python3 (its main thread calls pthread_exit); skipped without it.
    #[test]
    fn a_zombie_main_thread_with_threads_left_is_not_gone() {
        let script = "import ctypes, socket, threading, time\n\
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('127.0.0.1', 0))\n\
            print(s.getsockname()[1], flush=True)\n\
            threading.Thread(target=lambda: time.sleep(3), daemon=True).start()\n\
            ctypes.CDLL(None).pthread_exit(None)\n";
        let Ok(mut child) = Command::new("python3").args(["-c", script]).stdout(Stdio::piped()).spawn() else {
            eprintln!("python3 is not installed: skipped");
            return;
        };
        let pid = child.id();
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
        let port: u16 = line.trim().parse().unwrap();
        let until = Instant::now() + Duration::from_secs(2);
        while proc_state(pid) != Some('Z') {
            assert!(Instant::now() < until, "the main thread exits");
            std::thread::sleep(Duration::from_millis(5));
        }
        let bound = std::net::UdpSocket::bind(("127.0.0.1", port)).is_err();
        assert!(bound && threads(pid) == Some(2), "the other thread still holds the port");
        assert!(not_gone(pid), "a zombie main thread with a thread still exiting is not gone");
        assert!(!wait_gone(pid, Duration::from_millis(200)), "nor does waiting call it gone");
        assert!(wait_gone(pid, Duration::from_secs(10)), "gone once its last thread ends");
        assert!(std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok(), "and its port is free");
        child.wait().unwrap();
        assert!(!not_gone(pid), "reaped: gone");
    }
}
