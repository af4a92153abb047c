//! Lines typed while a command ran. The terminal is in cooked mode then, so the kernel holds
//! each line the person finished with Enter. The line editor, once it takes the terminal, reads
//! whatever is waiting in one go and keeps only its first line, so the prompt takes the finished
//! lines first: in cooked mode one `read` returns at most one line, and a line not yet finished
//! is not readable at all — it stays for the editor, which shows it as typed so far. Reads go to
//! fd 0 directly: std's stdin buffers, and what it buffered the editor would never see.

/// What was waiting on the terminal.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Waiting {
    /// Finished lines, in the order typed, without their newline.
    pub lines: Vec<String>,
    /// Ctrl-D came after them.
    pub eof: bool,
}

/// Takes every finished line waiting on fd 0, without blocking.
pub fn take() -> Waiting {
    let mut waiting = Waiting::default();
    let mut bytes = Vec::new();
    loop {
        let mut poll = libc::pollfd { fd: 0, events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd, zero timeout.
        let ready = unsafe { libc::poll(&mut poll, 1, 0) };
        if ready <= 0 || poll.revents & libc::POLLIN == 0 {
            break;
        }
        let mut buf = [0u8; 4096];
        // SAFETY: reads at most buf.len() bytes into buf.
        let n = unsafe { libc::read(0, buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            break;
        }
        if n == 0 {
            // Ctrl-D at the start of a line.
            waiting.eof = true;
            break;
        }
        bytes.extend_from_slice(&buf[..n as usize]);
    }
    let text = String::from_utf8_lossy(&bytes);
    // A last piece without a newline was ended by Ctrl-D mid-line: it counts as typed.
    waiting.lines = text.split_terminator('\n').map(|l| l.trim_end_matches('\r').to_string()).collect();
    waiting
}
