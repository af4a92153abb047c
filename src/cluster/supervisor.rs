//! The supervisor that `dsh node --supervisor ADDR` runs on a machine of a multi-machine
//! cluster: it starts the node as its child process and takes process faults (crash, restart,
//! pause, resume) over QUIC (ALPN `dsh-admin`) from holders of an admin (or node) certificate
//! of the cluster CA, so `crash n2` works wherever n2 runs; any certificate of the CA may ask
//! for the state. The node lives as long as its supervisor, and a start that does not lead to a
//! serving node is an error. It owns the child process only: it never touches the node's data,
//! and a child it did not start is none of its business.

use super::process::{self, is_stopped};
use crate::error::{Error, ErrorKind, Result};
use crate::net::{self, CertPaths, Endpoint, TlsFiles, ALPN_ADMIN};
use crate::proto::{node_name, Envelope, NodeId, ProcessAction, ProcessInfo, Reply, Request, Response};
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How long a restarted node may take to serve before the supervisor answers. Below the 5 s
/// a client waits for a supervisor, so a slow start is reported as one rather than lost.
const RESTART_TIMEOUT: Duration = Duration::from_secs(4);

pub struct SupervisorOptions {
    pub id: NodeId,
    /// Where admin clients reach the supervisor.
    pub listen: SocketAddr,
    /// Holds `ca.pem` and the node's certificate, which the supervisor presents too.
    pub certs: PathBuf,
    /// The arguments of the node process, after the binary's name.
    pub node_args: Vec<OsString>,
}

struct Supervised {
    id: NodeId,
    args: Vec<OsString>,
    child: Mutex<Option<Child>>,
}

impl Supervised {
    /// Starts the node and waits until it serves. The child is tied to this process: it is
    /// forked from a thread that lives as long as the supervisor (see `process::launch`).
    /// Returns the child unless it is gone, and whether it came up.
    fn start(&self, timeout: Duration) -> Result<(Option<Child>, Result<()>)> {
        let name = node_name(self.id);
        let mut cmd = Command::new(std::env::current_exe()?);
        cmd.args(&self.args);
        let (mut child, ready) =
            process::launch(cmd, true).map_err(|e| Error::internal(format!("start {name}: {e}")))?;
        eprintln!("supervisor: started {name} (pid {})", child.id());
        match ready.wait(&mut child, &name, timeout) {
            Ok(()) => Ok((Some(child), Ok(()))),
            // Still starting: keep it, it may yet serve, but the start is in doubt.
            Err(e) if e.kind == ErrorKind::Timeout => {
                eprintln!("supervisor: {}", e.message);
                Ok((Some(child), Err(e)))
            }
            Err(e) => {
                eprintln!("supervisor: {}", e.message);
                let _ = child.kill();
                let _ = child.wait();
                Ok((None, Err(e)))
            }
        }
    }

    /// The child's state, reaping it if it has exited.
    fn info(child: &mut Option<Child>) -> ProcessInfo {
        if let Some(c) = child.as_mut() {
            if !matches!(c.try_wait(), Ok(None)) {
                *child = None;
            }
        }
        match child {
            None => ProcessInfo { state: "down".into(), pid: None },
            Some(c) if is_stopped(c.id()) => ProcessInfo { state: "paused".into(), pid: Some(c.id()) },
            Some(c) => ProcessInfo { state: "up".into(), pid: Some(c.id()) },
        }
    }

