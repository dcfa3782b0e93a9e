//! The `waiting for <url>…` line: an operator looking at a silent terminal
//! cannot tell a slow handshake from a hang.
//!
//! Quick requests print nothing (the thread waits a second first), and
//! nothing is printed when stderr is not a terminal, so scripts and logs
//! stay clean.

use std::io::{IsTerminal, Write};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

const DELAY: Duration = Duration::from_secs(1);
const FRAME: Duration = Duration::from_millis(120);
const FRAMES: [char; 4] = ['|', '/', '-', '\\'];

/// A running spinner; dropping it stops it and clears its line.
pub(crate) struct Progress {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Progress {
    /// Starts the spinner for `what` (shown after one second), or a no-op
    /// when `enabled` is false or stderr is not a terminal.
    pub(crate) fn start(what: &str, enabled: bool) -> Progress {
        if !enabled || !std::io::stderr().is_terminal() {
            return Progress { stop: None, thread: None };
        }
        let (tx, rx) = mpsc::channel::<()>();
        let label = format!("waiting for {what}…");
        let thread = std::thread::Builder::new()
            .name("wippy-progress".into())
            .spawn(move || {
                if !matches!(rx.recv_timeout(DELAY), Err(RecvTimeoutError::Timeout)) {
                    return;
                }
                let mut err = std::io::stderr();
                for frame in FRAMES.iter().cycle() {
                    let _ = write!(err, "\r{frame} {label}");
                    let _ = err.flush();
                    if !matches!(rx.recv_timeout(FRAME), Err(RecvTimeoutError::Timeout)) {
                        break;
                    }
                }
                // Erase the line so the next output starts clean.
                let _ = write!(err, "\r\x1b[2K");
                let _ = err.flush();
            })
            .ok();
        Progress { stop: Some(tx), thread }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        // Dropping the sender wakes the thread (a disconnect), which then
        // clears its line before we go on printing.
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
