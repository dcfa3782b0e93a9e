//! The cross-worker inbox of one worker, and how the worker sleeps.
//!
//! Senders append whole batches under a short lock; the owner swaps the
//! vector out. A sleeping worker is unparked only when it advertised that it
//! sleeps, so a busy worker never pays for a wake-up (a cross-core wake costs
//! ~20 µs here, a batch append well under 1 µs).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::thread::Thread;
use std::time::{Duration, Instant};

use super::envelope::Envelope;

/// The shared half of a worker: what other threads may touch.
#[derive(Default)]
pub(crate) struct Mailroom {
    inbound: Mutex<Vec<Envelope>>,
    has_mail: AtomicBool,
    sleeping: AtomicBool,
    thread: OnceLock<Thread>,
}

impl Mailroom {
    /// Records the owning thread (called once by the worker at start).
    pub(crate) fn bind(&self) {
        let _ = self.thread.set(std::thread::current());
    }

    /// Appends a batch and wakes the owner if it sleeps.
    pub(crate) fn post(&self, batch: &mut Vec<Envelope>) {
        if batch.is_empty() {
            return;
        }
        {
            let mut q = self.inbound.lock().unwrap_or_else(|e| e.into_inner());
            if q.is_empty() {
                std::mem::swap(&mut *q, batch);
            } else {
                q.append(batch);
            }
        }
        self.has_mail.store(true, Ordering::SeqCst);
        self.nudge();
    }

    /// Wakes the owner if it is parked (used for mail and for shutdown).
    pub(crate) fn nudge(&self) {
        if self.sleeping.swap(false, Ordering::SeqCst)
            && let Some(t) = self.thread.get()
        {
            t.unpark();
        }
    }

    /// Wakes the owner whether or not it sleeps yet. A park that has not
    /// started returns at once after this, so a stop request can never be
    /// lost between the owner's last check and its park.
    pub(crate) fn wake_always(&self) {
        self.sleeping.store(false, Ordering::SeqCst);
        if let Some(t) = self.thread.get() {
            t.unpark();
        }
    }

    /// Takes everything posted so far, reusing `into`'s allocation.
    pub(crate) fn take(&self, into: &mut Vec<Envelope>) {
        if !self.has_mail.swap(false, Ordering::SeqCst) {
            return;
        }
        let mut q = self.inbound.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::swap(&mut *q, into);
    }

    /// Parks the owner until mail arrives or `timeout` passes. It first
    /// spins for up to `spin`: a reply from another worker often arrives
    /// within microseconds, and parking would add a ~20 µs wake-up to it.
    pub(crate) fn sleep(&self, timeout: Option<Duration>, spin: Duration) {
        if !spin.is_zero() {
            let until = Instant::now() + spin.min(timeout.unwrap_or(spin));
            loop {
                for _ in 0..64 {
                    if self.has_mail.load(Ordering::Relaxed) {
                        return;
                    }
                    std::hint::spin_loop();
                }
                if Instant::now() >= until {
                    break;
                }
            }
        }
        self.sleeping.store(true, Ordering::SeqCst);
        if self.has_mail.load(Ordering::SeqCst) {
            self.sleeping.store(false, Ordering::SeqCst);
            return;
        }
        match timeout {
            Some(d) => std::thread::park_timeout(d),
            None => std::thread::park(),
        }
        self.sleeping.store(false, Ordering::SeqCst);
    }
}