    fn act(&self, action: ProcessAction) -> Result<ProcessInfo> {
        let mut child = self.child.lock().unwrap();
        let now = Self::info(&mut child);
        let name = node_name(self.id);
        let signal = |sig| {
            let pid = now.pid.ok_or_else(|| Error::new(ErrorKind::Conflict, format!("{name} is not running")))?;
            // SAFETY: a plain syscall on our own child, which we have not reaped.
            unsafe { libc::kill(pid as i32, sig) };
            Ok::<_, Error>(pid)
        };
        match action {
            ProcessAction::State => {}
            ProcessAction::Crash => {
                signal(libc::SIGKILL)?;
                if let Some(mut c) = child.take() {
                    let _ = c.wait();
                }
            }
            ProcessAction::Restart if now.pid.is_some() => {
                return Err(Error::new(ErrorKind::Conflict, format!("{name} is already running")));
            }
            ProcessAction::Restart => {
                let (started, up) = self.start(RESTART_TIMEOUT)?;
                *child = started;
                up?;
            }
            ProcessAction::Pause => drop(signal(libc::SIGSTOP)?),
            ProcessAction::Resume => drop(signal(libc::SIGCONT)?),
        }
        // A stop or continue takes effect asynchronously; report the state it leads to.
        let until = Instant::now() + Duration::from_millis(500);
        loop {
            let info = Self::info(&mut child);
            let settled = match action {
                ProcessAction::Pause => info.state == "paused",
                ProcessAction::Resume => info.state == "up",
                _ => true,
            };
            if settled || Instant::now() >= until {
                return Ok(info);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Stops the child for good: it may be paused, so it is continued before SIGTERM.
    fn stop(&self) {
        if let Some(mut c) = self.child.lock().unwrap().take() {
            let pid = c.id() as i32;
            // SAFETY: plain syscalls on our own, unreaped child.
            unsafe {
                libc::kill(pid, libc::SIGCONT);
                libc::kill(pid, libc::SIGTERM);
            }
            let until = Instant::now() + Duration::from_secs(5);
            while matches!(c.try_wait(), Ok(None)) && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Starts the node and serves admin requests until `shutdown`, then stops the node.
pub async fn supervise(opts: SupervisorOptions, mut shutdown: watch::Receiver<bool>) -> Result<()> {
    let tls = TlsFiles::load(&CertPaths::in_dir(&opts.certs, &node_name(opts.id)))?;
    let endpoint = Endpoint::serving(opts.listen, &tls, &[ALPN_ADMIN])?;
    let sup = Arc::new(Supervised { id: opts.id, args: opts.node_args, child: Mutex::new(None) });
    let first = sup.clone();
    let (started, up) = tokio::task::spawn_blocking(move || first.start(process::START_TIMEOUT))
        .await
        .map_err(|e| Error::internal(e.to_string()))??;
    *sup.child.lock().unwrap() = started;
    up?;
    eprintln!("supervisor of {} listening on {}", node_name(opts.id), opts.listen);
    loop {
        tokio::select! {
            incoming = endpoint.accept() => match incoming {
                Some(incoming) => { tokio::spawn(serve(sup.clone(), incoming, shutdown.clone())); }
                None => break,
            },
            _ = shutdown.changed() => break,
        }
    }
    endpoint.close();
    let sup2 = sup.clone();
    tokio::task::spawn_blocking(move || sup2.stop()).await.map_err(|e| Error::internal(e.to_string()))?;
    Ok(())
}

async fn serve(sup: Arc<Supervised>, incoming: quinn::Incoming, mut shutdown: watch::Receiver<bool>) {
    // The TLS handshake refuses anyone without a valid certificate of the cluster CA.
    let Ok(conn) = incoming.await else { return };
    let principal = match net::peer_principal(&conn) {
        Ok(p) => p,
        Err(e) => return conn.close(0u32.into(), e.message.as_bytes()),
    };
    loop {
        let (mut send, mut recv) = tokio::select! {
            s = conn.accept_bi() => match s { Ok(s) => s, Err(_) => return },
            _ = shutdown.changed() => return,
        };
        let result = match net::read_frame::<Envelope>(&mut recv).await {
            Ok(env) => match (net::authorize(&principal, &env.request), env.request) {
                (Err(e), _) => {
                    eprintln!("supervisor: denied {}: {}", conn.remote_address(), e.message);
                    Err(e)
                }
                (Ok(()), Request::Process(action)) => {
                    let sup = sup.clone();
                    tokio::task::spawn_blocking(move || sup.act(action))
                        .await
                        .unwrap_or_else(|e| Err(Error::internal(e.to_string())))
                        .map(Response::Process)
                }
                (Ok(()), _) => {
                    Err(Error::usage("a supervisor only takes process actions (crash, restart, pause, resume)"))
                }
            },
            Err(e) => Err(e),
        };
        let reply = Reply::new(sup.id, None, result);
        if net::write_frame(&mut send, &reply).await.is_ok() {
            let _ = send.finish();
        }
    }
}
