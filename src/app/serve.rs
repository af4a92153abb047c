//! Serving a node or a supervisor in the foreground until SIGTERM or Ctrl-C.

use crate::error::{Error, Result};
use std::future::Future;
use tokio::sync::watch;

/// Runs `serve` on one thread until SIGTERM or Ctrl-C turns its shutdown signal on. One thread:
/// a node's work per request is small and every hop between tasks on different threads costs
/// a cross-CPU wakeup; fsyncs run on the log's own thread.
pub fn until_signal<F, Fut>(serve: F) -> Result<()>
where
    F: FnOnce(watch::Receiver<bool>) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::internal(format!("cannot start a runtime: {e}")))?;
    rt.block_on(async {
        let (tx, rx) = watch::channel(false);
        tokio::spawn(async move {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
            tokio::select! { _ = term.recv() => {}, _ = tokio::signal::ctrl_c() => {} }
            let _ = tx.send(true);
            Ok::<_, std::io::Error>(())
        });
        serve(rx).await
    })
}
