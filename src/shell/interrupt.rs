//! Ctrl-C, one way for every front end. The process has one `Interrupt`; SIGINT cancels its
//! current token, and whatever runs in the foreground (a command at the prompt, a story, a
//! `load`, a Rhai `sleep` or `pause`) waits on that token instead of polling a flag. The prompt
//! takes a fresh token before each line, so a Ctrl-C ends only what was running when it came.
//! It must not decide what an interrupted command prints: the command does (a `load` stops and
//! still shows what it measured).

use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Clone, Default)]
pub struct Interrupt(Arc<Mutex<CancellationToken>>);

impl Interrupt {
    /// The token for what runs now.
    pub fn token(&self) -> CancellationToken {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// A new token for the next foreground task: an earlier Ctrl-C no longer counts.
    pub fn fresh(&self) -> CancellationToken {
        let token = CancellationToken::new();
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = token.clone();
        token
    }

    pub fn fire(&self) {
        self.token().cancel();
    }

    pub fn fired(&self) -> bool {
        self.token().is_cancelled()
    }

    /// Resolves when the current token is cancelled.
    pub async fn wait(&self) {
        self.token().cancelled_owned().await
    }

    /// Sleeps for `d`, or less if interrupted; says whether it slept the whole time.
    pub async fn sleep(&self, d: Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(d) => true,
            _ = self.wait() => false,
        }
    }

    /// Fires on every SIGINT from now on (the task ends with the runtime). Once this runs,
    /// SIGINT no longer ends the process: the foreground task decides how to stop.
    pub fn on_ctrl_c(&self, handle: &tokio::runtime::Handle) {
        let me = self.clone();
        handle.spawn(async move {
            while tokio::signal::ctrl_c().await.is_ok() {
                me.fire();
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_fresh_token_forgets_an_earlier_interrupt() {
        let i = Interrupt::default();
        i.fire();
        assert!(i.fired());
        assert!(!i.sleep(Duration::from_secs(5)).await, "an interrupted sleep returns at once");
        i.fresh();
        assert!(!i.fired());
        let j = i.clone();
        let sleeper = tokio::spawn(async move { j.sleep(Duration::from_secs(5)).await });
        tokio::task::yield_now().await;
        i.fire();
        assert!(!sleeper.await.unwrap(), "a clone sees the same interrupt");
    }
}
